"""The current flow run: `id`, `name`, `flow_name`, `parameters`, `parent_flow_run_id`, ..."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from headrace import settings
from headrace.engine.context import current_flow_run


def __dir__() -> list[str]:
    return [
        "flow_name",
        "flow_version",
        "id",
        "name",
        "parameters",
        "parent_flow_run_id",
        "run_count",
        "scheduled_start_time",
        "tags",
    ]


def __getattr__(name: str) -> Any:
    run = current_flow_run.get()
    if name == "id":
        return run.id if run else None
    if name == "name":
        return run.name if run else None
    if name == "flow_name":
        return run.flow.name if run else None
    if name == "flow_version":
        return run.flow.version if run else None
    if name == "parameters":
        return dict(run.parameters) if run else {}
    if name == "tags":
        return sorted(run.tags) if run else []
    if name == "run_count":
        return run.run_count if run else 0
    if name == "scheduled_start_time":
        # Prefect 2: the run's scheduled time, or now outside a run. A FlowRun's pod is told
        # its schedule's instant (or the FlowRun's creation); a local run or a subflow starts
        # when it is created, so its start time is its scheduled time.
        scheduled = (
            settings.current().scheduled_start_time if run and not run.parent_task_run else None
        )
        started = scheduled if scheduled is not None else (run.start_time if run else None)
        return dt.datetime.fromtimestamp(started if started is not None else time.time(), dt.UTC)
    if name == "parent_flow_run_id":
        parent = run.parent_task_run if run else None
        return parent.flow_run.id if parent else None
    raise AttributeError(f"headrace.runtime.flow_run has no attribute {name!r}")
