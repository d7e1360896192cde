"""Writes a run tree's record at least once a second, on a thread of its own.

Only runs that changed since the last flush are written, so a 30,000-task run costs one line
per task run per flush it was active in, not a full snapshot each time. Local files are
appended to; other fsspec URLs cannot be appended to portably, so they are rewritten whole.

A flush that has nothing to write still writes a heartbeat every HEARTBEAT_SECONDS, so a
reader can tell a quiet run (one long task) from a lost one (the process died without
writing a final state): a run that is not final and has not been seen for LOST_AFTER seconds
is shown as lost.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from json.encoder import encode_basestring_ascii as _string
from typing import TYPE_CHECKING, Any, TextIO, cast

from headrace import settings
from headrace.records.lines import (
    FLOW_RUN,
    HEARTBEAT,
    PREFIX,
    SUMMARY,
    TASK_RUN,
    FlowRunLine,
    HeartbeatLine,
    SummaryLine,
    TaskRunLine,
)
from headrace.results.deep import call_deep
from headrace.results.store import local_path, write_bytes
from headrace.states import State, StateType

if TYPE_CHECKING:  # the engine's run objects are written, never imported: no import cycle
    from pathlib import Path

    from headrace.engine.runs import FlowRun, RunTree
    from headrace.engine.task_run import TaskRun

HEARTBEAT_SECONDS = 10.0


def _json_safe(value: Any) -> Any:
    try:
        return call_deep(json.loads, call_deep(json.dumps, value, default=repr))
    except (TypeError, ValueError):
        return repr(value)


def task_run_line(run: TaskRun) -> TaskRunLine:
    line: TaskRunLine = {
        "kind": TASK_RUN,
        "id": run.id,
        "flow_run_id": run.flow_run.id,
        "name": run.name,
        "task_key": run.task_key,
        "state": run.state.to_dict(),
        "start": run.start_time,
        "end": run.end_time,
        "upstream": run.upstream_ids(),
    }
    if run.map_index is not None:
        line["map_index"] = run.map_index
    if run.attempt > 1:
        line["attempt"] = run.attempt
    if run.subflow_run is not None:
        line["subflow_run_id"] = run.subflow_run.id
    if run.task is not None and run.task.tags:
        line["tags"] = sorted(run.task.tags)
    return line


def _number(value: float | None) -> str:
    return "null" if value is None else repr(value)


_TASK_RUN_START = f'{PREFIX}{TASK_RUN}", "id": '
_EMPTY = '""'
# The fixed parts of a line, encoded once: a run's flow run and task key, a state's type and
# name. Few distinct values, and at flow end a 30,000-run flow writes them all at once.
_heads: dict[tuple[str, str], tuple[str, str]] = {}
_state_heads: dict[tuple[str, str], str] = {}


def task_run_json(run: TaskRun, state: State[Any]) -> str:
    """`json.dumps(task_run_line(run))`, built directly: one line per task run per flush, and
    `json.dumps` formats each float through a Python call (5 us a line, a fifth of a 30,000-run
    flow's time). The same text, so readers see no difference.

    A task run's id (and an upstream run's) is `runs.new_id`'s: hex digits and dashes, which
    JSON needs no escape for, so it is quoted without the encoder."""
    key = (run.flow_run.id, run.task_key)
    head = _heads.get(key)
    if head is None:
        if len(_heads) > 10_000:
            _heads.clear()  # bounded: a long-lived process runs many flows
        head = _heads[key] = (
            f'"flow_run_id": {_string(key[0])}, "name": ',
            f', "task_key": {_string(key[1])}, "state": {{"type": ',
        )
    kind = (state.type, state.name)
    state_head = _state_heads.get(kind)
    if state_head is None:
        if len(_state_heads) > 1_000:
            _state_heads.clear()
        state_head = _state_heads[kind] = (
            f'{_string(state.type.value)}, "name": {_string(state.name)}, "message": '
        )
    upstream = run.upstream
    if not upstream:
        ids = ""
    elif len(upstream) == 1:
        ids = f'"{upstream[0].id}"'
    else:
        ids = '"' + '", "'.join(run.upstream_ids()) + '"'
    result = state.result_uri
    message = state.message
    # A float's repr is a third of a microsecond; the state's timestamp is the run's start
    # (Running) or end (final) time, the same float, formatted once.
    timestamp = state.timestamp
    stamp = repr(timestamp)
    start = run.start_time
    end = run.end_time
    text = (
        f'{_TASK_RUN_START}"{run.id}", {head[0]}{_string(run.name)}'
        f"{head[1]}{state_head}{_string(message) if message else _EMPTY}, "
        f'"timestamp": {stamp}, '
        f'"result": {"null" if result is None else _string(result)}}}, '
        f'"start": {stamp if start == timestamp else _number(start)}, '
        f'"end": {stamp if end == timestamp else _number(end)}, '
        f'"upstream": [{ids}]'
    )
    if run.map_index is not None:
        text += f', "map_index": {run.map_index!r}'
    if run.attempt > 1:
        text += f', "attempt": {run.attempt!r}'
    if run.subflow_run is not None:
        text += f', "subflow_run_id": {_string(run.subflow_run.id)}'
    task = run.task
    if task is not None and task.tags:
        text += f', "tags": [{", ".join([_string(tag) for tag in sorted(task.tags)])}]'
    return text + "}"


def flow_run_line(run: FlowRun) -> FlowRunLine:
    parent = run.parent_task_run
    flow = run.flow
    return {
        "kind": FLOW_RUN,
        "id": run.id,
        "name": run.name,
        "flow_name": flow.name,
        "version": flow.version,
        "parameters": _json_safe(run.parameters),
        "state": run.state.to_dict(),
        "start": run.start_time,
        "end": run.end_time,
        "parent_task_run_id": parent.id if parent else None,
        "parent_flow_run_id": parent.flow_run.id if parent else None,
        "tags": sorted(flow.tags),
        "timeout_seconds": flow.timeout_seconds,
        "deployment": {
            "name": settings.current().deployment_name or None,
            "version": settings.current().deployment_version or None,
        },
    }


_CHUNK = 256  # lines formatted, joined and written at a time: about 90 KB


class _Appender:
    """Where a flush's lines go, a chunk at a time: appended to a local file, or kept in
    `kept` for a store that cannot append, which gets the whole record once the flush ends."""

    def __init__(self, path: Path | None, url: str, kept: list[str]) -> None:
        self._path = path
        self._url = url
        self._kept = kept
        self._handle: TextIO | None = None
        self.written = False

    def write(self, lines: list[str]) -> None:
        if not lines:
            return
        text = "\n".join(lines) + "\n"
        if self._path is None:
            self._kept.append(text)
        else:
            if self._handle is None:
                self._handle = self._path.open("a")
            self._handle.write(text)
        self.written = True

    def __enter__(self) -> _Appender:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if self._handle is not None:
            self._handle.close()
        elif self.written and kind is None:  # else kept, for the next flush to write
            write_bytes(self._url, "".join(self._kept).encode())


class RecordWriter:
    def __init__(self, tree: RunTree, url: str, interval: float | None = None) -> None:
        self.tree = tree
        self.url = url
        self.interval = settings.current().record_flush_seconds if interval is None else interval
        self._path = local_path(url)
        self._lines: list[str] = []  # everything written, for stores that cannot append
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self._last_counts: dict[str, int] | None = None
        self._last_write = 0.0
        # Task runs by the state name last written, and those last written running: kept
        # from each flush's changed runs, so a flush costs what changed, not every run so far.
        self._counts: dict[str, int] = {}
        self._running: dict[TaskRun, None] = {}

    def start(self) -> None:
        if self._path is not None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._path.write_text("")
        self._flusher = threading.Thread(target=self._loop, name="headrace-record", daemon=True)
        self._flusher.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except Exception:  # a full disk must not kill the run; the next flush retries
                logging.getLogger("headrace.record").exception("writing the run record failed")

    def flush(self) -> None:
        """Write what changed since the last flush, a chunk of lines at a time: the lines of a
        30,000-run flow made one 10 MB string (and its encoded copy) in fresh pages from the
        OS, which cost the 10,000-task flow a microsecond a run more than the 1,000-task one."""
        with self._lock:
            tree = self.tree
            dirty, tree.dirty = tree.dirty, []
            logs, tree.logs = tree.logs, []
            dumps = json.dumps
            counts = self._counts
            with _Appender(self._path, self.url, self._lines) as out:
                for start in range(0, len(dirty), _CHUNK):
                    out.write(self._lines_of(dirty[start : start + _CHUNK]))
                out.write([dumps(entry, default=repr) for entry in logs])
                summarised = counts != self._last_counts or bool(dirty)
                now = time.time()
                if summarised:
                    self._last_counts = dict(counts)
                    names = [run.name for run, _ in zip(self._running, range(20), strict=False)]
                    summary: SummaryLine = {
                        "kind": SUMMARY,
                        "ts": now,
                        "counts": self._last_counts,
                        "total": sum(counts.values()),
                        "running": names,
                    }
                    out.write([dumps(summary)])
                elif logs or now - self._last_write >= HEARTBEAT_SECONDS:
                    heartbeat: HeartbeatLine = {"kind": HEARTBEAT, "ts": now}
                    out.write([dumps(heartbeat)])  # a summary carries the time too
                if out.written:
                    self._last_write = now

    def _lines_of(self, runs: list[TaskRun | FlowRun]) -> list[str]:
        """Each run's line; task runs' states counted by the name last written (what this
        flush changed), and those running kept for the summary."""
        lines: list[str] = []
        append = lines.append
        counts = self._counts
        running = self._running
        line_of = task_run_json
        running_type = StateType.RUNNING
        for run in runs:
            run.dirty = False
            if run.RECORD_KIND == TASK_RUN:
                task_run: TaskRun = run  # type: ignore[assignment]  # (no cast() call)
                state = task_run.state
                append(line_of(task_run, state))
                name = state.name
                before = task_run.recorded
                if before != name:
                    if before is not None:
                        left = counts[before] - 1
                        if left:
                            counts[before] = left
                        else:
                            del counts[before]
                    counts[name] = counts.get(name, 0) + 1
                    task_run.recorded = name
                if state.type is running_type:
                    running[task_run] = None
                elif running:
                    running.pop(task_run, None)
            else:
                flow_run = cast("FlowRun", run)
                append(call_deep(json.dumps, flow_run_line(flow_run)))  # deep parameters
        return lines

    def close(self) -> None:
        self._stop.set()
        if self._flusher is not None and self._flusher is not threading.current_thread():
            self._flusher.join(timeout=5)
        self.flush()
