"""Reading a run record back: the latest line per run wins."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headrace import settings
from headrace.results.deep import call_deep
from headrace.results.store import local_path, read_bytes
from headrace.states import FINAL_TYPES

# The engine writes at least every 10 s while a run goes on (records/writer.py): a run that
# is not final and has written nothing for this long has lost its process.
LOST_AFTER = 30.0


def record_url(flow_run_id: str, storage: str | None = None) -> str:
    base = (storage or settings.current().record_storage).rstrip("/")
    return f"{base}/{flow_run_id}/record.jsonl"


@dataclass
class RunRecord:
    url: str
    flow_runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    task_runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    logs: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    last_seen: float | None = None  # the newest heartbeat or summary time

    @classmethod
    def load(cls, url: str) -> RunRecord:
        record = cls(url)
        record.extend(read_bytes(url).decode())
        return record

    def extend(self, text: str) -> None:
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                entry = call_deep(json.loads, line)  # parameters may nest very deep
            except json.JSONDecodeError:
                continue  # a line being written while we read
            kind = entry.get("kind")
            if kind == "task_run":
                self.task_runs[entry["id"]] = entry
            elif kind == "flow_run":
                self.flow_runs[entry["id"]] = entry
            elif kind == "log":
                self.logs.append(entry)
            elif kind == "summary":
                self.summary = entry
            if kind in {"summary", "heartbeat"} and isinstance(entry.get("ts"), (int, float)):
                self.last_seen = max(self.last_seen or 0.0, float(entry["ts"]))

    @property
    def root(self) -> dict[str, Any]:
        for run in self.flow_runs.values():
            if run.get("parent_task_run_id") is None:
                return run
        raise ValueError(f"run record {self.url} has no top-level flow run")

    def is_final(self) -> bool:
        try:
            return self.root["state"]["type"] in FINAL_TYPES
        except ValueError:
            return False

    def lost(self, now: float | None = None) -> bool:
        """Not final, and nothing written for LOST_AFTER seconds (None: never seen, unknown)."""
        if self.last_seen is None or self.is_final():
            return False
        return (time.time() if now is None else now) - self.last_seen > LOST_AFTER

    def waiting_on(self, task_run_id: str) -> list[str]:
        """Upstream task runs a not-yet-started task run still waits for."""
        run = self.task_runs[task_run_id]
        waits = []
        for upstream_id in run.get("upstream", []):
            upstream = self.task_runs.get(upstream_id)
            if upstream is None or upstream["state"]["type"] not in FINAL_TYPES:
                waits.append(upstream_id)
        return waits

    def pending(self) -> list[dict[str, Any]]:
        return [
            run
            for run in self.task_runs.values()
            if run["state"]["type"] in {"PENDING", "SCHEDULED"}
        ]


def read_summary(url: str, tail_bytes: int = 256 * 1024) -> dict[str, Any] | None:
    """The newest summary line (task-run counts) of a record, reading only its tail if local."""
    path = local_path(url)
    if path is not None:
        try:
            with path.open("rb") as handle:
                handle.seek(0, 2)
                size = handle.tell()
                handle.seek(max(0, size - tail_bytes))
                text = handle.read().decode(errors="replace")
        except FileNotFoundError:
            return None
    else:
        try:
            text = read_bytes(url).decode(errors="replace")
        except FileNotFoundError:
            return None
    for line in reversed(text.splitlines()):
        if '"kind": "summary"' in line:
            try:
                summary: dict[str, Any] = json.loads(line)
                return summary
            except json.JSONDecodeError:
                continue
    return None


def engine_report(url: str) -> dict[str, Any]:
    """The top-level run's outcome from its record, shaped like the engine's exit report."""
    try:
        record = RunRecord.load(url)
        root = record.root
    except (FileNotFoundError, ValueError):
        return {}
    state = root.get("state") or {}
    counts: dict[str, int] = {}
    for run in record.task_runs.values():
        name = run["state"]["name"]
        counts[name] = counts.get(name, 0) + 1
    return {
        "state": state.get("name"),
        "message": state.get("message") or "",
        "flowRunId": root.get("id"),
        "result": state.get("result"),
        "record": url,
        "counts": counts,
    }


def find_record(ref: str, storage: str | None = None) -> str:
    """The record URL for a run given by id, id prefix, name, or a record URL/path itself."""
    if ref.endswith(".jsonl"):
        return ref if "://" in ref else Path(ref).absolute().as_uri()
    base = storage or settings.current().record_storage
    root = local_path(base)
    if root is None:
        return record_url(ref, base)
    if (root / ref / "record.jsonl").exists():
        return (root / ref / "record.jsonl").as_uri()
    matches = []
    for path in sorted(root.glob("*/record.jsonl"), key=lambda p: p.stat().st_mtime, reverse=True):
        if path.parent.name.startswith(ref):
            matches.append(path)
            continue
        with path.open() as handle:
            for line in handle:
                if '"kind": "flow_run"' in line:
                    entry = json.loads(line)
                    if entry.get("name") == ref and entry.get("parent_task_run_id") is None:
                        matches.append(path)
                    break
    if not matches:
        raise FileNotFoundError(f"no run record for {ref!r} under {base}")
    return matches[0].as_uri()  # the newest match
