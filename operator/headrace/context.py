"""Run context by Prefect 2's module path: `tags(...)` and `get_run_context()`.

The context objects carry Headrace's own run objects (`flow_run.id`, `.name`, `.parameters`,
`.state`, `.tags`, `.run_count`), not Prefect's API models; see docs/prefect-compatibility.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from headrace.engine.context import current_flow_run, current_tags, current_task_run
from headrace.exceptions import MissingContextError

if TYPE_CHECKING:
    from headrace.engine.runs import FlowRun
    from headrace.engine.task_run import TaskRun
    from headrace.flows import Flow
    from headrace.task_runners import TaskRunner
    from headrace.tasks import Task


@contextlib.contextmanager
def tags(*new_tags: str) -> Iterator[set[str]]:
    """Add tags to every flow and task run created inside the block; yields all tags now on."""
    current = current_tags.get()
    token = current_tags.set(current | frozenset(new_tags))
    try:
        yield set(current_tags.get())
    finally:
        current_tags.reset(token)


@dataclass(frozen=True)
class FlowRunContext:
    flow: Flow[Any, Any]
    flow_run: FlowRun
    task_runner: TaskRunner
    parameters: dict[str, Any]

    @classmethod
    def get(cls) -> FlowRunContext | None:
        """The flow run's context, inside a task of it too; None outside a flow run (as
        Prefect 2's: code asks this to learn whether it runs in a flow)."""
        flow_run = current_flow_run.get()
        if flow_run is None:
            return None
        return cls(flow_run.flow, flow_run, flow_run.task_runner, flow_run.parameters)


@dataclass(frozen=True)
class TaskRunContext:
    task: Task[Any, Any]
    task_run: TaskRun
    parameters: dict[str, Any]

    @classmethod
    def get(cls) -> TaskRunContext | None:
        """The task run's context; None outside a task run."""
        task_run = current_task_run.get()
        if task_run is None or task_run.task is None:
            return None
        return cls(task_run.task, task_run, task_run.parameters)


def get_run_context() -> FlowRunContext | TaskRunContext:
    """The innermost run's context: a task run's inside a task, else the flow run's."""
    context = TaskRunContext.get() or FlowRunContext.get()
    if context is not None:
        return context
    raise MissingContextError(
        "No run context available. You are not in a flow or task run context."
    )
