"""Run-record lines for the UI tests: what the engine writes, small enough to read in a test.

A record is append-only JSON lines and the newest line of a run wins, so a test makes a run
progress by appending lines, as the engine does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TYPES = {
    "Completed": "COMPLETED",
    "Running": "RUNNING",
    "Pending": "PENDING",
    "NotReady": "PENDING",
    "Failed": "FAILED",
    "Crashed": "CRASHED",
    "Cancelled": "CANCELLED",
}


def state_line(state: str, message: str) -> dict[str, Any]:
    return {
        "type": TYPES[state],
        "name": state,
        "message": message,
        "timestamp": 1000.0,
        "result": None,
    }


def flow(
    fid: str, state: str, name: str = "", parent: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "kind": "flow_run",
        "id": fid,
        "name": name or fid,
        "flow_name": extra.pop("flow_name", "pipeline"),
        "version": None,
        "parameters": {},
        "state": state_line(state, extra.pop("message", "")),
        "start": extra.pop("start", 1000.0),
        "end": extra.pop("end", None),
        "parent_task_run_id": parent,
        "parent_flow_run_id": extra.pop("parent_flow", "root" if parent else None),
        "tags": [],
        "timeout_seconds": None,
        "deployment": {"name": None, "version": None},
        **extra,
    }


def task(
    tid: str, key: str, state: str, upstream: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "kind": "task_run",
        "id": tid,
        "flow_run_id": extra.pop("flow", "root"),
        "name": tid,
        "task_key": key,
        "state": state_line(state, extra.pop("message", "")),
        "start": None if TYPES[state] == "PENDING" else 1000.0,
        "end": 1001.0 if state in {"Completed", "Failed", "Crashed"} else None,
        "upstream": upstream or [],
        **extra,
    }


def write(path: Path, lines: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def append(path: Path, lines: list[dict[str, Any]]) -> None:
    with path.open("a") as handle:
        handle.write("".join(json.dumps(line) + "\n" for line in lines))
