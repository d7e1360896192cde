"""The parts of benchmarks/operator_throughput.py: kwok builds and starts, kube-scheduler binds
a pod to a simulated node, and kwok's Stages take it to Succeeded with the engine's report.

kwok simulates the node (the pod runs no process); everything else here is real. Its
scheduler serves its own schedulerName, so it and the real node's kube-scheduler (the
default one) never compete for the same pods.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from cluster.fixtures import Cluster
from cluster.helpers import finished_pod, wait_for
from cluster.kwok import NODE_LABEL, NODE_LABEL_VALUE, Kwok, KwokError
from headrace.controller.outcome import pod_outcome
from headrace.controller.podspec import CONTAINER, OUTCOME_FINALIZER

pytestmark = pytest.mark.cluster

SCHEDULER = "headrace-kwok-scheduler"


@pytest.fixture(scope="module")
def kwok(cluster: Cluster) -> Iterator[Kwok]:
    nodes = Kwok(
        cluster.kubeconfig, scheduler_name=SCHEDULER, node_prefix=f"kwok-{uuid.uuid4().hex[:6]}"
    )
    try:
        nodes.start()
    except KwokError as exc:
        pytest.fail(f"kwok did not start: {exc}", pytrace=False)
    try:
        yield nodes
    finally:
        nodes.stop()
        nodes.delete_nodes()


def test_kwok_takes_a_pod_to_succeeded_with_the_engine_report(
    cluster: Cluster, namespace: str, kwok: Kwok
) -> None:
    run_id = str(uuid.uuid4())
    name = f"kwok-{uuid.uuid4().hex[:6]}"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "finalizers": [OUTCOME_FINALIZER]},
        "spec": {
            "schedulerName": SCHEDULER,
            "nodeSelector": {NODE_LABEL: NODE_LABEL_VALUE},
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": CONTAINER,
                    "image": "ghcr.io/headrace/examples:0.1.0",
                    "command": ["headrace", "run", "flow.py:hello"],
                    "env": [{"name": "HEADRACE_FLOW_RUN_ID", "value": run_id}],
                }
            ],
        },
    }
    core = cluster.core
    core.create_namespaced_pod(namespace, pod)
    done = finished_pod(core, namespace, name, timeout=60)
    assert done.spec.node_name in kwok.node_names
    assert done.status.phase == "Succeeded"
    terminated = done.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 0
    report = json.loads(terminated.message)
    assert report == {
        "state": "Completed",
        "message": "",
        "flowRunId": run_id,
        "result": None,
        "record": None,
        "counts": {},
    }
    # The operator's own reading of it.
    outcome = pod_outcome(cluster.api_client.sanitize_for_serialization(done), None)
    assert outcome.state == "Completed" and outcome.report == report

    # Deleting it: kwok deletes with grace 0 and leaves the finalizer to its owner.
    core.delete_namespaced_pod(name, namespace)
    held = wait_for(
        lambda: (p := core.read_namespaced_pod(name, namespace)).metadata.deletion_timestamp and p,
        30,
        "the pod to be marked deleted",
    )
    assert held.metadata.finalizers == [OUTCOME_FINALIZER]
    core.patch_namespaced_pod(name, namespace, {"metadata": {"finalizers": None}})

    def gone() -> bool:
        try:
            core.read_namespaced_pod(name, namespace)
        except ApiException as error:
            return error.status == 404
        return False

    wait_for(gone, 30, "the pod to be gone once its finalizer is removed")


def test_kwok_node_is_ready_and_untainted(cluster: Cluster, kwok: Kwok) -> None:
    node = client.CoreV1Api(cluster.api_client).read_node(kwok.node_names[0])
    assert any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)
    assert not node.spec.taints
