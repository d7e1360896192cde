"""The Argo CD health check in docs/argocd-health.md, run in Lua (lupa) on FlowRun statuses.

The statuses come from the operator's own `run_conditions`, for every state a FlowRun can
be in; tests/controller/test_chart_e2e.py also runs it on a FlowRun a real run completed.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import lupa.lua51 as lua51  # Argo CD runs health checks in gopher-lua, a Lua 5.1
import pytest
import yaml

from headrace.controller.conditions import run_conditions
from headrace.crd.models import FINAL_STATES, RunState

DOC = Path(__file__).resolve().parents[1] / "docs" / "argocd-health.md"
KEY = "resource.customizations.health.headrace.dev_FlowRun"


def health_script() -> str:
    """The Lua from the argocd-cm snippet users copy."""
    text = DOC.read_text()
    snippet = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    script: str = yaml.safe_load(snippet)["data"][KEY]
    return script


def argo_health(flowrun: dict[str, Any]) -> tuple[str, str]:
    """What Argo CD would show: the script sees the object as the global `obj`."""
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(flowrun, recursive=True)
    result = lua.execute(health_script())
    return str(result["status"]), str(result["message"])


def flowrun(state: str | None, generation: int = 1, observed: int = 1) -> dict[str, Any]:
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
            "conditions": run_conditions(state, f"it is {state}", observed, None),
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
