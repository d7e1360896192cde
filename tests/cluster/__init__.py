"""Headrace's test control plane: real etcd + kube-apiserver built from Go modules,
plus a process kubelet. See README.md in this directory."""
