"""`headrace logs`: a run's log lines from its record, oldest or newest first, or followed.

A local run is named by id, id prefix, name or record path; a run on a cluster by
`flowrun/NAME`, whose lines come from the record the FlowRun's status points to plus whatever
its pods printed outside the record (tracebacks, stray prints).
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterable
from typing import Any

from headrace.records.lines import LogLine
from headrace.records.reader import RunRecord, find_record
from headrace.states import FINAL_STATES


def format_line(entry: LogLine) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(entry["ts"]))
    millis = int((entry["ts"] % 1) * 1000)
    where = entry.get("task_run_name") or "flow"
    return f"{stamp}.{millis:03d} | {entry['level']:<7} | {where} | {entry['message']}"


def _select(entries: Iterable[LogLine], task: str | None) -> list[LogLine]:
    if task is None:
        return list(entries)
    return [e for e in entries if (e.get("task_run_name") or "").startswith(task)]


def show_logs(
    ref: str,
    reverse: bool,
    follow: bool,
    task: str | None,
    limit: int | None,
    namespace: str | None = None,
) -> int:
    if reverse and follow:
        raise ValueError(
            "--reverse and --follow cannot be combined: following shows new lines last"
        )
    from headrace.sources import parse_ref

    name = parse_ref(ref)
    if name is not None:
        return show_flowrun_logs(name, namespace, reverse, follow, task, limit)
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
        if record.lost():
            # Nothing written for LOST_AFTER seconds and no final state: its process is gone.
            from headrace.ui.graph import lost_text

            print(f"headrace logs: run {lost_text(record.last_seen or 0.0)}", file=sys.stderr)
            return 1
        time.sleep(0.5)
        record = RunRecord.load(url)
        for entry in _select(record.logs[shown:], task):
            print(format_line(entry), flush=True)
        shown = len(record.logs)
    return 0


# The engine's console lines, which the record already holds: `12:00:00.123 | INFO    | ...`.
_ENGINE_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} \| ")


def _pod_lines(source: Any, namespace: str, status: dict[str, Any], all_lines: bool) -> list[str]:
    """Each attempt's pod output; with a readable record only what the record lacks."""
    lines: list[str] = []
    for attempt in status.get("attempts") or []:
        pod = attempt["podName"]
        for line in source.pod_log(namespace, pod, tail_lines=None).splitlines():
            if line.strip() and (all_lines or not _ENGINE_LINE.match(line)):
                lines.append(f"{pod} | {line}")
    return lines


def _record_logs(status: dict[str, Any]) -> list[LogLine] | None:
    url = status.get("recordLocation")
    if not url:
        return None
    try:
        return RunRecord.load(url).logs
    except (FileNotFoundError, OSError, ValueError):
        return None  # storage this machine cannot read: the pod logs still tell


def show_flowrun_logs(
    name: str,
    namespace: str | None,
    reverse: bool,
    follow: bool,
    task: str | None,
    limit: int | None,
) -> int:
    """Logs of FlowRun NAME: record lines, then pod output the record does not hold."""
    from headrace.sources import FlowRunSource, current_namespace, load_kube_client

    api_client = load_kube_client()
    if api_client is None:
        raise ValueError("no Kubernetes configuration: set KUBECONFIG")
    source = FlowRunSource(api_client)
    namespace = namespace or current_namespace()

    def status() -> dict[str, Any]:
        obj = source.get(namespace, name)
        if obj is None:
            raise FileNotFoundError(f"FlowRun {namespace}/{name} not found")
        return obj.get("status") or {}

    current = status()
    logs = _record_logs(current)
    lines = [format_line(e) for e in _select(logs or [], task)]
    if (task is None or logs is None) and not follow:  # following prints them at the end
        lines += _pod_lines(source, namespace, current, all_lines=logs is None)
    if reverse:
        lines.reverse()
    if limit is not None:
        lines = lines[:limit] if reverse else lines[-limit:]
    for line in lines:
        print(line)
    if not follow:
        return 0
    shown = len(logs or [])
    had_record = logs is not None
    while current.get("state") not in FINAL_STATES:
        time.sleep(0.5)
        current = status()
        logs = _record_logs(current)
        had_record = had_record or logs is not None
        for entry in _select((logs or [])[shown:], task):
            print(format_line(entry), flush=True)
        shown = max(shown, len(logs or []))
    if task is None or not had_record:
        for line in _pod_lines(source, namespace, current, all_lines=not had_record):
            print(line, flush=True)
    return 0
