"""The operator on a cluster whose only node is real (issue 11, item 4, first step).

The session's cluster keeps the process kubelet, which binds every default-scheduler
pod itself; here a separate control plane runs without it, so the real node's
kube-scheduler takes the default scheduler name and the operator's own flow pods
(unchanged) land in real containers from the flow image.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from cluster import procs
from cluster.controlplane import ControlPlane
from cluster.fixtures import Cluster, create_namespace, delete_namespace
from cluster.helpers import wait_for
from cluster.kubeconfig import client_from_kubeconfig
from cluster.node import RealNode, start_real_node

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[1]
GROUP, VERSION = "headrace.dev", "v1alpha1"


@pytest.fixture(scope="module")
def real_only_cluster() -> Iterator[tuple[Cluster, RealNode]]:
    """A control plane without the process kubelet, plus a real node scheduled by the
    default scheduler; the CRDs installed."""
    if os.environ.get("HEADRACE_SKIP_CLUSTER") == "1":
        pytest.skip("HEADRACE_SKIP_CLUSTER=1")
    if os.environ.get("HEADRACE_TEST_KUBECONFIG"):
        pytest.skip("starts its own control plane and real node (HEADRACE_TEST_KUBECONFIG is set)")
    plane = ControlPlane(with_kubelet=False).start()
    node: RealNode | None = None
    api_client: client.ApiClient | None = None
    try:
        node = start_real_node(plane, scheduler_name="default-scheduler")
        api_client = client_from_kubeconfig(plane.kubeconfig_path)
        extensions = client.ApiextensionsV1Api(api_client)
        for path in sorted((REPO / "crds").glob("*.yaml")):
            extensions.create_custom_resource_definition(yaml.safe_load(path.read_text()))
        for path in sorted((REPO / "crds").glob("*.yaml")):
            name = yaml.safe_load(path.read_text())["metadata"]["name"]

            def established(name: str = name) -> bool:
                crd = extensions.read_custom_resource_definition(name)
                conditions = (crd.status.conditions if crd.status else None) or []
                return any(c.type == "Established" and c.status == "True" for c in conditions)

            wait_for(established, 30, f"CRD {name}")
        yield Cluster(plane.kubeconfig_path, api_client, plane, False, node), node
    finally:
        if api_client is not None:
            api_client.close()  # type: ignore[no-untyped-call]
        if node is not None:
            node.stop()
        plane.stop()


def test_operator_runs_a_flowrun_in_a_real_container(
    real_only_cluster: tuple[Cluster, RealNode], tmp_path: Path
) -> None:
    cluster, node = real_only_cluster
    namespace = create_namespace(cluster)
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        "HEADRACE_ENGINE_COMMAND": "headrace",  # the image's entrypoint program
        "HEADRACE_DEFAULT_RESULT_STORAGE": "file:///tmp/headrace",  # the pod's emptyDir
        "HEADRACE_PROGRESS_INTERVAL": "0.5",
    }
    operator = procs.spawn(
        "operator",
        [sys.executable, "-m", "headrace", "operator", "-n", namespace],
        tmp_path / "operator.log",
        env=env,
    )
    api = client.CustomObjectsApi(cluster.api_client)
    try:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "FlowRun",
            "metadata": {"name": "hello"},
            "spec": {
                "flow": {
                    "image": node.node_images.flows.ref,
                    "entrypoint": "/opt/flows/cluster_flows.py:hello",
                    "pod": {"imagePullPolicy": "Never"},
                },
                "parameters": {"name": "real node", "n": 5},
                "timeoutSeconds": 300,
            },
        }
        started = time.monotonic()
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, "flowruns", body)

        def final() -> dict[str, Any] | None:
            if not operator.alive():
                pytest.fail(f"operator exited:\n{operator.log_tail()}")
            found = api.get_namespaced_custom_object(GROUP, VERSION, namespace, "flowruns", "hello")
            status: dict[str, Any] = found.get("status") or {}
            done = status.get("state") in {"Completed", "Failed", "Crashed", "TimedOut"}
            return status if done else None

        status = wait_for(final, 180, "the FlowRun to end")
        print(f"\nFlowRun created -> {status['state']} in {time.monotonic() - started:.1f}s")
        assert status["state"] == "Completed", f"{status}\n{operator.log_tail()}"
        assert status["attempts"][0]["exitCode"] == 0
        pods = cluster.core.list_namespaced_pod(namespace).items
        assert [p.spec.node_name for p in pods] == [node.name]
        logs = cluster.core.read_namespaced_pod_log(pods[0].metadata.name, namespace)
        assert "hello, real node" in logs, logs
        api.delete_namespaced_custom_object(GROUP, VERSION, namespace, "flowruns", "hello")
        wait_for(
            lambda: (
                not api.list_namespaced_custom_object(GROUP, VERSION, namespace, "flowruns")[
                    "items"
                ]
            ),
            30,
            "the FlowRun to be deleted",
        )
    finally:
        operator.stop()
        delete_namespace(cluster, namespace)
