"""Names users import by Prefect 2's module paths resolve under `headrace.` the same way.

Each import below is one a Prefect 2.14 flow makes (checked against prefect 2.14.21); only
the package name changes.
"""

from __future__ import annotations

import importlib

import pytest

PATHS = {
    "headrace": [
        "flow",
        "task",
        "tags",
        "unmapped",
        "allow_failure",
        "get_run_logger",
        "get_run_context",
        "Flow",
        "Task",
        "State",
    ],
    "headrace.tasks": ["task", "Task", "task_input_hash"],
    "headrace.flows": ["flow", "Flow"],
    "headrace.states": [
        "State",
        "StateType",
        "Completed",
        "Failed",
        "Cancelled",
        "Crashed",
        "Pending",
        "Running",
        "Scheduled",
        "Retrying",
        "AwaitingRetry",
        "Cached",
        "TimedOut",
    ],
    "headrace.runtime": ["flow_run", "task_run", "deployment"],
    "headrace.utilities.annotations": ["unmapped", "allow_failure", "quote", "BaseAnnotation"],
    "headrace.task_runners": ["ConcurrentTaskRunner", "SequentialTaskRunner", "BaseTaskRunner"],
    "headrace.context": ["tags", "get_run_context", "FlowRunContext", "TaskRunContext"],
    "headrace.futures": ["HeadraceFuture"],
    "headrace.logging": ["get_run_logger"],
}


@pytest.mark.parametrize(("module", "names"), PATHS.items())
def test_prefect_import_paths(module: str, names: list[str]) -> None:
    loaded = importlib.import_module(module)
    missing = [name for name in names if not hasattr(loaded, name)]
    assert missing == []


def test_one_object_behind_each_path() -> None:
    """The top-level names are the same objects as the module-path ones, not copies."""
    import headrace
    from headrace import context, tasks
    from headrace.utilities import annotations

    assert headrace.unmapped is annotations.unmapped is tasks.unmapped
    assert headrace.allow_failure is annotations.allow_failure
    assert headrace.tags is context.tags
