"""Headrace: Kubernetes-native workflow orchestration for Python.

`from headrace import flow, task` gives the Prefect-2-style API; flows run locally as they are,
and on a cluster as FlowRun resources.
"""

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from headrace.context import get_run_context, tags
    from headrace.exceptions import (
        CancelledRun,
        CrashedRun,
        FlowTimeout,
        MappingLengthMismatch,
        ParameterValidationError,
        RunTimedOut,
        TaskTimeout,
        UpstreamTaskError,
    )
    from headrace.flows import Flow, flow
    from headrace.futures import HeadraceFuture
    from headrace.logging import get_run_logger
    from headrace.states import State, StateType
    from headrace.task_runners import ConcurrentTaskRunner, SequentialTaskRunner, TaskRunner
    from headrace.tasks import Task, task, task_input_hash
    from headrace.utilities.annotations import allow_failure, unmapped


__version__ = "0.1.0"


# Where each public name lives, imported on first use (PEP 562): `import headrace.controller`
# (the operator) or `headrace.ui` loads neither the engine nor the SDK, only what it uses.
_PUBLIC = {
    "get_run_context": "headrace.context",
    "tags": "headrace.context",
    "CancelledRun": "headrace.exceptions",
    "CrashedRun": "headrace.exceptions",
    "FlowTimeout": "headrace.exceptions",
    "MappingLengthMismatch": "headrace.exceptions",
    "ParameterValidationError": "headrace.exceptions",
    "RunTimedOut": "headrace.exceptions",
    "TaskTimeout": "headrace.exceptions",
    "UpstreamTaskError": "headrace.exceptions",
    "Flow": "headrace.flows",
    "flow": "headrace.flows",
    "HeadraceFuture": "headrace.futures",
    "get_run_logger": "headrace.logging",
    "State": "headrace.states",
    "StateType": "headrace.states",
    "ConcurrentTaskRunner": "headrace.task_runners",
    "SequentialTaskRunner": "headrace.task_runners",
    "TaskRunner": "headrace.task_runners",
    "Task": "headrace.tasks",
    "task": "headrace.tasks",
    "task_input_hash": "headrace.tasks",
    "allow_failure": "headrace.utilities.annotations",
    "unmapped": "headrace.utilities.annotations",
}


def __getattr__(name: str) -> object:
    """A public name from its module; Prefect 2 names Headrace does not provide fail with the
    reason, not a bare error."""
    module = _PUBLIC.get(name)
    if module is not None:
        value = getattr(import_module(module), name)
        globals()[name] = value  # the next lookup is a plain attribute
        return value
    from headrace.compat import NAMES, refuse_name  # noqa: PLC0415 (for a missing name only)

    refused = refuse_name("headrace", name, NAMES)
    if refused is not None:
        raise refused
    raise AttributeError(f"module 'headrace' has no attribute {name!r}")


__all__ = [
    "CancelledRun",
    "ConcurrentTaskRunner",
    "CrashedRun",
    "Flow",
    "FlowTimeout",
    "HeadraceFuture",
    "MappingLengthMismatch",
    "ParameterValidationError",
    "RunTimedOut",
    "SequentialTaskRunner",
    "State",
    "StateType",
    "Task",
    "TaskRunner",
    "TaskTimeout",
    "UpstreamTaskError",
    "allow_failure",
    "flow",
    "get_run_context",
    "get_run_logger",
    "tags",
    "task",
    "task_input_hash",
    "unmapped",
]
