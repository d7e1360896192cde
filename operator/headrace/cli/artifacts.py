"""`headrace artifacts`: the markdown notes, tables and links a run made, from its record.

With no `--show`, one line per artifact, oldest first. `--show KEY` prints the newest artifact
with that key (a key names the latest of its versions, as in Prefect), or the one whose id
starts with it. A record is written by code that ran in the flow's pod, so control characters
are shown escaped: an artifact cannot move the cursor or recolour the reader's terminal.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from headrace.cli.graph import record_location
from headrace.cli.output import table
from headrace.records.lines import ArtifactLine
from headrace.records.reader import RunRecord

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with control characters other than newline and tab shown as escapes."""
    return _CONTROL.sub(lambda found: repr(found.group())[1:-1], text)


def show_artifacts(ref: str, namespace: str | None, show: str | None) -> int:
    record = RunRecord.load(record_location(ref, namespace))
    if show is None:
        print(printable(listing(record.artifacts)))
        return 0
    chosen = pick(record.artifacts, show)
    if chosen is None:
        raise ValueError(
            f"the run has no artifact with key or id {show!r}: `headrace artifacts RUN` lists them"
        )
    print(printable(render(chosen)))
    return 0


def listing(artifacts: list[ArtifactLine]) -> str:
    if not artifacts:
        return "no artifacts"
    rows = [["TIME", "KEY", "TYPE", "WHERE", "DESCRIPTION", "ID"]]
    for item in artifacts:
        rows.append(
            [
                time.strftime("%H:%M:%S", time.localtime(item["ts"])),
                item["key"] or "-",
                item["type"],
                item.get("task_run_name") or "flow",
                (item["description"] or "-").replace("\n", " "),
                item["id"][:8],
            ]
        )
    return table(rows)


def pick(artifacts: list[ArtifactLine], wanted: str) -> ArtifactLine | None:
    """The newest artifact with key `wanted`, else the first whose id starts with it."""
    for item in reversed(artifacts):
        if item["key"] == wanted:
            return item
    return next((item for item in artifacts if item["id"].startswith(wanted)), None)


def render(item: ArtifactLine) -> str:
    """An artifact's content as text: markdown as written, a link with its text, a table
    in aligned columns."""
    head = f"{item['key'] or item['id']} ({item['type']})"
    if item["description"]:
        head += f": {item['description']}"
    if item["type"] == "link":
        text = item.get("link_text")
        body = f"{text} <{item['data']}>" if text else item["data"]
    elif item["type"] == "table":
        body = table_text(json.loads(item["data"]))
    else:
        body = item["data"]
    return f"{head}\n\n{body}"


def table_text(data: Any) -> str:
    """A table artifact's rows under their column names: a dict of columns, or a list of
    rows as dicts (columns in order of first appearance) or as lists (no names). Anything
    else (a record written by hand) is shown as its JSON."""
    if isinstance(data, dict) and all(isinstance(column, list) for column in data.values()):
        columns: list[list[Any]] = list(data.values())
        height = max((len(column) for column in columns), default=0)
        rows = [
            [_cell(column[i]) if i < len(column) else "" for column in columns]
            for i in range(height)
        ]
        return table([[str(name) for name in data], *rows])
    if isinstance(data, list) and data and all(isinstance(row, dict) for row in data):
        names = list(dict.fromkeys(str(name) for row in data for name in row))
        return table([names, *[[_cell(row.get(name)) for name in names] for row in data]])
    if isinstance(data, list) and all(isinstance(row, list) for row in data):
        return table([[_cell(value) for value in row] for row in data]) if data else ""
    return json.dumps(data)


def _cell(value: Any) -> str:
    return "" if value is None else str(value).replace("\n", " ")
