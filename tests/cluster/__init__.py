"""Headrace's test cluster: real etcd + kube-apiserver built from Go modules, a real node
(kubelet, containerd, runc) and an S3 server. See README.md in this directory."""
