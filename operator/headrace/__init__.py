"""Headrace: Kubernetes-native workflow orchestration for Python.

`from headrace import flow, task` gives the Prefect-2-style API; flows run locally as they are,
and on a cluster as FlowRun resources.
"""

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


def __getattr__(name: str) -> object:
    """Prefect 2 names Headrace does not provide fail with the reason, not a bare error."""
    from headrace.compat import NAMES, refuse_name

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
