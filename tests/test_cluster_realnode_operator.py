"""The operator on the session's cluster, whose only node is real, with no result storage
set: the engine keeps results in the pod's own /tmp (an emptyDir), and the FlowRun says
they go with the pod.

The real node's kube-scheduler serves the default scheduler name, so the operator's own
flow pods (unchanged) land in real containers from the flow image.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from cluster import procs
from cluster.fixtures import RealCluster, create_namespace, delete_namespace
from cluster.helpers import wait_for

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[1]
GROUP, VERSION = "headrace.dev", "v1alpha1"


def test_operator_runs_a_flowrun_in_a_real_container(
    real_cluster: RealCluster, tmp_path: Path
) -> None:
    cluster, node = real_cluster.cluster, real_cluster.node
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
        kept = next(c for c in status["conditions"] if c["type"] == "ResultsKept")
        assert (kept["status"], kept["reason"]) == ("False", "PodLocalStorage"), kept
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
