"""The current task run: `id`, `name`, `task_name`, `parameters`, `run_count`."""

from __future__ import annotations

from typing import Any

from headrace.engine.context import current_task_run


def __dir__() -> list[str]:
    return ["id", "name", "parameters", "run_count", "tags", "task_name"]


def __getattr__(name: str) -> Any:
    run = current_task_run.get()
    if name == "id":
        return run.id if run else None
    if name == "name":
        return run.name if run else None
    if name == "task_name":
        return run.task_key if run else None
    if name == "parameters":
        return dict(run.parameters) if run else {}
    if name == "tags":
        return sorted(run.tags) if run else []
    if name == "run_count":
        return run.attempt if run else 0
    raise AttributeError(f"headrace.runtime.task_run has no attribute {name!r}")
