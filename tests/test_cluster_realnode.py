"""What a user sees from pods on a real node: kubelet + containerd + runc + CNI (node.py).

These pods run in real containers from images built by the tests (images.py): the
project's own image (``headrace``) and a flow image on top of it.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, watch

import headrace
from cluster.fixtures import Cluster
from cluster.helpers import finished_pod, pod_logs, wait_for
from cluster.node import RealNode
from headrace.controller.podspec import container_security

pytestmark = pytest.mark.cluster

UID = 65532


def real_pod(
    node: RealNode,
    name: str,
    command: list[str],
    *,
    image: str | None = None,
    container: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A restartPolicy Never pod placed on the real node, hardened like flow pods."""
    main: dict[str, Any] = {
        "name": "main",
        "image": image or node.node_images.project.ref,
        "imagePullPolicy": "Never",
        "command": command,
        "securityContext": container_security(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        **(container or {}),
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "containers": [main],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
            **node.pod_placement(),
            **spec,
        },
    }


def sh(script: str) -> list[str]:
    return ["sh", "-c", script]


def terminated(pod: client.V1Pod) -> client.V1ContainerStateTerminated:
    state = pod.status.container_statuses[0].state
    assert state.terminated is not None, state
    return state.terminated


def test_pod_runs_in_a_container_as_65532_with_a_read_only_root(
    cluster: Cluster, real_node: RealNode, namespace: str
) -> None:
    core = cluster.core
    # ($$$$: the kubelet expands $(VAR) in commands and turns $$ into $.)
    script = (
        'echo "uid=$(id -u) gid=$(id -g) pid=$$$$ host=$(hostname)"; '
        "touch /x 2>&1 || true; touch /tmp/ok && echo tmp-writable"
    )
    started = time.monotonic()
    core.create_namespaced_pod(namespace, real_pod(real_node, "whoami", sh(script)))
    pod = finished_pod(core, namespace, "whoami", timeout=120)
    took = time.monotonic() - started
    print(f"\ntrivial pod created -> Succeeded in {took:.1f}s")
    assert pod.status.phase == "Succeeded", pod.status
    assert pod.spec.node_name == real_node.name
    assert terminated(pod).reason == "Completed"
    logs = pod_logs(core, namespace, "whoami")
    # PID 1 of its own PID namespace, its own UTS namespace: a container, not a process.
    assert f"uid={UID} gid={UID} pid=1 host=whoami" in logs, logs
    assert "touch: cannot touch '/x': Read-only file system" in logs, logs
    assert "tmp-writable" in logs
    # A pod IP from the node's bridge, and the node's address as hostIP.
    assert pod.status.pod_ip and pod.status.pod_ip.startswith(real_node.host_ip.rsplit(".", 1)[0])
    assert pod.status.host_ip == real_node.host_ip


def test_termination_message_reaches_the_pod_status(
    cluster: Cluster, real_node: RealNode, namespace: str
) -> None:
    core = cluster.core
    script = "echo 'flow failed: boom' > /dev/termination-log; exit 3"
    core.create_namespaced_pod(namespace, real_pod(real_node, "message", sh(script)))
    pod = finished_pod(core, namespace, "message", timeout=120)
    assert pod.status.phase == "Failed"
    state = terminated(pod)
    assert (state.exit_code, state.reason) == (3, "Error")
    assert state.message == "flow failed: boom\n"


def test_logs_through_the_apiserver(cluster: Cluster, real_node: RealNode, namespace: str) -> None:
    core = cluster.core
    # stdout and stderr are separate pipes: only a pause orders lines across them.
    script = "echo to-stderr >&2; sleep 1; for i in 1 2 3 4 5; do echo line $i; done"
    core.create_namespaced_pod(namespace, real_pod(real_node, "logger", sh(script)))
    finished_pod(core, namespace, "logger", timeout=120)
    logs = core.read_namespaced_pod_log("logger", namespace)
    assert logs.splitlines() == ["to-stderr", *(f"line {i}" for i in range(1, 6))]
    assert core.read_namespaced_pod_log("logger", namespace, tail_lines=2) == "line 4\nline 5\n"
    stamped = core.read_namespaced_pod_log("logger", namespace, timestamps=True)
    assert stamped.splitlines()[1].endswith(" line 1") and stamped.startswith("20")


def test_delete_sends_sigterm_to_pid_1_then_sigkill_after_grace(
    cluster: Cluster, real_node: RealNode, namespace: str
) -> None:
    core = cluster.core
    # PID 1 reports SIGTERM and keeps running, so only SIGKILL can end it.
    script = "trap 'echo got SIGTERM as pid $$$$' TERM; echo started; while :; do sleep 0.2; done"
    core.create_namespaced_pod(
        namespace,
        real_pod(real_node, "stubborn", sh(script), terminationGracePeriodSeconds=3),
    )
    wait_for(lambda: "started" in pod_logs(core, namespace, "stubborn"), 120, "the pod to start")

    lines: list[str] = []

    def follow() -> None:
        stream = core.read_namespaced_pod_log(
            "stubborn", namespace, follow=True, _preload_content=False
        )
        for chunk in stream.stream():
            lines.extend(chunk.decode().splitlines())

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    time.sleep(0.5)
    last: client.V1Pod | None = None
    events = watch.Watch().stream(
        core.list_namespaced_pod,
        namespace,
        field_selector="metadata.name=stubborn",
        timeout_seconds=60,
    )
    started = time.monotonic()
    core.delete_namespaced_pod("stubborn", namespace)
    for event in events:
        if event["type"] == "DELETED":
            break
        pod = event["object"]
        if pod.status.container_statuses and pod.status.container_statuses[0].state.terminated:
            last = pod
    took = time.monotonic() - started
    follower.join(timeout=5)
    assert "got SIGTERM as pid 1" in lines, lines
    assert 3 <= took < 30, took  # not at SIGTERM, and not stuck
    assert last is not None, "no status with the terminated container before deletion"
    assert terminated(last).exit_code == 137  # 128 + SIGKILL


def test_over_the_memory_limit_is_oom_killed(
    cluster: Cluster, real_node: RealNode, namespace: str
) -> None:
    core = cluster.core
    hog = ["python3", "-c", "b = bytearray(256 * 1024 * 1024); print('allocated')"]
    limits = {"resources": {"limits": {"memory": "64Mi"}, "requests": {"memory": "64Mi"}}}
    core.create_namespaced_pod(namespace, real_pod(real_node, "hog", hog, container=limits))
    pod = finished_pod(core, namespace, "hog", timeout=120)
    assert pod.status.phase == "Failed"
    state = terminated(pod)
    assert (state.reason, state.exit_code) == ("OOMKilled", 137), state


def test_an_image_that_cannot_be_pulled(
    cluster: Cluster, real_node: RealNode, namespace: str
) -> None:
    core = cluster.core
    # A registry on a closed local port: the pull fails without leaving the machine.
    image = "127.0.0.1:1/headrace/missing:1"
    manifest = real_pod(
        real_node, "nopull", ["true"], image=image, container={"imagePullPolicy": "Always"}
    )
    core.create_namespaced_pod(namespace, manifest)
    seen: set[str] = set()

    def backing_off() -> bool:
        statuses = core.read_namespaced_pod("nopull", namespace).status.container_statuses
        if statuses and statuses[0].state.waiting:
            seen.add(statuses[0].state.waiting.reason)
        return "ImagePullBackOff" in seen

    wait_for(backing_off, 120, "ImagePullBackOff")
    assert seen <= {"ContainerCreating", "ErrImagePull", "ImagePullBackOff"}, seen
    pod = core.read_namespaced_pod("nopull", namespace)
    assert pod.status.phase == "Pending"
    assert image in pod.status.container_statuses[0].state.waiting.message


@pytest.fixture(params=["0.0.0.0", "node-ip"])
def host_server(request: pytest.FixtureRequest, real_node: RealNode) -> Iterator[tuple[str, int]]:
    """An HTTP server on the host (as an S3 test server would be), listening on all
    addresses or only on the node's address on the pod bridge."""
    address = real_node.host_ip if request.param == "node-ip" else request.param

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f"hello from the host to {self.client_address[0]}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((address, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield real_node.host_ip, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_pod_reaches_a_server_on_the_host(
    cluster: Cluster, real_node: RealNode, namespace: str, host_server: tuple[str, int]
) -> None:
    core = cluster.core
    _, port = host_server
    fetch = (
        "import os, urllib.request; "
        f"url = 'http://' + os.environ['HOST_IP'] + ':{port}/'; "
        "print(urllib.request.urlopen(url, timeout=10).read().decode())"
    )
    host_ip_env = {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}}
    manifest = real_pod(
        real_node, "client", ["python3", "-c", fetch], container={"env": [host_ip_env]}
    )
    core.create_namespaced_pod(namespace, manifest)
    pod = finished_pod(core, namespace, "client", timeout=120)
    logs = pod_logs(core, namespace, "client")
    assert pod.status.phase == "Succeeded", logs
    assert logs.strip() == f"hello from the host to {pod.status.pod_ip}"


def test_the_project_image_runs_a_flow_to_completion_on_its_compiled_engine(
    cluster: Cluster, real_node: RealNode, namespace: str
) -> None:
    core = cluster.core
    env = [{"name": "HEADRACE_HOME", "value": "/tmp/headrace"}]
    manifest = real_pod(
        real_node,
        "hello",
        sh("headrace --version && headrace run /opt/flows/cluster_flows.py:hello --no-progress"),
        image=real_node.node_images.flows.ref,
        container={"env": env},
        securityContext={
            "runAsNonRoot": True,
            "runAsUser": UID,
            "runAsGroup": UID,
            "fsGroup": UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    )
    started = time.monotonic()
    core.create_namespaced_pod(namespace, manifest)
    pod = finished_pod(core, namespace, "hello", timeout=180)
    print(f"\nflow pod created -> {pod.status.phase} in {time.monotonic() - started:.1f}s")
    logs = pod_logs(core, namespace, "hello")
    assert pod.status.phase == "Succeeded", logs
    assert terminated(pod).reason == "Completed"
    assert "hello, world" in logs, logs
    # The image's engine is the mypyc build (the Dockerfile turns pyproject.toml's hook on).
    assert f"headrace {headrace.__version__} (engine: compiled with mypyc)" in logs, logs


def test_the_operators_flow_pod_runs_on_the_real_node(
    cluster: Cluster, real_node: RealNode, namespace: str
) -> None:
    """The pod the operator makes for a FlowRun (podspec.build_pod), unchanged except for
    its placement, owner and finalizer (no FlowRun or operator here): the engine in the
    flow image runs the flow and leaves its outcome in the termination message."""
    from headrace.controller.podspec import RunPlan, build_pod
    from headrace.crd.models import FlowSpec
    from headrace.settings import Settings

    flow = FlowSpec.model_validate(
        {
            "image": real_node.node_images.flows.ref,
            "entrypoint": "/opt/flows/cluster_flows.py:hello",
            "pod": {
                "imagePullPolicy": "Never",
                "nodeSelector": {"kubernetes.io/hostname": real_node.name},
            },
        }
    )
    plan = RunPlan(
        namespace=namespace,
        run_name="hello-run",
        run_uid="00000000-0000-0000-0000-000000000001",
        attempt=1,
        flow=flow,
        parameters={"name": "real node", "n": 4},
        result_storage="file:///tmp/headrace",
        storage_secret=None,
        deadline=None,
        deployment=None,
        deployment_version=None,
    )
    manifest = build_pod(plan, Settings())
    del manifest["metadata"]["ownerReferences"], manifest["metadata"]["finalizers"]
    manifest["spec"]["schedulerName"] = real_node.scheduler_name
    core = cluster.core
    core.create_namespaced_pod(namespace, manifest)
    name = manifest["metadata"]["name"]
    pod = finished_pod(core, namespace, name, timeout=180)
    logs = pod_logs(core, namespace, name)
    assert pod.status.phase == "Succeeded", logs
    outcome = json.loads(terminated(pod).message)
    assert outcome["state"] == "Completed", outcome
    assert outcome["flowRunId"] == plan.run_uid, outcome
    assert "hello, real node" in logs, logs
