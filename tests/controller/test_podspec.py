"""The pod an attempt gets: names, ownership, secure defaults, parameters without a shell."""

from __future__ import annotations

import json

from headrace.controller.config import OperatorConfig
from headrace.controller.podspec import RunPlan, build_pod, label_value, pod_name
from headrace.crd.models import FlowSpec


def plan(**overrides: object) -> RunPlan:
    values: dict[str, object] = {
        "namespace": "ns",
        "run_name": "nightly",
        "run_uid": "uid-1",
        "attempt": 2,
        "flow": FlowSpec(image="img:1", entrypoint="flows/etl.py:etl"),
        "parameters": {"day": "2026-01-01; rm -rf /", "n": [1, 2]},
        "result_storage": "s3://bucket/hr",
        "deadline": 1_800_000_000.0,
        "deployment": "etl",
        "deployment_version": "3",
    }
    values.update(overrides)
    return RunPlan(**values)  # type: ignore[arg-type]


def test_pod_is_named_owned_and_labelled_per_attempt() -> None:
    pod = build_pod(plan(), OperatorConfig())
    meta = pod["metadata"]
    assert meta["name"] == "nightly-2"
    assert meta["ownerReferences"][0]["uid"] == "uid-1"
    assert meta["ownerReferences"][0]["controller"] is True
    assert meta["labels"]["headrace.dev/flow-run"] == "nightly"
    assert meta["labels"]["headrace.dev/attempt"] == "2"


def test_parameters_travel_as_json_not_through_a_shell() -> None:
    container = build_pod(plan(), OperatorConfig())["spec"]["containers"][0]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert json.loads(env["HEADRACE_PARAMETERS"]) == plan().parameters
    assert container["command"][-3:] == ["run", "flows/etl.py:etl", "--no-progress"]
    assert "sh" not in container["command"]
    assert env["HEADRACE_DEADLINE"] == "1800000000.000"
    assert env["HEADRACE_RESULT_STORAGE"] == "s3://bucket/hr/results"
    assert env["HEADRACE_DEPLOYMENT_VERSION"] == "3"


def test_pods_are_locked_down_by_default() -> None:
    spec = build_pod(plan(), OperatorConfig())["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["automountServiceAccountToken"] is False
    context = spec["containers"][0]["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}


def test_long_names_still_make_valid_labels() -> None:
    name = "x" * 100
    assert len(label_value(name)) <= 63
    assert label_value(name) != label_value("x" * 99 + "y")
    assert pod_name(name, 1).endswith("-1")
