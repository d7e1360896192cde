"""Prefect 2's artifacts: a markdown note, a table or a link that a run leaves for people.

Prefect keeps them on its API server; Headrace keeps them in the run's record beside its log
lines, so they go wherever the record goes: `headrace artifacts` and the UI show them, for a
local run and for a FlowRun alike. The three functions take Prefect 2.14's arguments and
return an id; in an async flow's body or an async task they return a coroutine of it, as
Prefect's do, so `await create_markdown_artifact(...)` works there.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from typing import Any, Final, Literal, cast

from headrace.engine.context import current_flow_run, current_task_run, given, wants_coroutine
from headrace.exceptions import MissingContextError
from headrace.logging import record_owner
from headrace.records.lines import ARTIFACT, ArtifactLine

# Each artifact is a line of the record, which the UI and the operator read whole: an
# artifact past this size is refused, naming it, rather than making every reader slow.
MAX_BYTES: Final = 1024 * 1024
_KEY: Final = re.compile(r"[a-z0-9-]+")

Table = dict[str, list[Any]] | list[dict[str, Any]] | list[list[Any]]


def create_markdown_artifact(
    markdown: str,
    key: str | None = None,
    description: str | None = None,
    *,
    _sync: bool | None = None,
) -> uuid.UUID:
    """Keep `markdown` in the run's record."""
    if not isinstance(markdown, str):
        raise TypeError(f"markdown must be a str, not {type(markdown).__name__}")
    return _create("create_markdown_artifact", "markdown", markdown, key, description, _sync)


def create_table_artifact(
    table: Table,
    key: str | None = None,
    description: str | None = None,
    *,
    _sync: bool | None = None,
) -> uuid.UUID:
    """Keep `table` in the run's record: a dict of columns, or a list of rows (dicts or
    lists). NaN cells become empty, as in Prefect; other values JSON cannot hold become
    text."""
    columns = isinstance(table, dict) and all(isinstance(v, list) for v in table.values())
    rows = isinstance(table, list) and all(isinstance(v, (list, dict)) for v in table)
    if not (columns or rows):
        raise TypeError(
            "table must be a dict of lists (columns), or a list of dicts or of lists (rows), "
            f"not {type(table).__name__}"
        )
    data = json.dumps(_without_nan(table), default=str, allow_nan=False)
    return _create("create_table_artifact", "table", data, key, description, _sync)


def create_link_artifact(
    link: str,
    link_text: str | None = None,
    key: str | None = None,
    description: str | None = None,
    *,
    _sync: bool | None = None,
) -> uuid.UUID:
    """Keep a link in the run's record (`link_text` shown for it, when given)."""
    if not isinstance(link, str):
        raise TypeError(f"link must be a str, not {type(link).__name__}")
    return _create("create_link_artifact", "link", link, key, description, _sync, link_text)


def _create(
    caller: str,
    kind: Literal["markdown", "table", "link"],
    data: str,
    key: str | None,
    description: str | None,
    sync: bool | None,
    link_text: str | None = None,
) -> uuid.UUID:
    """`sync`: the caller's `_sync=`, as Prefect 2.16 on takes it (True: the id even in async
    code)."""
    for name, text in (("description", description), ("link_text", link_text)):
        if text is not None and not isinstance(text, str):
            raise TypeError(f"{name} must be a str, not {type(text).__name__}")
    if key is not None and (not isinstance(key, str) or not _KEY.fullmatch(key)):
        raise ValueError(
            f"artifact key {key!r} must contain only lowercase letters, numbers and dashes "
            "(as in Prefect), e.g. 'daily-report'"
        )
    size = sum(len(part.encode()) for part in (data, description or "", link_text or ""))
    if size > MAX_BYTES:
        raise ValueError(
            f"{caller}(): the artifact is {size:,} bytes, over the limit of {MAX_BYTES:,}: "
            "keep large data as the task's result, and link to it or summarise it here"
        )
    run = current_task_run.get() or current_flow_run.get()
    if run is None:
        raise MissingContextError(
            f"{caller}() was called outside a flow or task run: Headrace keeps an artifact "
            "in its run's record, so create it inside one"
        )
    flow_run, task_run = record_owner(run)
    artifact_id = uuid.uuid4()
    line: ArtifactLine = {
        "kind": ARTIFACT,
        "id": str(artifact_id),
        "ts": time.time(),
        "type": kind,
        "key": key,
        "description": description,
        "data": data,
        "flow_run_id": flow_run.id,
    }
    if task_run is not None:
        line["task_run_id"] = task_run.id
        line["task_run_name"] = task_run.name
    if link_text is not None:
        line["link_text"] = link_text
    flow_run.tree.logs.append(cast("dict[str, Any]", line))  # written with the next flush
    if wants_coroutine(sync):  # Prefect's are sync-compatible
        return cast("uuid.UUID", given(artifact_id))
    return artifact_id


def _without_nan(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    if isinstance(value, list):
        return [_without_nan(item) for item in value]
    if isinstance(value, dict):
        return {name: _without_nan(item) for name, item in value.items()}
    return value


__all__ = [
    "MAX_BYTES",
    "create_link_artifact",
    "create_markdown_artifact",
    "create_table_artifact",
]
