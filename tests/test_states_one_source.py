"""States are one vocabulary (headrace/states.py); the CRD's Literal and the sets used by the
CLI, the UI server, the record reader and the operator are that module's."""

from __future__ import annotations

from typing import get_args

from headrace import states
from headrace.crd.models import FlowRunStatus
from headrace.states import (
    FINAL_NAMES,
    FINAL_STATES,
    FINAL_TYPES,
    FLOWRUN_STATES,
    RunState,
    StateType,
)
from headrace.ui.server import state_vocabulary


def test_the_crd_enum_is_the_flowrun_states_of_states_py() -> None:
    schema = FlowRunStatus.model_json_schema()
    enum = schema["properties"]["state"]["anyOf"][0]["enum"]
    assert tuple(enum) == FLOWRUN_STATES == get_args(RunState)
    assert set(FLOWRUN_STATES) >= FINAL_STATES


def test_final_names_are_the_names_of_final_states() -> None:
    vocabulary = dict(state_vocabulary())
    final = {name for name, kind in vocabulary.items() if kind in FINAL_TYPES}
    assert final | {states.NotReady().name} == FINAL_NAMES
    assert states.NotReady().type is StateType.PENDING  # final for a run that never ran


def test_type_sets_match_type_names_as_read_from_records() -> None:
    """Records and the UI carry types as plain strings."""
    assert {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"} == {str(t) for t in FINAL_TYPES}
    assert all(name in FINAL_TYPES for name in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"))
    assert "RUNNING" not in FINAL_TYPES
    assert "COMPLETED" not in states.UNSUCCESSFUL_TYPES and "CANCELLED" in states.UNSUCCESSFUL_TYPES
