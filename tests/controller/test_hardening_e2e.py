"""What a user who may only create FlowRuns can make the operator do, on the real API server.

Each test is one answer to "what if the spec says this?": splice a Secret into the command,
flood the status with text, nest parameters thousands of levels deep, make the operator fetch
a URL or wait on a server that never answers, or hand it a pod it does not own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import http.server
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from operator_harness import GROUP, VERSION, FlowRuns, OperatorProcess, poll

from cluster.fixtures import Cluster
from cluster.node import RealNode
from headrace.controller.podspec import pod_name
from headrace.pod_protocol import MAX_PARAMETERS_BYTES
from headrace.results import load_result

pytestmark = pytest.mark.cluster

SECRET_VALUE = "hunter2-not-for-your-eyes"


def events_text(cluster: Cluster, namespace: str) -> str:
    events = cluster.core.list_namespaced_event(namespace).items
    return "\n".join(f"{event.reason}: {event.message}" for event in events)


def make_secret(cluster: Cluster, namespace: str) -> None:
    cluster.core.create_namespaced_secret(
        namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name="db"), string_data={"pw": SECRET_VALUE}),
    )


def with_secret_env(flowruns: FlowRuns, entry: str) -> dict[str, Any]:
    spec = flowruns.flow_spec(entry)
    spec["pod"] = {
        **spec.get("pod", {}),
        "env": [{"name": "DB_PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}],
    }
    return spec


def test_variable_references_in_the_spec_never_expand_to_a_secret(
    operator_process: OperatorProcess, flowruns: FlowRuns, crds: Cluster, namespace: str
) -> None:
    make_secret(crds, namespace)
    # The kubelet expands $(VAR) in command, args and env values: the entrypoint and the
    # parameters must reach the engine exactly as written.
    spec = with_secret_env(flowruns, "cluster_flows.py:hello")
    spec["entrypoint"] = "/$(DB_PW)/flows.py:hello"
    flowruns.create(flowruns.manifest("flowrun-hello", flow=spec), name="splice-entry")
    spec = with_secret_env(flowruns, "cluster_flows.py:hello")
    greeting = "$(DB_PW) $(HEADRACE_FLOW_RUN_ID) $$"
    body = flowruns.manifest("flowrun-hello", flow=spec, parameters={"name": greeting, "n": 1})
    flowruns.create(body, name="splice-params")

    failed = flowruns.wait_final("splice-entry", operator=operator_process)
    assert failed["state"] in {"Failed", "Crashed"}
    assert "/$(DB_PW)/flows.py" in failed["message"], failed["message"]
    done = flowruns.wait_final("splice-params", operator=operator_process)
    assert done["state"] == "Completed", done
    assert load_result(done["resultLocation"])["greeting"] == f"hello {greeting}"
    for text in (str(failed), str(done), events_text(crds, namespace), operator_process.log()):
        assert SECRET_VALUE not in text


def test_a_secret_block_comes_from_a_secret_the_creator_may_read_and_stays_in_the_pod(
    operator_process: OperatorProcess, flowruns: FlowRuns, crds: Cluster, namespace: str
) -> None:
    """Prefect 2's `Secret.load("db-password")` in a real container, its value from a Secret
    through `pod.env` (the admission policy checks the creator may read that Secret)."""
    make_secret(crds, namespace)
    spec = flowruns.flow_spec("cluster_flows.py:uses_a_secret")
    spec["pod"] = {
        **spec.get("pod", {}),
        "env": [
            {
                "name": "HEADRACE_BLOCK_SECRET__DB_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}},
            },
            {"name": "HEADRACE_VARIABLE_REGION", "value": "eu-west"},
        ],
    }
    body = flowruns.manifest("flowrun-hello", flow=spec, parameters={})
    flowruns.create(body, name="secret-block")
    status = flowruns.wait_final("secret-block", operator=operator_process)
    assert status["state"] == "Completed", status
    assert load_result(status["resultLocation"]) == {
        "sha256": hashlib.sha256(SECRET_VALUE.encode()).hexdigest(),
        "region": "eu-west",
    }
    (pod,) = flowruns.pods("secret-block")
    pod_log = crds.core.read_namespaced_pod_log(pod.metadata.name, namespace)
    assert "SecretStr('**********')" in pod_log
    texts = (str(status), events_text(crds, namespace), operator_process.log(), pod_log)
    for text in texts:
        assert SECRET_VALUE not in text

    spec["pod"]["env"][0]["name"] = "HEADRACE_BLOCK_SECRET__OTHER"  # not the block it loads
    body = flowruns.manifest("flowrun-hello", flow=spec, parameters={})
    flowruns.create(body, name="secret-unset")
    failed = flowruns.wait_final("secret-unset", operator=operator_process)
    assert failed["state"] == "Failed"
    assert "set HEADRACE_BLOCK_SECRET__DB_PASSWORD" in failed["message"], failed["message"]


def test_a_flood_of_error_text_is_bounded_in_status_and_events(
    operator_process: OperatorProcess, flowruns: FlowRuns, crds: Cluster, namespace: str
) -> None:
    body = flowruns.manifest(
        "flowrun-hello",
        flow=flowruns.flow_spec("cluster_flows.py:fails"),
        parameters={"reason": "spam " * 3000},
    )
    flowruns.create(body, name="chatty")
    status = flowruns.wait_final("chatty", operator=operator_process)
    assert status["state"] == "Failed"
    assert status["message"].startswith("ValueError: spam spam")
    assert len(status["message"]) <= 1024
    assert all(len(attempt["message"]) <= 1024 for attempt in status["attempts"])

    def failed_events() -> list[Any]:  # posted by the operator's event thread, a moment later
        items = crds.core.list_namespaced_event(namespace).items
        return [event for event in items if event.reason == "Failed"]

    events = poll(failed_events, 20, "a Failed Event on the FlowRun", operator_process)
    assert all(len(event.message) <= 1024 for event in events)


def nested(depth: int) -> str:
    return '{"a": ' * depth + '"leaf"' + "}" * depth


def post_json(cluster: Cluster, namespace: str, plural: str, text: str) -> httpx.Response:
    """POST a body as written: the Python client cannot even serialise what we send here."""
    config = cluster.api_client.configuration
    auth = config.auth_settings()["BearerToken"]
    url = f"{config.host}/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{plural}"
    headers = {"Content-Type": "application/json", auth["key"]: auth["value"]}
    verify = ssl.create_default_context(cafile=config.ssl_ca_cert)
    return httpx.post(url, content=text, headers=headers, verify=verify, timeout=60)


def deep_flowrun(flowruns: FlowRuns, name: str, depth: int) -> str:
    entry = flowruns.flow_spec("cluster_flows.py:hello")
    return (
        f'{{"apiVersion": "{GROUP}/{VERSION}", "kind": "FlowRun", "metadata": {{"name": "{name}"}},'
        f' "spec": {{"flow": {{"image": "{entry["image"]}", "entrypoint": "{entry["entrypoint"]}"}},'
        f' "parameters": {{"name": "deep", "n": 1, "extra": {nested(depth)}}}}}}}'
    )


@pytest.fixture
def deep_reader() -> Iterator[None]:
    """This test's own client decodes those FlowRuns too."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(60_000)
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)


@pytest.mark.usefixtures("deep_reader")
def test_deeply_nested_parameters_leave_the_operator_running(
    operator_process: OperatorProcess, flowruns: FlowRuns, crds: Cluster, namespace: str
) -> None:
    # The API server refuses JSON nested 10,000 levels deep: 9,990 here plus the envelope is
    # the deepest FlowRun it stores.
    depths = {"deep-500": 500, "deep-1000": 1000, "deep-max": 9990}
    for name, depth in depths.items():
        response = post_json(crds, namespace, "flowruns", deep_flowrun(flowruns, name, depth))
        assert response.status_code == 201, response.text[:500]
    for name in depths:
        status = flowruns.wait_final(name, timeout=120, operator=operator_process)
        assert status["message"], status  # a final state that says why, not silence
    assert operator_process.process is not None and operator_process.process.poll() is None
    flowruns.create(flowruns.manifest("flowrun-hello"))
    assert flowruns.wait_final("hello", operator=operator_process)["state"] == "Completed"


def test_parameters_too_big_for_the_pod_fail_with_the_limit_named(
    operator_process: OperatorProcess, flowruns: FlowRuns
) -> None:
    big = {"name": "x" * 1_000_000, "n": 1}  # a 1 MB FlowRun: the API server stores it
    flowruns.create(flowruns.manifest("flowrun-hello", parameters=big), name="too-big")
    status = flowruns.wait_final("too-big", timeout=60, operator=operator_process)
    assert status["state"] == "Failed"
    assert f"at most {MAX_PARAMETERS_BYTES:,} bytes" in status["message"]
    assert "spec.parameters" in status["message"]
    assert not flowruns.pods("too-big")
    flowruns.create(flowruns.manifest("flowrun-hello"))
    assert flowruns.wait_final("hello", operator=operator_process)["state"] == "Completed"


class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: list[str]

    def do_GET(self) -> None:
        self.requests.append(f"GET {self.path}")
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"type": "object"}')

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def recording_server() -> Iterator[tuple[str, list[str]]]:
    handler = type("Recorder", (_Recorder,), {"requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.requests
    finally:
        server.shutdown()
        server.server_close()


def test_an_invalid_parameter_schema_is_reported_not_retried_forever(
    operator_process: OperatorProcess, flowruns: FlowRuns
) -> None:
    flowruns.deployment("bad-schema", parameterSchema={"type": "nonsense"})
    ready = not_ready(flowruns, "bad-schema", "InvalidParameterSchema", operator_process)
    assert "spec.parameterSchema" in ready["message"]
    flowruns.run_of("bad-schema", "of-bad-schema")
    status = flowruns.wait_final("of-bad-schema", timeout=60, operator=operator_process)
    assert status["state"] == "Failed"
    assert "spec.parameterSchema is not a valid JSON schema" in status["message"]
    assert "Traceback" not in operator_process.log()


def test_a_remote_ref_in_a_parameter_schema_is_never_fetched(
    operator_process: OperatorProcess, flowruns: FlowRuns
) -> None:
    with recording_server() as (url, requests):
        flowruns.deployment("remote-ref", parameterSchema={"$ref": f"{url}/schema.json"})
        flowruns.run_of("remote-ref", "of-remote-ref")
        status = flowruns.wait_final("of-remote-ref", timeout=60, operator=operator_process)
        assert status["state"] == "Failed"
        assert "only references inside the schema" in status["message"]
        assert requests == []


def not_ready(
    flowruns: FlowRuns, deployment: str, reason: str, operator: OperatorProcess
) -> dict[str, Any]:
    """Wait for the Deployment's Ready condition to be False with `reason`; return it."""

    def found(status: dict[str, Any]) -> dict[str, Any] | None:
        for condition in status.get("conditions") or []:
            if condition["type"] == "Ready" and condition["reason"] == reason:
                assert condition["status"] == "False"
                return dict(condition)
        return None

    condition: dict[str, Any] = flowruns.wait_deployment(deployment, found, operator)
    return condition


@contextlib.contextmanager
def silent_server(host: str) -> Iterator[tuple[str, list[socket.socket]]]:
    """Accepts connections and never answers, like a storage endpoint that hangs; on
    `host`, the node's bridge address, where the flow pods and the operator both reach it."""
    listener = socket.create_server((host, 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{listener.getsockname()[1]}/store", accepted
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


def test_storage_that_never_answers_stalls_nothing_and_is_not_read_by_the_operator(
    operator_process: OperatorProcess, flowruns: FlowRuns, real_node: RealNode
) -> None:
    with silent_server(real_node.host_ip) as (url, accepted):
        for index in range(8):
            body = flowruns.manifest("flowrun-hello", resultStorage=url, timeoutSeconds=60)
            body["spec"]["flow"] = flowruns.flow_spec("cluster_flows.py:sleeps")
            body["spec"]["parameters"] = {"seconds": 30}
            flowruns.create(body, name=f"stuck-{index}")
        for index in range(8):
            flowruns.wait(
                f"stuck-{index}", lambda s: bool(s.get("recordLocation")), 60, "a pod", None
            )
        time.sleep(2)  # the operator's progress looks at the eight runs have come due
        started = time.monotonic()
        flowruns.create(flowruns.manifest("flowrun-hello"))
        status = flowruns.wait_final("hello", timeout=60, operator=operator_process)
        assert status["state"] == "Completed"
        assert time.monotonic() - started < 30
        assert all(b"record.jsonl" not in _peek(conn) for conn in accepted)


def _peek(conn: socket.socket) -> bytes:
    conn.setblocking(False)
    with contextlib.suppress(BlockingIOError, OSError):
        return conn.recv(65536, socket.MSG_PEEK)
    return b""


def test_a_pod_of_the_same_name_that_the_run_does_not_own_is_never_adopted(
    operator_process: OperatorProcess, flowruns: FlowRuns, crds: Cluster, namespace: str
) -> None:
    run = flowruns.run_of("arrives-later", "squatted")
    flowruns.wait(
        "squatted", lambda s: s.get("state") == "Scheduled", 30, "Scheduled", operator_process
    )
    name = pod_name("squatted", run["metadata"]["uid"], 1)
    squatter = client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={"app": "squatter"}),
        spec=client.V1PodSpec(
            restart_policy="Never",
            containers=[client.V1Container(name="flow", image=crds.pod_image, command=["true"])],
        ),
    )
    crds.core.create_namespaced_pod(namespace, squatter)
    flowruns.deployment("arrives-later")
    status = flowruns.wait_final("squatted", timeout=60, operator=operator_process)
    assert status["state"] == "Failed"
    assert f"pod {name} exists but is not owned by this FlowRun" in status["message"]
    pod = crds.core.read_namespaced_pod(name, namespace)
    assert pod.metadata.labels == {"app": "squatter"}
    assert not pod.metadata.owner_references


def test_the_api_server_refuses_a_flowrun_spec_that_cannot_be_made_safe(
    crds: Cluster, flowruns: FlowRuns
) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"env": [{"name": "HEADRACE_RESULT_STORAGE", "value": "x"}]}, "HEADRACE_* variables"),
        ({"env": [{"name": "HEADRACE_BLOCKS", "value": "x"}]}, "HEADRACE_* variables"),
        (
            {"annotations": {"container.apparmor.security.beta.kubernetes.io/flow": "unconfined"}},
            "AppArmor and seccomp annotations",
        ),
        (
            {"annotations": {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}},
            "AppArmor and seccomp annotations",
        ),
        ({"resources": {"limits": {"memory": "1.2.3Gi"}}}, "must be a Kubernetes quantity"),
        ({"resources": {"requests": {"cpu": "1KK"}}}, "must be a Kubernetes quantity"),
    ]
    for pod, complaint in cases:
        spec = {**flowruns.flow_spec("cluster_flows.py:hello"), "pod": pod}
        with pytest.raises(ApiException) as refused:
            flowruns.create(flowruns.manifest("flowrun-hello", flow=spec), name="refused")
        assert refused.value.status == 422
        assert complaint in str(refused.value.body), (pod, refused.value.body)
        assert "spec.flow.pod" in str(refused.value.body)
    with pytest.raises(ApiException) as refused:
        flowruns.create(flowruns.manifest("flowrun-hello", timeoutSeconds=10**12), name="forever")
    assert "spec.timeoutSeconds" in str(refused.value.body)
    spec = {
        **flowruns.flow_spec("cluster_flows.py:hello"),
        "pod": {"resources": {"limits": {"memory": "1Gi", "cpu": "250m"}}},
    }
    flowruns.create(flowruns.manifest("flowrun-hello", flow=spec), name="fine")


def test_the_api_server_bounds_a_runs_dask_cluster_naming_the_field(
    crds: Cluster, flowruns: FlowRuns
) -> None:
    """A manifest cannot ask for a thousand worker pods, or a worker quantity Kubernetes
    would refuse later."""
    cases: list[tuple[dict[str, Any], str]] = [
        ({"workers": 1000}, "spec.taskRunner.dask.workers"),
        ({"workers": 0}, "spec.taskRunner.dask.workers"),
        ({"threadsPerWorker": 65}, "spec.taskRunner.dask.threadsPerWorker"),
        ({"resources": {"limits": {"memory": "lots"}}}, "must be a Kubernetes quantity"),
    ]
    for dask, complaint in cases:
        with pytest.raises(ApiException) as refused:
            flowruns.create(
                flowruns.manifest("flowrun-hello", taskRunner={"dask": dask}), name="refused"
            )
        assert refused.value.status == 422
        assert complaint in str(refused.value.body), (dask, refused.value.body)
    flowruns.create(
        flowruns.manifest("flowrun-hello", taskRunner={"dask": {"workers": 64}}), name="fine"
    )


def test_the_api_server_refuses_a_cron_with_a_seconds_field(
    crds: Cluster, flowruns: FlowRuns
) -> None:
    with pytest.raises(ApiException) as refused:
        flowruns.deployment("six-fields", schedule={"cron": "*/5 * * * * *"})
    assert refused.value.status == 422
    assert "a seconds field is not supported" in str(refused.value.body)
    assert "spec.schedule.cron" in str(refused.value.body)


def test_a_cron_that_never_fires_is_reported(
    operator_process: OperatorProcess, flowruns: FlowRuns
) -> None:
    flowruns.deployment("february-30", schedule={"cron": "0 0 30 2 *"})
    ready = not_ready(flowruns, "february-30", "InvalidSchedule", operator_process)
    assert "never fires" in ready["message"]


def test_a_timeout_of_a_pod_that_never_starts_ends_the_run_and_frees_the_pod(
    operator_process: OperatorProcess, flowruns: FlowRuns, crds: Cluster, namespace: str
) -> None:
    # No node matches: the pod is never scheduled, so no kubelet will ever end it.
    spec = flowruns.flow_spec("cluster_flows.py:hello")
    spec["pod"] = {"nodeSelector": {"headrace.dev/no-such-node": "true"}}
    flowruns.create(flowruns.manifest("flowrun-hello", flow=spec, timeoutSeconds=2), name="nowhere")
    status = flowruns.wait_final("nowhere", timeout=60, operator=operator_process)
    assert status["state"] == "TimedOut"
    assert "before the flow container started" in status["attempts"][0]["message"]
    poll(lambda: not flowruns.pods("nowhere"), 30, "the unscheduled pod to be gone")


def test_only_cancel_and_timeout_can_change_and_a_new_timeout_applies(
    operator_process: OperatorProcess, flowruns: FlowRuns
) -> None:
    flowruns.sleeper("resized", 600)
    flowruns.wait_running("resized", operator_process)
    with pytest.raises(ApiException) as refused:
        flowruns.patch_spec("resized", {"parameters": {"seconds": 1}})
    assert refused.value.status == 422
    assert "only spec.cancel and spec.timeoutSeconds can change" in str(refused.value.body)
    flowruns.patch_spec("resized", {"timeoutSeconds": 3})
    status = flowruns.wait_final("resized", timeout=60, operator=operator_process)
    assert status["state"] == "TimedOut"
    began = dt.datetime.fromisoformat(status["attempts"][0]["startTime"])
    deadline = dt.datetime.fromisoformat(status["deadline"])
    assert abs((deadline - began).total_seconds() - 3) < 1


def test_a_deployment_deleted_mid_run_keeps_the_runs_retries(
    operator_process: OperatorProcess, flowruns: FlowRuns
) -> None:
    flowruns.deployment("short-lived", entry="cluster_flows.py:flaky", retries=1)
    flowruns.run_of("short-lived", "orphaned", retryDelaySeconds=3)
    flowruns.wait(
        "orphaned", lambda s: s.get("state") == "Retrying", 60, "Retrying", operator_process
    )
    flowruns.api.delete_namespaced_custom_object(
        GROUP, VERSION, flowruns.namespace, "deployments", "short-lived"
    )
    status = flowruns.wait_final("orphaned", timeout=60, operator=operator_process)
    assert status["state"] == "Completed", status
    assert [a["state"] for a in status["attempts"]] == ["Failed", "Completed"]
    assert status["resolved"]["flow"]["entrypoint"].endswith("cluster_flows.py:flaky")
