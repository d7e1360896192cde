"""The run record's vocabulary: each kind of line and its fields, for the writer and readers.

A record is JSON lines, each an object whose first key is `kind`. The writer builds its lines
as these TypedDicts: plain dicts, so no model is made per line on the engine's hot path (a
30,000-task run writes a line per task run per flush). Readers dispatch on `kind_of`, which
reads the kind from the writer's own prefix without parsing the line (a scan of a record's
tail for its newest summary must not parse a thousand task-run lines), and falls back to
parsing when the prefix is not there. records/untrusted.py validates the same TypedDicts
as a pydantic tagged union where a record is untrusted input; pydantic is not imported here,
so the engine does not pay for it.
"""

# No `from __future__ import annotations`: TypedDict reads NotRequired from live annotations.
import json
from typing import Any, Final, Literal, NotRequired

from typing_extensions import TypedDict  # pydantic needs this one on Python 3.11

TASK_RUN: Final = "task_run"
FLOW_RUN: Final = "flow_run"
LOG: Final = "log"
SUMMARY: Final = "summary"
HEARTBEAT: Final = "heartbeat"
ARTIFACT: Final = "artifact"

# How the writer starts every line: `json.dumps` of a dict whose first key is `kind`, or the
# same text built by hand (records/writer.py `task_run_json`).
PREFIX: Final = '{"kind": "'


class StateDict(TypedDict):
    """A state as run records and exit reports carry it (`State.to_dict`). Here, not beside
    `State`: pydantic reads only an interpreted `typing_extensions` TypedDict on Python 3.11,
    and `states.py` is one of the modules the image ships compiled (pyproject.toml's hook)."""

    type: str  # a StateType value
    name: str
    message: str
    timestamp: float
    result: str | None  # the result's URI, when it was persisted


class TaskRunLine(TypedDict):
    """A task run as of a flush; the reader keeps the newest line per id."""

    kind: Literal["task_run"]
    id: str
    flow_run_id: str
    name: str
    task_key: str
    state: StateDict
    start: float | None
    end: float | None
    upstream: list[str]  # ids of the task runs whose results it takes
    map_index: NotRequired[int]
    attempt: NotRequired[int]  # written from the second attempt on
    subflow_run_id: NotRequired[str]
    tags: NotRequired[list[str]]


class DeploymentLine(TypedDict):
    name: str | None
    version: str | None


class FlowRunLine(TypedDict):
    """A flow run as of a flush; the top-level one has no parent task run."""

    kind: Literal["flow_run"]
    id: str
    name: str
    flow_name: str
    version: str | None
    parameters: dict[str, Any] | str  # their repr when they are not JSON (a cycle)
    state: StateDict
    start: float | None
    end: float | None
    parent_task_run_id: str | None
    parent_flow_run_id: str | None
    tags: list[str]
    timeout_seconds: float | None
    deployment: DeploymentLine


class LogLine(TypedDict):
    """A log line of a run (headrace/logging.py), the task run's when it has one."""

    kind: Literal["log"]
    ts: float
    level: str
    logger: str
    message: str
    flow_run_id: str
    task_run_id: NotRequired[str]
    task_run_name: NotRequired[str]


class ArtifactLine(TypedDict):
    """An artifact a run made (headrace/artifacts.py): `data` is the markdown, the link, or
    the table as JSON text."""

    kind: Literal["artifact"]
    id: str
    ts: float
    type: Literal["markdown", "table", "link"]
    key: str | None
    description: str | None
    data: str
    flow_run_id: str
    task_run_id: NotRequired[str]
    task_run_name: NotRequired[str]
    link_text: NotRequired[str]


class SummaryLine(TypedDict):
    """Task-run counts by state name, written whenever they change."""

    kind: Literal["summary"]
    ts: float
    counts: dict[str, int]
    total: int
    running: list[str]  # names of up to 20 running task runs


class HeartbeatLine(TypedDict):
    """Written by a flush with nothing else to write, so a quiet run is told from a lost one."""

    kind: Literal["heartbeat"]
    ts: float


Line = TaskRunLine | FlowRunLine | LogLine | ArtifactLine | SummaryLine | HeartbeatLine

KINDS: Final[dict[str, type[Any]]] = {
    TASK_RUN: TaskRunLine,
    FLOW_RUN: FlowRunLine,
    LOG: LogLine,
    ARTIFACT: ArtifactLine,
    SUMMARY: SummaryLine,
    HEARTBEAT: HeartbeatLine,
}


def kind_of(line: str) -> str | None:
    """The kind of a record line, None for a line that is not one (or is half written)."""
    if line.startswith(PREFIX):
        end = line.find('"', len(PREFIX))
        kind = line[len(PREFIX) : end]
        if end > 0 and kind in KINDS:
            return kind
    try:
        entry = json.loads(line)
    except (ValueError, RecursionError):
        return None
    found = entry.get("kind") if isinstance(entry, dict) else None
    return found if isinstance(found, str) and found in KINDS else None
