"""Which flow run and task run the current code belongs to.

Context variables follow a run into event-loop tasks; worker threads set them per task run.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from headrace.engine.runs import FlowRun, TaskRun

current_flow_run: ContextVar[FlowRun | None] = ContextVar("headrace_flow_run", default=None)
current_task_run: ContextVar[TaskRun | None] = ContextVar("headrace_task_run", default=None)
# Tags from enclosing `headrace.tags(...)` blocks; runs take them when they are created.
current_tags: ContextVar[frozenset[str]] = ContextVar("headrace_tags", default=frozenset())
