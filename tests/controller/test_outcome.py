"""The pod-to-state mapping: what each way a pod can end means for the run."""

from __future__ import annotations

import json
from typing import Any

import pytest

from headrace.controller.outcome import pod_outcome


def pod(phase: str, state: dict[str, Any] | None = None, **status: Any) -> dict[str, Any]:
    containers = [{"name": "flow", "state": state}] if state is not None else []
    return {"status": {"phase": phase, "containerStatuses": containers, **status}}


def terminated(code: int, reason: str = "", message: str = "", **extra: Any) -> dict[str, Any]:
    return {"terminated": {"exitCode": code, "reason": reason, "message": message, **extra}}


def report(state: str, message: str = "", **extra: Any) -> str:
    return json.dumps({"state": state, "message": message, **extra})


def test_clean_exit_completes_with_the_engine_report() -> None:
    outcome = pod_outcome(
        pod("Succeeded", terminated(0, "Completed", report("Completed", result="file:///r"))), None
    )
    assert outcome.state == "Completed" and outcome.report["result"] == "file:///r"


def test_flow_failure_reports_the_engine_message() -> None:
    outcome = pod_outcome(
        pod("Failed", terminated(1, "Error", report("Failed", "ValueError: bad"))), None
    )
    assert (outcome.state, outcome.message) == ("Failed", "ValueError: bad")


def test_engine_timeout_is_timed_out() -> None:
    outcome = pod_outcome(
        pod("Failed", terminated(1, "Error", report("TimedOut", "flow run exceeded"))), None
    )
    assert outcome.state == "TimedOut"


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (terminated(137, "OOMKilled"), "ran out of memory"),
        (terminated(137, "Error"), "killed (signal 9)"),
        (terminated(2, "Error", "EntrypointError: no flow"), "exited with code 2"),
        (
            {"waiting": {"reason": "ImagePullBackOff", "message": "no such image"}},
            "ImagePullBackOff",
        ),
        ({"waiting": {"reason": "CreateContainerConfigError", "message": "secret x"}}, "secret x"),
    ],
)
def test_what_the_engine_cannot_report_is_crashed(state: dict[str, Any], expected: str) -> None:
    outcome = pod_outcome(pod("Failed" if "terminated" in state else "Pending", state), None)
    assert outcome.state == "Crashed"
    assert expected in outcome.message


def test_eviction_is_crashed() -> None:
    outcome = pod_outcome(pod("Failed", reason="Evicted", message="node low on memory"), None)
    assert outcome.state == "Crashed" and "node low on memory" in outcome.message


def test_a_stop_the_operator_asked_for_ends_in_that_state() -> None:
    assert pod_outcome(pod("Failed", terminated(143, "Error")), "TimedOut").state == "TimedOut"
    assert pod_outcome(pod("Failed", terminated(137, "Error")), "Cancelled").state == "Cancelled"
    assert pod_outcome(None, "Cancelled").state == "Cancelled"


def test_a_vanished_pod_is_crashed_unless_stopping() -> None:
    lost = pod_outcome(None, None)
    assert (lost.state, lost.reason) == ("Crashed", "PodLost")  # health checks show "Lost"
    assert pod_outcome(None, "Cancelled").reason is None


def test_running_and_pending() -> None:
    running = pod_outcome(pod("Running", {"running": {"startedAt": "2026-01-01T00:00:00Z"}}), None)
    assert (running.state, running.started_at) == ("Running", "2026-01-01T00:00:00Z")
    assert (
        pod_outcome(pod("Pending", {"waiting": {"reason": "ContainerCreating"}}), None).state
        == "Pending"
    )


def test_the_record_stands_in_for_a_missing_termination_message() -> None:
    outcome = pod_outcome(
        pod("Failed", terminated(1, "Error")),
        None,
        lambda: {"state": "Failed", "message": "from the record"},
    )
    assert (outcome.state, outcome.message) == ("Failed", "from the record")


def deleted(pod_: dict[str, Any], at: str = "2026-11-25T10:00:00Z") -> dict[str, Any]:
    pod_["metadata"] = {"deletionTimestamp": at, "deletionGracePeriodSeconds": 30}
    return pod_


def test_a_stopped_pod_whose_container_never_started_ends_at_once() -> None:
    never_scheduled = deleted(pod("Pending"))
    outcome = pod_outcome(never_scheduled, "TimedOut")
    assert outcome.state == "TimedOut" and "before the flow container started" in outcome.message
    pulling = deleted(pod("Pending", {"waiting": {"reason": "ErrImagePull"}}))
    assert pod_outcome(pulling, "Cancelled").state == "Cancelled"
    # Not asked to stop: a pod being deleted by someone else is judged as before.
    assert pod_outcome(pulling, None).state == "Crashed"


def test_a_stopped_pod_whose_node_stays_silent_ends_after_a_margin() -> None:
    running = deleted(pod("Running", {"running": {"startedAt": "2026-11-25T09:59:00Z"}}))
    due = 1_795_600_800.0  # 2026-11-25T10:00:00Z, when SIGKILL was due
    assert not pod_outcome(running, "TimedOut", now=due + 5).final
    late = pod_outcome(running, "TimedOut", now=due + 31)
    assert late.state == "TimedOut" and "never reported" in late.message


def made_at(body: dict[str, Any], stamp: str) -> dict[str, Any]:
    return {**body, "metadata": {"creationTimestamp": stamp}}


MADE = "2026-01-01T00:00:00Z"
MADE_UNIX = 1767225600.0


@pytest.mark.parametrize(
    "reason", ["ErrImagePull", "ImagePullBackOff", "CreateContainerError", "RunContainerError"]
)
def test_a_start_error_the_kubelet_retries_waits_its_grace_then_crashes(reason: str) -> None:
    """Under load a runtime times out creating a container, and the kubelet's next try works;
    a registry hiccups: such a run is not ended at the first sight of the error."""
    waiting = made_at(
        pod("Pending", {"waiting": {"reason": reason, "message": "context deadline exceeded"}}),
        MADE,
    )
    early = pod_outcome(waiting, None, now=MADE_UNIX + 30, start_grace=300)
    assert (early.state, early.reason) == ("Pending", "StartError")
    assert f"{reason}: context deadline exceeded" in early.message
    assert "300 s after it was made" in early.message
    late = pod_outcome(waiting, None, now=MADE_UNIX + 301, start_grace=300)
    assert late.state == "Crashed" and late.message == f"{reason}: context deadline exceeded"


def test_a_start_error_no_retry_can_fix_crashes_at_once() -> None:
    bad = made_at(pod("Pending", {"waiting": {"reason": "InvalidImageName", "message": "x"}}), MADE)
    outcome = pod_outcome(bad, None, now=MADE_UNIX + 1, start_grace=300)
    assert (outcome.state, outcome.message) == ("Crashed", "InvalidImageName: x")
