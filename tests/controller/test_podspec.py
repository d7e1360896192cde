"""The pod an attempt gets: names, ownership, secure defaults, parameters without a shell."""

from __future__ import annotations

import json
from typing import Any

import pytest

from headrace.controller.flowruns import FlowRunReconciler
from headrace.controller.kube import Kube
from headrace.controller.podspec import (
    RunPlan,
    build_pod,
    label_value,
    owns,
    pod_name,
)
from headrace.crd.models import FlowSpec, PodOverrides
from headrace.pod_protocol import MAX_PARAMETERS_BYTES
from headrace.settings import Settings


def plan(**overrides: object) -> RunPlan:
    values: dict[str, object] = {
        "namespace": "ns",
        "run_name": "nightly",
        "run_uid": "0f3a9c2e-1111-2222-3333-444455556666",
        "attempt": 2,
        "flow": FlowSpec(image="img:1", entrypoint="flows/etl.py:etl"),
        "parameters": {"day": "2026-01-01; rm -rf /", "n": [1, 2]},
        "result_storage": "s3://bucket/hr",
        "storage_secret": "s3-creds",
        "deadline": 1_800_000_000.0,
        "deployment": "etl",
        "deployment_version": "3",
    }
    values.update(overrides)
    return RunPlan(**values)  # type: ignore[arg-type]


def test_pod_is_named_owned_and_labelled_per_attempt() -> None:
    pod = build_pod(plan(), Settings())
    meta = pod["metadata"]
    assert meta["name"] == "nightly-0f3a9c-2"
    assert meta["ownerReferences"][0]["uid"] == "0f3a9c2e-1111-2222-3333-444455556666"
    assert owns("0f3a9c2e-1111-2222-3333-444455556666", pod)
    assert not owns("0f3a9c2e-0000-2222-3333-444455556666", pod)
    assert meta["ownerReferences"][0]["controller"] is True
    assert meta["labels"]["headrace.dev/flow-run"] == "nightly"
    assert meta["labels"]["headrace.dev/attempt"] == "2"


def test_parameters_travel_as_json_not_through_a_shell() -> None:
    container = build_pod(plan(), Settings())["spec"]["containers"][0]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert json.loads(env["HEADRACE_PARAMETERS"]) == plan().parameters
    assert container["command"] == ["headrace", "pod-entry", "flows/etl.py:etl"]
    assert "sh" not in container["command"]
    assert env["HEADRACE_DEADLINE"] == "1800000000.000"
    assert env["HEADRACE_RESULT_STORAGE"] == "s3://bucket/hr/results"
    assert env["HEADRACE_DEPLOYMENT_VERSION"] == "3"
    # The storage's credentials come from the Secret, into the container only.
    assert container["envFrom"] == [{"secretRef": {"name": "s3-creds"}}]


def test_pods_are_locked_down_by_default() -> None:
    spec = build_pod(plan(), Settings())["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["automountServiceAccountToken"] is False
    context = spec["containers"][0]["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}


def test_a_run_that_asks_gets_its_accounts_api_token() -> None:
    """For flows that call the API (run_deployment): the token of the account the run may
    use anyway (choosing another one needs "use" on it, checked at admission)."""
    pod = PodOverrides(automount_service_account_token=True)
    flow = FlowSpec(image="img:1", entrypoint="flows/etl.py:etl", pod=pod)
    spec = build_pod(plan(flow=flow), Settings(flow_service_account="headrace-flow"))["spec"]
    assert spec["automountServiceAccountToken"] is True
    assert spec["serviceAccountName"] == "headrace-flow"


def test_long_names_still_make_valid_labels() -> None:
    name = "x" * 100
    assert len(label_value(name)) <= 63
    assert label_value(name) != label_value("x" * 99 + "y")
    assert pod_name(name, "abcdef12-3", 1).endswith("-abcdef-1")
    assert len(pod_name(name, "abcdef12-3", 1)) <= 63


def test_pod_names_of_different_runs_never_collide() -> None:
    # The old scheme cut a 253-character name to 52 characters plus a hash of it; a
    # 63-character name spelled like that cut mapped to the very same pod.
    long_name = "a" * 253
    lookalike = label_value(long_name)
    assert pod_name(long_name, "uid-a", 1) != pod_name(lookalike, "uid-b", 1)
    # Same name, a FlowRun deleted and created again: a new uid, a new pod.
    assert pod_name("etl", "11111111-x", 1) != pod_name("etl", "22222222-x", 1)
    # Cut names keep a DNS-valid shape (no '.-' where the cut falls).
    cut = pod_name("a" * 40 + "." + "b" * 40, "uid-c", 3)
    assert "..".join(cut.split(".-")) == cut and len(cut) <= 63


def test_the_kubelet_cannot_expand_variables_in_what_the_operator_writes() -> None:
    flow = FlowSpec(image="img:1", entrypoint="/$(DB_PW)/etl.py:etl")
    pod = build_pod(plan(flow=flow, parameters={"x": "$(HEADRACE_FLOW_RUN_ID)"}), Settings())
    container = pod["spec"]["containers"][0]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert "/$$(DB_PW)/etl.py:etl" in container["command"]
    assert json.loads(env["HEADRACE_PARAMETERS"].replace("$$", "$")) == {
        "x": "$(HEADRACE_FLOW_RUN_ID)"
    }


def test_parameters_too_big_for_one_variable_are_refused_with_the_limit() -> None:
    with pytest.raises(ValueError, match=f"at most {MAX_PARAMETERS_BYTES:,} bytes"):
        build_pod(plan(parameters={"x": "y" * MAX_PARAMETERS_BYTES}), Settings())


def test_deeply_nested_parameters_still_make_a_pod() -> None:
    deep: object = "leaf"
    for _ in range(5000):
        deep = {"a": deep}
    pod = build_pod(plan(parameters={"deep": deep}), Settings())
    assert pod["spec"]["containers"][0]["env"][2]["name"] == "HEADRACE_PARAMETERS"


def test_the_pod_is_told_when_its_run_was_scheduled() -> None:
    """The schedule's instant (its annotation) for a scheduled run, else the FlowRun's creation:
    `headrace.runtime.flow_run.scheduled_start_time` in the flow reads it."""
    reconciler = FlowRunReconciler(Kube(), Settings())
    run: dict[str, Any] = {
        "metadata": {
            "namespace": "ns",
            "name": "nightly-1",
            "uid": "0f3a9c2e-1111-2222-3333-444455556666",
            "creationTimestamp": "2026-03-01T03:00:02Z",
            "annotations": {"headrace.dev/scheduled-time": "2026-03-01T03:00:00+00:00"},
        },
        "spec": {},
    }
    resolved = {"flow": {"image": "img:1", "entrypoint": "flows/etl.py:etl"}}
    scheduled = reconciler.plan(run, resolved, 1, None)
    env = {
        e["name"]: e.get("value")
        for e in build_pod(scheduled, Settings())["spec"]["containers"][0]["env"]
    }
    assert env["HEADRACE_SCHEDULED_START_TIME"] == "2026-03-01T03:00:00+00:00"
    del run["metadata"]["annotations"]
    assert reconciler.plan(run, resolved, 1, None).scheduled_time == "2026-03-01T03:00:02Z"
    # Anyone who may create a FlowRun may write the annotation: what is not a time stays out
    # of the pod.
    for said in ("tomorrow", "2026-03-01T03:00:00+00:00" + " " * 100_000, "$(SECRET)"):
        run["metadata"]["annotations"] = {"headrace.dev/scheduled-time": said}
        assert reconciler.plan(run, resolved, 1, None).scheduled_time == "2026-03-01T03:00:02Z"
