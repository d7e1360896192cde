"""The CLI's connection to a cluster: the current kubeconfig (or in-cluster config)."""

from __future__ import annotations

from kubernetes import client, config


def connect(namespace: str | None) -> tuple[client.ApiClient, str]:
    """An API client and the namespace to use (the flag, else the context's, else default)."""
    try:
        config.load_kube_config()  # type: ignore[no-untyped-call]
        _, context = config.list_kube_config_contexts()  # type: ignore[no-untyped-call]
        default = (context or {}).get("context", {}).get("namespace") or "default"
    except config.ConfigException:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        default = "default"
    return client.ApiClient(), namespace or default
