"""`run_deployment`'s pure parts: the FlowRun it makes, and the run it hands back.

Making and following a FlowRun on a real API server with a real node is
tests/controller/test_realnode_e2e.py's `test_a_flow_runs_a_deployment_and_gets_its_result`.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from headrace.deployments import build_flow_run, flow_run_of, run_deployment
from headrace.exceptions import FailedRun, NotSupported
from headrace.results import load_result
from headrace.results.store import ResultStore
from headrace.states import FLOWRUN_STATES, StateType


def test_the_flowrun_names_the_deployment_and_carries_the_parameters() -> None:
    body = build_flow_run("child", {"n": 3})
    assert body["kind"] == "FlowRun" and body["apiVersion"] == "headrace.dev/v1alpha1"
    assert body["spec"] == {"deploymentRef": {"name": "child"}, "parameters": {"n": 3}}
    assert body["metadata"] == {"generateName": "child-"}
    named = build_flow_run("child", {}, name="nightly-1")
    assert named["metadata"] == {"name": "nightly-1"}
    with pytest.raises(ValueError, match="flow_run_name 'My Run' cannot name a FlowRun"):
        build_flow_run("child", {}, name="My Run")


def test_an_idempotency_key_gives_the_same_name_each_time() -> None:
    first = build_flow_run("child", {}, idempotency_key="2026-11-27")
    again = build_flow_run("child", {"other": 1}, idempotency_key="2026-11-27")
    other = build_flow_run("child", {}, idempotency_key="2026-11-28")
    assert first["metadata"]["name"] == again["metadata"]["name"] != other["metadata"]["name"]
    assert first["metadata"]["name"].startswith("child-")


def test_the_parent_and_tags_are_kept_as_annotations() -> None:
    body = build_flow_run("child", {}, tags=["b", "a", "b"], parent=("id-1", "brave-reed"))
    annotations = body["metadata"]["annotations"]
    assert json.loads(annotations["headrace.dev/parent-flow-run"]) == {
        "id": "id-1",
        "name": "brave-reed",
    }
    assert json.loads(annotations["headrace.dev/tags"]) == ["a", "b"]


def test_the_run_handed_back_reads_its_state_and_result(tmp_path: Any) -> None:
    uri = ResultStore(tmp_path.as_uri(), "json").write({"total": 6}, "run/result.json")
    uid = str(uuid.uuid4())
    found = {
        "metadata": {"name": "child-x1", "namespace": "ns", "uid": uid},
        "spec": {"deploymentRef": {"name": "child"}, "parameters": {"n": 3}},
        "status": {"state": "Completed", "message": "", "resultLocation": uri},
    }
    run = flow_run_of(found)
    assert (run.id, run.name, run.deployment_name, run.parameters) == (
        uuid.UUID(uid),
        "child-x1",
        "child",
        {"n": 3},
    )
    assert run.state.is_completed() and run.state_name == "Completed"
    assert run.state.result() == {"total": 6} == load_result(uri)
    found["status"] = {"state": "TimedOut", "message": "ran past 60 s"}
    timed_out = flow_run_of(found)
    assert timed_out.state_type is StateType.FAILED and timed_out.state.is_failed()
    found["status"] = {"state": "Failed", "message": "ValueError: boom"}
    with pytest.raises(FailedRun, match="boom"):
        flow_run_of(found).state.result()
    del found["status"]  # just made: the operator has not seen it yet
    assert flow_run_of(found).state.is_scheduled()


def test_every_flowrun_state_has_a_type() -> None:
    from headrace.states import FLOWRUN_STATE_TYPES

    assert set(FLOWRUN_STATE_TYPES) == set(FLOWRUN_STATES)


def test_what_has_no_meaning_here_is_refused_naming_the_argument() -> None:
    with pytest.raises(NotSupported, match="scheduled_time"):
        run_deployment("hello/child", scheduled_time="2026-12-01T00:00:00Z")
    with pytest.raises(NotSupported, match="work_queue_name"):
        run_deployment("hello/child", work_queue_name="default")
    with pytest.raises(ValueError, match="`timeout` cannot be negative"):
        run_deployment("hello/child", timeout=-1)

    async def in_async_code() -> bool:  # a coroutine to await, as Prefect's
        made: Any = run_deployment("hello/child")
        waits = asyncio.iscoroutine(made)
        made.close()
        return waits

    assert asyncio.run(in_async_code())
