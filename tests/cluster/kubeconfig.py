"""Kubeconfig files and API clients for the test control plane."""

from __future__ import annotations

from pathlib import Path

import yaml
from kubernetes import client, config


def write_kubeconfig(
    path: Path,
    server: str,
    ca_file: Path,
    token: str,
    *,
    name: str = "headrace-test",
    user: str = "admin",
) -> Path:
    """Write a token kubeconfig (mode 0600) usable by kubectl and the Python client."""
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": name, "cluster": {"server": server, "certificate-authority": str(ca_file)}}
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": user}}],
        "current-context": name,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    path.chmod(0o600)
    return path


def client_from_kubeconfig(path: Path, pool_size: int = 16) -> client.ApiClient:
    """An ApiClient for ``path``'s current context (any auth kubeconfig supports)."""
    configuration = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(path), client_configuration=configuration
    )
    configuration.connection_pool_maxsize = pool_size
    return client.ApiClient(configuration)


def client_for_token(base: client.ApiClient, token: str) -> client.ApiClient:
    """Same server and CA as ``base`` but authenticating with a bearer ``token`` only."""
    src = base.configuration
    configuration = client.Configuration(
        host=src.host,
        ssl_ca_cert=src.ssl_ca_cert,
        verify_ssl=src.verify_ssl,
        api_key={"BearerToken": token},
        api_key_prefix={"BearerToken": "Bearer"},
    )
    return client.ApiClient(configuration)
