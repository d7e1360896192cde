"""`headrace logs`: a run's log lines from its record, oldest or newest first, or followed."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from headrace.records.reader import RunRecord, find_record


def format_line(entry: dict[str, Any]) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(entry["ts"]))
    millis = int((entry["ts"] % 1) * 1000)
    where = entry.get("task_run_name") or "flow"
    return f"{stamp}.{millis:03d} | {entry['level']:<7} | {where} | {entry['message']}"


def _select(entries: Iterable[dict[str, Any]], task: str | None) -> list[dict[str, Any]]:
    if task is None:
        return list(entries)
    return [e for e in entries if (e.get("task_run_name") or "").startswith(task)]


def show_logs(ref: str, reverse: bool, follow: bool, task: str | None, limit: int | None) -> int:
    if reverse and follow:
        raise ValueError(
            "--reverse and --follow cannot be combined: following shows new lines last"
        )
    url = find_record(ref)
    record = RunRecord.load(url)
    entries = _select(record.logs, task)
    if reverse:
        entries.reverse()
    if limit is not None:
        entries = entries[:limit] if reverse else entries[-limit:]
    for entry in entries:
        print(format_line(entry))
    if not follow:
        return 0
    shown = len(record.logs)
    while not record.is_final():
        time.sleep(0.5)
        record = RunRecord.load(url)
        for entry in _select(record.logs[shown:], task):
            print(format_line(entry), flush=True)
        shown = len(record.logs)
    return 0
