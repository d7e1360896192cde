"""Reading a run record back: the latest line per run wins.

Lines are told apart by their kind (records/lines.py), never by matching JSON text. Where the
record is untrusted input, records/untrusted.py reads it with each line validated.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headrace import settings
from headrace.records.lines import (
    ARTIFACT,
    FLOW_RUN,
    HEARTBEAT,
    LOG,
    SUMMARY,
    TASK_RUN,
    ArtifactLine,
    FlowRunLine,
    LogLine,
    SummaryLine,
    TaskRunLine,
    kind_of,
)
from headrace.results.deep import call_deep
from headrace.results.store import local_path, read_bytes
from headrace.states import FINAL_TYPES

# The engine writes at least every 10 s while a run goes on (records/writer.py): a run that
# is not final and has written nothing for this long has lost its process.
LOST_AFTER = 30.0


def record_url(flow_run_id: str, storage: str | None = None) -> str:
    base = (storage or settings.current().record_storage).rstrip("/")
    return f"{base}/{flow_run_id}/record.jsonl"


def parse_line(line: str) -> Any:
    """A line as the writer wrote it, None while it is still being written."""
    try:
        return call_deep(json.loads, line)  # parameters may nest very deep
    except json.JSONDecodeError:
        return None


@dataclass
class RunRecord:
    url: str
    flow_runs: dict[str, FlowRunLine] = field(default_factory=dict)
    task_runs: dict[str, TaskRunLine] = field(default_factory=dict)
    logs: list[LogLine] = field(default_factory=list)
    artifacts: list[ArtifactLine] = field(default_factory=list)
    summary: SummaryLine | None = None
    last_seen: float | None = None  # the newest heartbeat or summary time
    # Parses a line, None for one to skip: records/untrusted.py's checks each against its kind.
    parse: Callable[[str], Any] = field(default=parse_line, repr=False)

    @classmethod
    def load(cls, url: str) -> RunRecord:
        record = cls(url)
        record.extend(read_bytes(url).decode())
        return record

    def extend(self, text: str) -> None:
        for line in text.splitlines():
            if not line.strip():
                continue
            entry = self.parse(line)
            kind = entry.get("kind") if isinstance(entry, dict) else None
            if kind == TASK_RUN:
                self.task_runs[entry["id"]] = entry
            elif kind == FLOW_RUN:
                self.flow_runs[entry["id"]] = entry
            elif kind == LOG:
                self.logs.append(entry)
            elif kind == ARTIFACT:
                self.artifacts.append(entry)
            elif kind == SUMMARY:
                self.summary = entry
            if kind in {SUMMARY, HEARTBEAT} and isinstance(entry.get("ts"), (int, float)):
                self.last_seen = max(self.last_seen or 0.0, float(entry["ts"]))

    @property
    def root(self) -> FlowRunLine:
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

    def pending(self) -> list[TaskRunLine]:
        return [
            run
            for run in self.task_runs.values()
            if run["state"]["type"] in {"PENDING", "SCHEDULED"}
        ]


def read_tail(url: str, tail_bytes: int = 256 * 1024) -> str | None:
    """The last `tail_bytes` of a local record (all of a remote one); None if there is none."""
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
    return text


def scan(text: str, kinds: Container[str], *, newest: bool = True) -> Iterator[Any]:
    """The lines of `kinds` in a record's text, parsed, newest first unless told: lines of
    other kinds are skipped by their kind alone, unparsed (records/lines.py `kind_of`)."""
    lines = text.splitlines()
    for line in reversed(lines) if newest else lines:
        if kind_of(line) in kinds:
            try:
                yield json.loads(line)
            except ValueError:
                continue  # a line being written while we read


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
                if kind_of(line) == FLOW_RUN:
                    entry: FlowRunLine = json.loads(line)
                    if entry.get("name") == ref and entry.get("parent_task_run_id") is None:
                        matches.append(path)
                    break
    if not matches:
        raise FileNotFoundError(f"no run record for {ref!r} under {base}")
    return matches[0].as_uri()  # the newest match
