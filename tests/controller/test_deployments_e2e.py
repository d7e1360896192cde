"""Deployments on the real control plane: schedules, concurrency, parameters, history."""

from __future__ import annotations

import itertools
import re
import time

import pytest
from operator_harness import FlowRuns, OperatorProcess, poll

pytestmark = pytest.mark.cluster

SCHEDULED = re.compile(r"^ticker-\d{8}-\d{6}$")


def test_interval_schedule_creates_runs_with_names_from_their_time(
    operator_process: OperatorProcess, flowruns: FlowRuns
) -> None:
    flowruns.deployment("ticker", schedule={"intervalSeconds": 2}, parameters={"n": 1})
    names = poll(
        lambda: (
            [n for n in flowruns.names() if SCHEDULED.match(n)][:2]
            if len(flowruns.names()) >= 2
            else None
        ),
        20,
        "two scheduled runs",
        operator_process,
    )
    for name in names:
        assert flowruns.wait_final(name, operator=operator_process)["state"] == "Completed"
    stamps = sorted(int(n[-6:]) for n in names)
    status = poll(
        lambda: (s := flowruns.deployment_status("ticker")).get("runs", {}).get("Completed") and s,
        20,
        "run counts",
        operator_process,
    )
    assert status["lastScheduleTime"] and status["nextScheduleTime"] > status["lastScheduleTime"]
    assert next(c for c in status["conditions"] if c["type"] == "Ready")["status"] == "True"
    assert stamps[0] != stamps[1]


def test_restart_neither_misses_nor_duplicates_runs(
    operator_process: OperatorProcess, flowruns: FlowRuns
) -> None:
    flowruns.deployment(
        "ticker",
        schedule={"intervalSeconds": 2, "startingDeadlineSeconds": 30},
        parameters={"n": 1},
    )
    poll(
        lambda: flowruns.deployment_status("ticker").get("lastScheduleTime"),
        20,
        "a first scheduled run",
        operator_process,
    )
    operator_process.stop()
    down_from = time.time()
    time.sleep(5)  # two or three schedule times pass with no operator
    operator_process.start()
    poll(lambda: len(flowruns.names()) >= 4, 30, "the missed runs", operator_process)
    time.sleep(1)
    names = [n for n in flowruns.names() if SCHEDULED.match(n)]
    assert len(names) == len(set(names))
    seconds = sorted(
        time.mktime(time.strptime(n[7:], "%Y%m%d-%H%M%S")) - time.timezone for n in names
    )
    gaps = {round(b - a) for a, b in itertools.pairwise(seconds)}
    assert gaps == {2}, f"every 2 s slot has exactly one run: {names}"
    assert any(s > down_from for s in seconds)


def test_missed_runs_past_the_starting_deadline_are_skipped(
    operator_process: OperatorProcess, flowruns: FlowRuns
) -> None:
    flowruns.deployment(
        "ticker",
        schedule={"intervalSeconds": 1, "startingDeadlineSeconds": 1},
        suspend=True,
        parameters={"n": 1},
    )

    def suspended() -> bool:
        conditions = flowruns.deployment_status("ticker").get("conditions") or []
        return any(c["reason"] == "Suspended" for c in conditions)

    flowruns.wait_deployment("ticker", lambda _: suspended(), operator_process)
    time.sleep(3)
    assert flowruns.names() == []  # suspended: nothing runs
    flowruns.patch_deployment("ticker", {"suspend": False})
    poll(lambda: flowruns.names(), 20, "a run after resuming", operator_process)

    def missed() -> bool:  # Events are posted by the operator's event thread, a moment later
        events = flowruns.core.list_namespaced_event(
            flowruns.namespace, field_selector="involvedObject.name=ticker"
        ).items
        return any(event.reason == "MissedSchedule" for event in events)

    poll(missed, 20, "a MissedSchedule Event on the Deployment", operator_process)


def test_queue_keeps_runs_scheduled_until_a_slot_frees(
    operator_process: OperatorProcess, flowruns: FlowRuns
) -> None:
    flowruns.deployment(
        "one-at-a-time",
        entry="cluster_flows.py:sleeps",
        concurrencyLimit=1,
        concurrencyPolicy="Queue",
        parameters={"seconds": 2},
    )
    for name in ("q-1", "q-2", "q-3"):
        flowruns.run_of("one-at-a-time", name)
        time.sleep(0.05)  # distinct creation order
    waiting = flowruns.wait(
        "q-2",
        lambda s: s.get("state") == "Scheduled" and "slot" in s.get("message", ""),
        30,
        "q-2 waiting for a slot",
        operator_process,
    )
    reasons = {c["reason"] for c in waiting["conditions"]}
    assert "WaitingForConcurrencySlot" in reasons
    overlaps = 0
    while True:
        states = {n: flowruns.status(n).get("state") for n in ("q-1", "q-2", "q-3")}
        overlaps = max(overlaps, sum(1 for s in states.values() if s in {"Pending", "Running"}))
        if all(s == "Completed" for s in states.values()):
            break
        time.sleep(0.1)
    assert overlaps == 1
    starts = [flowruns.status(n)["attempts"][0]["startTime"] for n in ("q-1", "q-2", "q-3")]
    assert starts == sorted(starts)


def test_forbid_cancels_and_replace_takes_over(
    operator_process: OperatorProcess, flowruns: FlowRuns
) -> None:
    flowruns.deployment(
        "exclusive",
        entry="cluster_flows.py:sleeps",
        concurrencyLimit=1,
        concurrencyPolicy="Forbid",
        parameters={"seconds": 600},
    )
    flowruns.run_of("exclusive", "first")
    flowruns.wait_running("first", operator_process)
    flowruns.run_of("exclusive", "second")
    second = flowruns.wait_final("second", operator=operator_process)
    assert second["state"] == "Cancelled" and "Forbid" in second["message"]
    assert flowruns.pods("second") == []

    flowruns.patch_deployment(
        "exclusive", {"concurrencyPolicy": "Replace", "parameters": {"seconds": 1}}
    )
    flowruns.run_of("exclusive", "third")
    assert flowruns.wait_final("first", operator=operator_process)["state"] == "Cancelled"
    assert flowruns.wait_final("third", operator=operator_process)["state"] == "Completed"


def test_parameters_failing_the_schema_fail_the_run_before_any_pod(
    operator_process: OperatorProcess, flowruns: FlowRuns
) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0}}}
    flowruns.deployment("checked", parameterSchema=schema, parameters={"n": 1})
    flowruns.run_of("checked", "bad", parameters={"n": "many"})
    status = flowruns.wait_final("bad", operator=operator_process)
    assert status["state"] == "Failed"
    assert "parameter 'n'" in status["message"] and "integer" in status["message"]
    assert flowruns.pods("bad") == []
    flowruns.run_of("checked", "good", parameters={"n": 2})
    assert flowruns.wait_final("good", operator=operator_process)["state"] == "Completed"


def test_history_limits_never_delete_runs_applied_by_hand(
    operator_process: OperatorProcess, flowruns: FlowRuns
) -> None:
    """Only scheduled runs are trimmed (tests/controller/test_gitops_e2e.py mixes both)."""
    flowruns.deployment(
        "kept", successfulRunsHistoryLimit=1, failedRunsHistoryLimit=0, parameters={"n": 1}
    )
    for name in ("h-1", "h-2"):
        flowruns.run_of("kept", name)
        flowruns.wait_final(name, operator=operator_process)
    flowruns.wait_deployment(
        "kept", lambda s: (s.get("runs") or {}).get("Completed") == 2, operator_process
    )
    time.sleep(1)  # a few more Deployment passes
    assert flowruns.names() == ["h-1", "h-2"]
