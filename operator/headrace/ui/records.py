"""Run records and results as the UI serves them.

Records are cached per URL and, for local files, read incrementally: a page polling a
10,000-task run every second re-reads only the lines appended since its last poll. The UI
server calls these in a thread.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from headrace.records.lines import FlowRunLine, TaskRunLine
from headrace.records.reader import RunRecord
from headrace.records.untrusted import load, parse_checked
from headrace.results.store import local_path, read_bytes

PREVIEW_BYTES = 4096  # JSON results up to this size are previewed inline


@dataclass
class _Cached:
    record: RunRecord
    offset: int = 0  # bytes of a local file already read
    stamp: tuple[int, float] | None = None
    version: int = 0
    payload: dict[str, Any] | None = field(default=None, repr=False)
    # What changed when, so a page can ask for the changes since its cursor: the cursor is
    # `token:version`, and a new token (a rewritten record) sends the page the whole run.
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    order: list[str] = field(default_factory=list)  # task-run ids by index
    positions: dict[str, int] = field(default_factory=dict, repr=False)
    changed_at: list[int] = field(default_factory=list)  # version each index last changed
    seen: dict[str, TaskRunLine] = field(default_factory=dict, repr=False)
    flows_seen: dict[str, FlowRunLine] = field(default_factory=dict, repr=False)
    extras: tuple[int, Any] = (0, None)  # log count and summary

    def track(self, record: RunRecord, version: int, reloaded: bool = False) -> bool:
        """Note which task runs `record` adds or changes; False when nothing changed (then
        the caller keeps the previous record object and version)."""
        changed = False
        if reloaded and list(record.task_runs)[: len(self.order)] != self.order:
            raise _Rewritten
        seen = self.seen
        for tid, run in record.task_runs.items():
            before = seen.get(tid)
            if before is None:
                self.positions[tid] = len(self.order)
                self.order.append(tid)
                self.changed_at.append(version)
            elif before is run or before == run:
                continue
            else:
                self.changed_at[self.positions[tid]] = version
            seen[tid] = run
            changed = True
        flows = dict(record.flow_runs)
        if flows != self.flows_seen:
            self.flows_seen = flows
            changed = True
        extras = (len(record.logs), record.summary)
        if extras != self.extras:
            self.extras = extras
            changed = True
        return changed


class _Rewritten(Exception):
    """The record no longer starts with the task runs already sent: start over."""


class RecordCache:
    """Run records by URL, each re-read only when it changed, local files incrementally."""

    def __init__(self) -> None:
        self._records: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    def get(self, url: str) -> tuple[RunRecord, str]:
        """The record and a version tag that changes whenever its content does."""
        with self._lock:
            cached = self._refresh(url)
            return cached.record, f"{url}#{cached.token}:{cached.version}"

    def _refresh(self, url: str) -> _Cached:
        cached = self._records.get(url)
        path = local_path(url)
        if path is None:
            record = load(url)
            if cached is not None:
                try:
                    if cached.track(record, cached.version + 1, reloaded=True):
                        cached.record = record
                        cached.version += 1
                        cached.payload = None
                    return cached
                except _Rewritten:
                    pass
            cached = _Cached(record, version=1)
            cached.track(record, 1)
            self._records[url] = cached
            return cached
        stat = path.stat()  # FileNotFoundError: no record (yet)
        stamp = (stat.st_size, stat.st_mtime)
        if cached is not None and cached.stamp == stamp:
            return cached
        if cached is None or stat.st_size < cached.offset:
            cached = _Cached(RunRecord(url, parse=parse_checked))
            self._records[url] = cached
        with path.open("rb") as handle:
            handle.seek(cached.offset)
            data = handle.read()
        complete = data.rfind(b"\n") + 1  # a line being written waits for the next read
        cached.record.extend(data[:complete].decode(errors="replace"))
        cached.offset += complete
        cached.stamp = stamp if complete == len(data) else None
        if cached.track(cached.record, cached.version + 1) or cached.version == 0:
            cached.version += 1
            cached.payload = None
        return cached

    def payload(self, url: str, build: Any) -> tuple[dict[str, Any], str]:
        """`build(record)` for the current record, computed once per version."""
        record, tag = self.get(url)
        with self._lock:
            cached = self._records.get(url)
            if cached is not None and cached.payload is not None and cached.record is record:
                return cached.payload, tag
            payload: dict[str, Any] = build(record)
            if cached is not None and cached.record is record:
                cached.payload = payload
            return payload, tag

    def changes(self, url: str, since: str) -> tuple[RunRecord, str, list[int] | None]:
        """The record, its cursor, and the task-run indices changed after cursor `since`;
        None when `since` is not a cursor of this record's current reading (send it all)."""
        with self._lock:
            cached = self._refresh(url)
            cursor = f"{cached.token}:{cached.version}"
            token, _, version = since.partition(":")
            if token != cached.token or not version.isdigit() or int(version) > cached.version:
                return cached.record, cursor, None
            after = int(version)
            changed = [i for i, v in enumerate(cached.changed_at) if v > after]
            return cached.record, cursor, changed


def result_info(url: str) -> dict[str, Any]:
    """A result file's header (serializer, type, size) and, for small JSON, its value."""
    info: dict[str, Any] = {"location": url}
    try:
        data = read_bytes(url)
        newline = data.index(b"\n")
        header = json.loads(data[:newline])
    except FileNotFoundError:
        info["error"] = "result file not found"
        return info
    except (ValueError, OSError) as error:
        info["error"] = f"unreadable result: {error}"
        return info
    info.update(
        serializer=header.get("serializer"),
        type=header.get("type"),
        size=header.get("size"),
        created=header.get("created"),
    )
    body = data[newline + 1 :]
    if header.get("serializer") == "json" and len(body) <= PREVIEW_BYTES:
        with contextlib.suppress(ValueError):
            info["preview"] = json.loads(body)
    return info


def result_body(url: str) -> tuple[bytes, str]:
    """A result's payload (after its header line) and the content type to serve it as."""
    data = read_bytes(url)
    newline = data.find(b"\n")
    try:
        header = json.loads(data[:newline]) if newline >= 0 else {}
    except ValueError:
        header = {}
    if not header.get("headrace-result"):
        return data, "application/octet-stream"
    body = data[newline + 1 :]
    kind = "application/json" if header.get("serializer") == "json" else "application/octet-stream"
    return body, kind
