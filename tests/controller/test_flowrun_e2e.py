"""FlowRun end to end on the real control plane: apply, pod in a real container, engine,
status; results and records read back from S3."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import fsspec
import pytest
from kubernetes.client.exceptions import ApiException
from operator_harness import (
    FlowRuns,
    OperatorProcess,
    api_requests,
    free_port,
    operator_storage,
    poll,
    scrape_metrics,
)

from cluster.fixtures import Cluster
from cluster.node import RealNode
from headrace.records import RunRecord
from headrace.results import load_result

pytestmark = pytest.mark.cluster


def engine_running(status: dict) -> bool:
    """The engine itself has started the flow (not just the container): it handles SIGTERM."""
    if status.get("state") != "Running" or not status.get("recordLocation"):
        return False
    try:
        return RunRecord.load(status["recordLocation"]).root["state"]["name"] == "Running"
    except (FileNotFoundError, ValueError):
        return False


def condition(status: dict, kind: str) -> dict:
    return next(c for c in status.get("conditions", []) if c["type"] == kind)


def marker_url(cluster: Cluster, namespace: str) -> str:
    """Where `cluster_flows.py:sleeps` writes what ended its sleep: an object in S3, which
    the flow's container and this test both reach (no file on the node is visible here)."""
    assert cluster.s3 is not None
    return cluster.s3.url(f"markers-{namespace}/sigterm-seen")


def read_text(url: str) -> str:
    with fsspec.open(url, "r") as handle:
        return str(handle.read())


def test_flowrun_completes_with_result_and_progress(
    operator_process: OperatorProcess, flowruns: FlowRuns
) -> None:
    flowruns.create(flowruns.manifest("flowrun-hello"))
    status = flowruns.wait_final("hello", operator=operator_process)

    assert status["state"] == "Completed", status
    assert load_result(status["resultLocation"]) == {"greeting": "hello cluster", "total": 20}
    assert condition(status, "Succeeded")["status"] == "True"
    assert condition(status, "Ready")["status"] == "True"
    # Results in S3 outlive the pod: no warning (pod-local storage: test_cluster_realnode_operator).
    assert "ResultsKept" not in {c["type"] for c in status["conditions"]}
    assert status["resultLocation"].startswith("s3://")
    assert status["progress"]["counts"] == {"Completed": 5}
    record = RunRecord.load(status["recordLocation"])
    assert record.root["state"]["name"] == "Completed"
    assert status["attempts"][0]["exitCode"] == 0

    (pod,) = flowruns.pods("hello")
    # The engine's own report reached the operator through the pod, not shared storage.
    terminated = pod.status.container_statuses[0].state.terminated
    report = json.loads(terminated.message)
    assert report["state"] == "Completed" and report["result"] == status["resultLocation"]
    run = flowruns.get("hello")
    assert pod.metadata.owner_references[0].uid == run["metadata"]["uid"]
    assert pod.spec.security_context.run_as_non_root is True
    container = pod.spec.containers[0]
    assert container.security_context.allow_privilege_escalation is False
    assert container.security_context.read_only_root_filesystem is True


def test_failing_flow_ends_failed_with_its_message(
    operator_process: OperatorProcess, flowruns: FlowRuns
) -> None:
    body = flowruns.manifest(
        "flowrun-hello",
        flow=flowruns.flow_spec("cluster_flows.py:fails"),
        parameters={"reason": "the input was empty"},
    )
    flowruns.create(body, name="fails")
    status = flowruns.wait_final("fails", operator=operator_process)
    assert status["state"] == "Failed"
    assert "the input was empty" in status["message"]
    assert condition(status, "Succeeded")["status"] == "False"


def test_timeout_sends_sigterm_and_ends_timed_out(
    operator_process: OperatorProcess, flowruns: FlowRuns, crds: Cluster
) -> None:
    marker = marker_url(crds, flowruns.namespace)
    body = flowruns.manifest("flowrun-timeout")
    body["spec"]["parameters"]["marker"] = marker
    flowruns.create(body)
    running = flowruns.wait(
        "sleeps-too-long", lambda s: s.get("deadline"), 60, "a deadline", operator_process
    )
    status = flowruns.wait_final("sleeps-too-long", timeout=60, operator=operator_process)
    ended = time.time()

    assert status["state"] == "TimedOut", status
    assert read_text(marker) == "TerminationSignal"  # the engine itself got the SIGTERM
    assert status["attempts"][0]["exitCode"] == 143  # and exited on it, before any SIGKILL
    record = RunRecord.load(status["recordLocation"])
    assert record.root["state"]["name"] == "TimedOut"
    from headrace.timestamps import parse_time

    deadline = parse_time(running["deadline"])
    assert deadline is not None and ended - deadline < 10 + 1 + 2  # grace 10 s, 1 s goal, polling


def test_killed_engine_ends_crashed(
    operator_process: OperatorProcess, flowruns: FlowRuns, real_node: RealNode
) -> None:
    """SIGKILL from outside the container, as the OOM killer or a node problem would end it.
    (A flow cannot do it to itself: the engine is the container's PID 1, and the kernel
    ignores a SIGKILL sent to it from inside its own PID namespace.)"""
    flowruns.sleeper("killed", 600)
    flowruns.wait("killed", engine_running, 60, "the engine running", operator_process)
    (pod,) = flowruns.pods("killed")
    container = pod.status.container_statuses[0].container_id.removeprefix("containerd://")
    real_node.ctr("tasks", "kill", "--signal", "SIGKILL", container)
    status = flowruns.wait_final("killed", operator=operator_process)
    assert status["state"] == "Crashed"
    assert "signal 9" in status["message"] or "killed" in status["message"]


def test_invalid_manifests_are_rejected_with_the_field_named(
    flowruns: FlowRuns, crds: object
) -> None:
    body = flowruns.manifest("flowrun-hello")
    body["spec"]["flow"]["entrypoint"] = "no-flow-named-here"
    with pytest.raises(ApiException) as rejected:
        flowruns.create(body, name="bad-entrypoint")
    assert rejected.value.status == 422
    assert "spec.flow.entrypoint" in rejected.value.body

    body = flowruns.manifest("flowrun-hello", deploymentRef={"name": "some-deployment"})
    with pytest.raises(ApiException) as rejected:
        flowruns.create(body, name="both")
    assert rejected.value.status == 422
    assert "exactly one of spec.deploymentRef" in rejected.value.body

    body = flowruns.manifest("flowrun-hello")
    body["spec"]["flow"]["pod"] = {"resources": {"limits": {"cpu": "lots"}}}
    with pytest.raises(ApiException) as rejected:
        flowruns.create(body, name="bad-quantity")
    assert "spec.flow.pod.resources.limits[cpu]" in rejected.value.body

    body = flowruns.manifest("flowrun-hello", timeoutSeconds=0)
    with pytest.raises(ApiException) as rejected:
        flowruns.create(body, name="zero-timeout")
    assert "spec.timeoutSeconds" in rejected.value.body


def test_operator_restart_mid_run_adopts_the_pod(
    operator_process: OperatorProcess, flowruns: FlowRuns
) -> None:
    flowruns.sleeper("survives", 4)
    flowruns.wait_running("survives", operator_process)
    operator_process.stop(signal.SIGKILL)  # no goodbye: as if its pod were killed
    operator_process.start()
    status = flowruns.wait_final("survives", operator=operator_process)
    assert status["state"] == "Completed"
    assert len(flowruns.pods("survives")) == 1
    assert len(status["attempts"]) == 1


def test_failed_attempts_are_retried_in_new_pods(
    operator_process: OperatorProcess, flowruns: FlowRuns
) -> None:
    flowruns.create(flowruns.manifest("flowrun-retries"))
    status = flowruns.wait_final("flaky", operator=operator_process)
    assert status["state"] == "Completed", status
    assert [a["state"] for a in status["attempts"]] == ["Failed", "Completed"]
    pods = sorted(p.metadata.name for p in flowruns.pods("flaky"))
    assert pods == sorted(a["podName"] for a in status["attempts"]) and len(pods) == 2


def test_cancel_ends_the_run_cancelled_by_signal(
    operator_process: OperatorProcess, flowruns: FlowRuns, crds: Cluster
) -> None:
    marker = marker_url(crds, flowruns.namespace)
    flowruns.sleeper("cancel-me", 600, marker=marker)
    flowruns.wait("cancel-me", engine_running, 60, "the engine running", operator_process)
    flowruns.patch_spec("cancel-me", {"cancel": True})
    status = flowruns.wait_final("cancel-me", timeout=30, operator=operator_process)
    assert status["state"] == "Cancelled"
    assert read_text(marker) == "TerminationSignal"
    assert RunRecord.load(status["recordLocation"]).root["state"]["name"] == "Cancelled"


def test_progress_is_shown_while_running_and_status_stays_small(
    operator_process: OperatorProcess, flowruns: FlowRuns
) -> None:
    body = flowruns.manifest("flowrun-hello", parameters={"name": "big", "n": 10_000})
    flowruns.create(body, name="big")
    status = flowruns.wait_final("big", timeout=120, operator=operator_process)
    assert status["state"] == "Completed", status
    assert status["progress"] == {"total": 10_000, "counts": {"Completed": 10_000}, "running": []}
    run = flowruns.get("big")
    import json

    assert len(json.dumps(run)) < 256 * 1024

    flowruns.sleeper("slow", 10)
    # While it runs, the status carries the record's summary (no task runs: counts are empty).
    flowruns.wait(
        "slow",
        lambda s: "progress" in s and s.get("state") == "Running",
        60,
        "progress while running",
        operator_process,
    )


def test_events_tell_how_a_run_ended_and_its_retries(
    operator_process: OperatorProcess, flowruns: FlowRuns
) -> None:
    flowruns.create(flowruns.manifest("flowrun-hello"))
    flowruns.create(flowruns.manifest("flowrun-retries"))
    flowruns.wait_final("hello", operator=operator_process)
    flowruns.wait_final("flaky", operator=operator_process)

    def reasons(name: str) -> list[str]:
        events = flowruns.core.list_namespaced_event(
            flowruns.namespace, field_selector=f"involvedObject.name={name}"
        ).items
        return sorted(event.reason for event in events)

    # The steps in between (pod made, running) are in the status, not one Event each. The
    # operator's event thread posts them a moment after the status says the run is over.
    def posted() -> bool:
        return bool(reasons("hello")) and len(reasons("flaky")) >= 2

    poll(posted, 20, "the Events of both runs", operator_process)
    assert reasons("hello") == ["Completed"]
    assert reasons("flaky") == ["Completed", "Retrying"]


# 100 real containers (a sandbox, CNI, runc and an engine each) on 2 shared cores: 290 s
# measured on a loaded machine, near pytest's default 300 s.
@pytest.mark.timeout(900)
def test_a_hundred_flowruns_at_once_all_complete(
    operator_process: OperatorProcess, flowruns: FlowRuns
) -> None:
    names = [f"many-{i:03d}" for i in range(100)]
    for name in names:
        flowruns.create(
            flowruns.manifest("flowrun-hello", parameters={"name": name, "n": 2}), name=name
        )
    deadline = time.monotonic() + 600
    pending = set(names)
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            if flowruns.status(name).get("state") in {"Completed", "Failed", "Crashed"}:
                pending.discard(name)
        time.sleep(1)
    assert not pending, f"{len(pending)} FlowRuns did not finish: {sorted(pending)[:5]}"
    states = {flowruns.status(name)["state"] for name in names}
    assert states == {"Completed"}


def test_flowrun_from_a_deployment_merges_parameters_and_sees_its_version(
    operator_process: OperatorProcess, flowruns: FlowRuns
) -> None:
    for body in flowruns.manifests("deployment-hello"):
        flowruns.apply(body)
    status = flowruns.wait_final("hello-from-deployment", operator=operator_process)
    assert status["state"] == "Completed", status
    assert status["deployment"] == "hello"
    # The FlowRun's n=4 overrides the Deployment's n=2; name comes from the Deployment.
    assert load_result(status["resultLocation"]) == {
        "greeting": "hello from-the-deployment",
        "total": 12,
    }
    (pod,) = flowruns.pods("hello-from-deployment")
    env = {item.name: item.value for item in pod.spec.containers[0].env}
    assert env["HEADRACE_DEPLOYMENT_VERSION"] == "1.4.0"


def test_a_run_waits_visibly_for_a_missing_deployment(
    operator_process: OperatorProcess, flowruns: FlowRuns
) -> None:
    deployment, run = flowruns.manifests("deployment-hello")
    flowruns.apply(run)  # before its Deployment, as a GitOps sync may do
    status = flowruns.wait(
        "hello-from-deployment",
        lambda s: "not found" in (s.get("message") or ""),
        60,
        "a message naming the missing Deployment",
        operator_process,
    )
    assert status["state"] == "Scheduled" and "'hello'" in status["message"]
    assert {c["reason"] for c in status["conditions"]} == {"DeploymentNotFound"}
    assert flowruns.pods("hello-from-deployment") == []
    flowruns.apply(deployment)
    assert (
        flowruns.wait_final("hello-from-deployment", operator=operator_process)["state"]
        == "Completed"
    )


def test_deleting_a_flowrun_removes_its_pod(
    operator_process: OperatorProcess, flowruns: FlowRuns
) -> None:
    flowruns.sleeper("short-lived", 600)
    flowruns.wait_running("short-lived", operator_process)
    flowruns.delete("short-lived")
    deadline = time.monotonic() + 60
    while flowruns.pods("short-lived") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert flowruns.pods("short-lived") == [], operator_process.log()[-3000:]


def test_a_pod_the_api_refuses_gives_a_clear_status(
    operator_process: OperatorProcess, flowruns: FlowRuns
) -> None:
    invalid = flowruns.flow_spec("cluster_flows.py:hello")
    invalid["pod"] = {"labels": {"team": "data science!"}}  # not a valid label value
    flowruns.create(flowruns.manifest("flowrun-hello", flow=invalid), name="bad-label")
    status = flowruns.wait_final("bad-label", operator=operator_process)
    assert status["state"] == "Failed"
    assert "the flow pod is invalid" in status["message"]
    assert "metadata.labels" in status["message"] and "data science!" in status["message"]

    missing = flowruns.flow_spec("cluster_flows.py:hello")
    missing["pod"] = {"serviceAccountName": "not-created-yet"}
    flowruns.create(flowruns.manifest("flowrun-hello", flow=missing), name="no-account")
    status = flowruns.wait(
        "no-account",
        lambda s: "cannot create the flow pod yet" in (s.get("message") or ""),
        60,
        "a message about the refused pod",
        operator_process,
    )
    assert "not-created-yet" in status["message"]
    reasons = {c["type"]: c["reason"] for c in status["conditions"]}
    assert reasons["Reconciling"] == "PodCreationFailed"
    flowruns.core.create_namespaced_service_account(
        flowruns.namespace,
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "not-created-yet"}},
    )
    assert flowruns.wait_final("no-account", operator=operator_process)["state"] == "Completed"


def test_a_trivial_flowrun_costs_the_operator_at_most_six_api_requests(
    crds: Cluster, real_node: RealNode, namespace: str, tmp_path: Path, flowruns: FlowRuns
) -> None:
    """Watch-driven: the operator reads from its cache, so what it sends per run is the pod,
    at most three status writes (its first, Running, its end), the pod's finalizer and one
    Event. A run still going two progress intervals after its first write also gets a
    progress write per interval, by design. The interval here is long enough that a trivial
    run on a loaded machine never gets one: at the default 2 s, trivial runs there ended 5-6 s
    after their pods were made, and one in ten once got a progress write before its end."""
    port = free_port()
    operator = OperatorProcess(
        crds.kubeconfig,
        namespace,
        tmp_path,
        HEADRACE_METRICS_PORT=str(port),
        HEADRACE_PROGRESS_INTERVAL="5",
        **operator_storage(crds, namespace),
    ).start()
    try:
        before = poll(lambda: _requests_or_none(port), 60, "the operator's metrics", operator)
        names = [f"trivial-{index}" for index in range(10)]
        for name in names:
            flowruns.create(flowruns.manifest("flowrun-hello", parameters={"n": 1}), name=name)
        for name in names:
            assert flowruns.wait_final(name, operator=operator)["state"] == "Completed"
        per_run = (api_requests(port) - before) / len(names)
        samples = scrape_metrics(port)["headrace_kube_api_request_duration_seconds"]
        calls = {
            f"{s.labels['method']} {s.labels['resource']}": s.value
            for s in samples
            if s.name.endswith("_count")
        }
        assert per_run <= 6, f"{per_run} per run: {calls}"
    finally:
        flowruns.delete_all()
        operator.stop()


def _requests_or_none(port: int) -> int | None:
    """The count once the operator is up: its three first lists (Deployments, FlowRuns, pods)
    and the two watches its informers open."""
    try:
        count = api_requests(port)
    except OSError:
        return None
    return count if count >= 5 else None
