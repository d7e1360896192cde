"""The Argo CD health checks in docs/argocd-health.md, run in Lua (lupa) on FlowRun and
Deployment statuses.

FlowRun statuses come from the operator's own `run_conditions`, for every state a FlowRun can
be in; tests/controller/test_chart_e2e.py and test_gitops_e2e.py also run the checks on
objects a real operator wrote.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import lupa.lua51 as lua51  # Argo CD runs health checks in gopher-lua, a Lua 5.1
import pytest
import yaml

from headrace.controller.conditions import run_conditions
from headrace.states import FINAL_STATES, RunState

DOC = Path(__file__).resolve().parents[1] / "docs" / "argocd-health.md"
KEY = "resource.customizations.health.headrace.dev_{kind}"


def health_script(kind: str = "FlowRun") -> str:
    """The Lua from the argocd-cm snippet users copy, for `kind` (FlowRun or Deployment)."""
    text = DOC.read_text()
    snippet = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    script: str = yaml.safe_load(snippet)["data"][KEY.format(kind=kind)]
    return script


def argo_health(obj: dict[str, Any]) -> tuple[str, str]:
    """What Argo CD would show for a FlowRun or Deployment: the script sees it as `obj`."""
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(health_script(obj["kind"]))
    return str(result["status"]), str(result["message"])


def flowrun(
    state: str | None, generation: int = 1, observed: int = 1, reason: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "headrace.dev/v1alpha1",
        "kind": "FlowRun",
        "metadata": {"name": "hello", "namespace": "default", "generation": generation},
        "spec": {"deploymentRef": {"name": "hello"}},
    }
    if state is not None:
        body["status"] = {
            "state": state,
            "message": f"it is {state}",
            "observedGeneration": observed,
            "conditions": run_conditions(state, f"it is {state}", observed, None, reason),
        }
    return body


EXPECTED = {"Completed": "Healthy", **dict.fromkeys(FINAL_STATES - {"Completed"}, "Degraded")}


@pytest.mark.parametrize("state", typing.get_args(RunState))
def test_every_state_maps_to_argo_health(state: str) -> None:
    status, message = argo_health(flowrun(state))
    assert status == EXPECTED.get(state, "Progressing")
    assert message == f"{state}: it is {state}"


def test_a_new_flowrun_is_progressing_until_the_operator_writes_status() -> None:
    assert argo_health(flowrun(None)) == ("Progressing", "Waiting for the Headrace operator")


def test_a_spec_change_the_operator_has_not_seen_is_progressing() -> None:
    status, _ = argo_health(flowrun("Completed", generation=2, observed=1))
    assert status == "Progressing"


def test_a_lost_pod_is_degraded_and_says_so() -> None:
    status, message = argo_health(flowrun("Crashed", reason="PodLost"))
    assert (status, message) == ("Degraded", "Crashed (PodLost): it is Crashed")


def test_a_run_waiting_for_its_deployment_is_progressing_and_says_why() -> None:
    status, message = argo_health(flowrun("Scheduled", reason="DeploymentNotFound"))
    assert (status, message) == ("Progressing", "Scheduled (DeploymentNotFound): it is Scheduled")


def deployment(
    ready: str | None, reason: str = "", generation: int = 1, observed: int = 1
) -> dict[str, Any]:
    """A Deployment with the Ready condition as DeploymentReconciler writes it."""
    body: dict[str, Any] = {
        "apiVersion": "headrace.dev/v1alpha1",
        "kind": "Deployment",
        "metadata": {"name": "nightly", "namespace": "default", "generation": generation},
        "spec": {"image": "img", "entrypoint": "flows.py:etl"},
    }
    if ready is not None:
        body["status"] = {
            "observedGeneration": observed,
            "conditions": [
                {
                    "type": "Ready",
                    "status": ready,
                    "reason": reason,
                    "message": f"why {reason}",
                    "observedGeneration": observed,
                }
            ],
        }
    return body


@pytest.mark.parametrize(
    ("ready", "reason", "expected"),
    [
        ("True", "Scheduled", "Healthy"),
        ("True", "NoSchedule", "Healthy"),
        ("True", "Suspended", "Suspended"),
        ("False", "InvalidSchedule", "Degraded"),
        ("False", "InvalidParameterSchema", "Degraded"),
    ],
)
def test_deployment_health_follows_its_ready_condition(
    ready: str, reason: str, expected: str
) -> None:
    assert argo_health(deployment(ready, reason)) == (expected, f"{reason}: why {reason}")


def test_a_deployment_is_progressing_until_the_operator_has_seen_its_spec() -> None:
    waiting = ("Progressing", "Waiting for the Headrace operator")
    assert argo_health(deployment(None)) == waiting
    assert argo_health(deployment("False", "InvalidSchedule", generation=2)) == waiting
