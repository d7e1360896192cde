"""Headrace: Kubernetes-native workflow orchestration for Python."""
