"""Run records read as untrusted input: each line checked against its kind's fields.

A record is written by the flow's pod, which runs user code. The operator copies task-run
counts and the top-level run's outcome from it into FlowRun status, and the UI serves it, so
both take only lines that are what records/lines.py says: the same TypedDicts, validated by
pydantic as a union tagged by `kind`. Validating while parsing costs no more than
`json.loads` (pydantic-core parses the JSON itself).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Final

from pydantic import Field, TypeAdapter, ValidationError

from headrace.records.lines import SUMMARY, Line, SummaryLine
from headrace.records.reader import RunRecord, read_tail, scan
from headrace.results.deep import call_deep
from headrace.results.store import read_bytes

LINE: Final[TypeAdapter[Line]] = TypeAdapter(Annotated[Line, Field(discriminator="kind")])
SUMMARY_LINE: Final = TypeAdapter(SummaryLine)


def parse_checked(line: str) -> Line | None:
    """A record line if it is one of the kinds with its fields, else None (skipped)."""
    try:
        return LINE.validate_json(line)
    except ValidationError as error:
        if error.errors()[0]["type"] != "json_invalid":
            return None
    try:  # parameters nested past pydantic-core's parser limit, or a half-written line
        return LINE.validate_python(call_deep(json.loads, line))
    except (ValueError, ValidationError):
        return None


def load(url: str) -> RunRecord:
    """The record at `url`, lines that are not what the writer writes left out."""
    record = RunRecord(url, parse=parse_checked)
    record.extend(read_bytes(url).decode())
    return record


def read_summary(url: str, tail_bytes: int = 256 * 1024) -> SummaryLine | None:
    """The newest valid summary line (task-run counts), reading only its tail if local."""
    text = read_tail(url, tail_bytes)
    for entry in scan(text or "", {SUMMARY}):
        try:
            return SUMMARY_LINE.validate_python(entry)
        except ValidationError:
            continue
    return None


def engine_report(url: str) -> dict[str, Any]:
    """The top-level run's outcome from its record, shaped like the engine's exit report."""
    try:
        record = load(url)
        root = record.root
    except (FileNotFoundError, ValueError):
        return {}
    state = root["state"]
    counts: dict[str, int] = {}
    for run in record.task_runs.values():
        name = run["state"]["name"]
        counts[name] = counts.get(name, 0) + 1
    return {
        "state": state["name"],
        "message": state["message"] or "",
        "flowRunId": root["id"],
        "result": state["result"],
        "record": url,
        "counts": counts,
    }
