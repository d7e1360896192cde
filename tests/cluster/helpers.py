"""Small polling and pod helpers shared by cluster tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

IMAGE = "busybox:1.36"  # for external clusters (the local node has `Cluster.pod_image`)


def wait_for(predicate: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    """Poll until ``predicate`` returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def pod_manifest(name: str, script: str, image: str = IMAGE, **spec: Any) -> dict[str, Any]:
    """A one-container ``sh -c script`` pod (restartPolicy Never unless overridden)."""
    env = spec.pop("env", [])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {"name": "main", "image": image, "command": ["sh", "-c", script], "env": env}
            ],
            **spec,
        },
    }


def finished_pod(
    core: client.CoreV1Api, namespace: str, name: str, timeout: float = 60
) -> client.V1Pod:
    """Wait until the pod is Succeeded or Failed and return it."""

    def done() -> client.V1Pod | None:
        pod = core.read_namespaced_pod(name, namespace)
        phase = pod.status.phase if pod.status else None
        return pod if phase in ("Succeeded", "Failed") else None

    pod: client.V1Pod = wait_for(done, timeout, f"pod {name} to finish")
    return pod


def pod_logs(core: client.CoreV1Api, namespace: str, name: str) -> str:
    """The pod's logs, or "" while they are not available yet (container starting)."""
    try:
        # An unscheduled pod has empty logs, which the client returns as None.
        return core.read_namespaced_pod_log(name, namespace) or ""
    except ApiException as exc:
        if exc.status in (400, 404):
            return ""
        raise


def pod_gone(core: client.CoreV1Api, namespace: str, name: str) -> bool:
    try:
        core.read_namespaced_pod(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


def install_crds(api_client: client.ApiClient) -> None:
    """Create or replace the CRDs from crds/ and wait until they serve."""
    api = client.ApiextensionsV1Api(api_client)
    for path in sorted((Path(__file__).resolve().parents[2] / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        name = crd["metadata"]["name"]
        try:
            existing = api.read_custom_resource_definition(name)
            crd["metadata"]["resourceVersion"] = existing.metadata.resource_version
            api.replace_custom_resource_definition(name, crd)
        except ApiException as error:
            if error.status != 404:
                raise
            api.create_custom_resource_definition(crd)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            conditions = api.read_custom_resource_definition(name).status.conditions or []
            if any(c.type == "Established" and c.status == "True" for c in conditions):
                break
            time.sleep(0.1)


def wait_namespace_gone(core: client.CoreV1Api, name: str, timeout: float = 90) -> None:
    """Wait until a deleted namespace is gone, so a later test can make it again (tests that
    install the chart as the README says share `headrace-system` on the session cluster)."""

    def gone() -> bool:
        try:
            core.read_namespace(name)
        except ApiException as exc:
            if exc.status == 404:
                return True
            raise
        return False

    wait_for(gone, timeout, f"namespace {name} to be deleted")


def headrace_cli(
    *args: str,
    kubeconfig: Path | str | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """`headrace ARGS` as a user runs it, from this checkout: its exit code and output.

    `env` is the whole environment (default: this process's); `kubeconfig` sets KUBECONFIG.
    """
    environment = dict(os.environ if env is None else env)
    if kubeconfig is not None:
        environment["KUBECONFIG"] = str(kubeconfig)
    return subprocess.run(
        [sys.executable, "-m", "headrace", *args],
        env=environment,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
