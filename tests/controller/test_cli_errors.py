"""What the CLI prints when the cluster cannot be reached or refuses: one line, as kubectl
does, never a traceback; and `--version`."""

from __future__ import annotations

from pathlib import Path

import pytest

import headrace
from cluster.fixtures import Cluster
from cluster.helpers import headrace_cli


def test_version_prints_the_package_version_and_the_engine_build() -> None:
    """This tree's sources are pure Python; the image's build says compiled
    (tests/test_dockerfile.py and the real node's flow pod check that one)."""
    result = headrace_cli("--version")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"headrace {headrace.__version__} (engine: pure Python)\n"


def test_an_unreachable_api_server_is_one_line(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        """apiVersion: v1
kind: Config
clusters:
- {name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}
contexts:
- {name: x, context: {cluster: c, user: u, namespace: ns}}
current-context: x
users:
- {name: u, user: {token: not-a-real-token}}
"""
    )
    for command in (["logs", "flowrun/x"], ["graph", "flowrun/x"], ["run", "--deployment", "d"]):
        result = headrace_cli(*command, kubeconfig=kubeconfig)
        assert result.returncode == 1, result
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"headrace {command[0]}: cannot reach the API server")
        assert "not-a-real-token" not in result.stderr


@pytest.mark.cluster
def test_a_refusal_names_the_status_and_the_api_servers_reason(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """A user with no rights in the namespace: the API server's own words, no traceback."""
    kubeconfig = cluster.service_account_kubeconfig(namespace, "nobody", tmp_path / "kc")
    result = headrace_cli("graph", "flowrun/some-run", "-n", namespace, kubeconfig=kubeconfig)
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("headrace graph: the API server answered 403 Forbidden:"), line
    assert "flowruns" in line and "nobody" in line  # whose request, on what
