"""Which flow run and task run the current code belongs to.

Context variables follow a run into event-loop tasks; worker threads set them per task run.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from headrace.engine.runs import FlowRun
    from headrace.engine.task_run import TaskRun
    from headrace.tasks import Task

T = TypeVar("T")

current_flow_run: ContextVar[FlowRun | None] = ContextVar("headrace_flow_run", default=None)
current_task_run: ContextVar[TaskRun | None] = ContextVar("headrace_task_run", default=None)
# Tags from enclosing `headrace.tags(...)` blocks; runs take them when they are created.
current_tags: ContextVar[frozenset[str]] = ContextVar("headrace_tags", default=frozenset())


def hands_back_awaitables(task: Task[Any, Any] | None, flow_run: FlowRun) -> bool:
    """Whether a task's call, `submit`, `map` and futures give coroutines: as in Prefect 2,
    only for an async task in its async flow's event loop; a sync task's are always plain."""
    return (
        task is not None
        and task.isasync
        and flow_run.is_async
        and asyncio._get_running_loop() is not None
    )


def wants_coroutine(sync: bool | None = None) -> bool:
    """Whether a call Prefect 2 makes `sync_compatible` (artifacts, blocks, variables) hands
    back a coroutine here: only in async code running in its event loop, which is an async
    task, an async flow's body, or async code outside any run (an `asyncio.run(main())`).
    A sync flow or task in a thread where another loop runs (a notebook's) gets the value.
    `sync` is the caller's `_sync=` (Prefect 2.16 on): True for the value, False for a
    coroutine, whatever the context."""
    if sync is not None:
        return not sync
    if asyncio._get_running_loop() is None:
        return False
    task_run = current_task_run.get()
    if task_run is not None:
        task = getattr(task_run, "task", None)  # none on a Dask worker: its own loop
        return task is None or task.isasync
    flow_run = current_flow_run.get()
    return flow_run is None or flow_run.is_async


async def given(value: T) -> T:
    """`value` as a coroutine's result, for a call that `wants_coroutine()`."""
    return value
