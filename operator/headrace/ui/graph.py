"""The flow-run graph of a run record, grouped by dependency stage.

A stage is every task run of one flow run with the same `task_key` (every `double` of a map),
so a run of 10,000 task runs reads as a handful of stages whatever order they ran in. The web
UI computes the same stages in the browser; `headrace graph` prints them as text from here.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from headrace.records.lines import FlowRunLine
from headrace.records.reader import RunRecord
from headrace.states import FINAL_TYPES, UNSUCCESSFUL_TYPES

PENDING_TYPES = {"PENDING", "SCHEDULED"}
# An upstream in one of these types never completes, so what waits on it will never run.
_VERBS = {"FAILED": "failed", "CRASHED": "crashed", "CANCELLED": "was cancelled"}


@dataclass
class Stage:
    """The task runs of one task key in one flow run, with their depth in the stage DAG."""

    key: str
    depth: int = 0
    task_ids: list[str] = field(default_factory=list)
    upstream_stages: set[str] = field(default_factory=set)

    def counts(self, record: RunRecord) -> Counter[str]:
        return Counter(record.task_runs[i]["state"]["name"] for i in self.task_ids)


def order_stages(
    keys_in_order: list[str], preds: dict[str, set[str]]
) -> tuple[list[str], dict[str, int]]:
    """Stages in dependency order with their depth (longest path from a source stage).

    Stage dependencies can form a cycle when one task is called again downstream of another
    stage (`a -> b -> a`); then the earliest-seen stage left goes next, so a layout always
    exists and is the same for the same record.
    """
    remaining = {key: {p for p in preds.get(key, set()) if p != key} for key in keys_in_order}
    depth: dict[str, int] = {}
    order: list[str] = []
    while remaining:
        ready = [k for k in keys_in_order if k in remaining and not (remaining[k] - depth.keys())]
        if not ready:  # a cycle: break it at the earliest-seen stage
            ready = [next(k for k in keys_in_order if k in remaining)]
        for key in ready:
            placed = [depth[p] for p in remaining[key] if p in depth]
            depth[key] = max(placed) + 1 if placed else 0
            order.append(key)
            del remaining[key]
    return order, depth


def flow_stages(record: RunRecord, flow_run_id: str) -> list[Stage]:
    """The stages of one flow run's own task runs (not its subflows'), in dependency order."""
    stages: dict[str, Stage] = {}
    key_of: dict[str, str] = {}
    for run in record.task_runs.values():
        if run.get("flow_run_id") != flow_run_id:
            continue
        key = run.get("task_key") or run["name"]
        stages.setdefault(key, Stage(key)).task_ids.append(run["id"])
        key_of[run["id"]] = key
    for stage in stages.values():
        for task_id in stage.task_ids:
            for upstream in record.task_runs[task_id].get("upstream", []):
                if upstream in key_of and key_of[upstream] != stage.key:
                    stage.upstream_stages.add(key_of[upstream])
    order, depth = order_stages(
        list(stages), {key: stage.upstream_stages for key, stage in stages.items()}
    )
    for key in order:
        stages[key].depth = depth[key]
    return [stages[key] for key in order]


def blocked_by(record: RunRecord) -> dict[str, str]:
    """Each pending task run that will never run, and the failed run that stops it.

    The engine leaves such a run pending (NotReady) once an upstream fails, crashes or is
    cancelled, and a run downstream of a blocked one is blocked by the same failure; the
    failure named is the first one found, upstreams in recorded order.
    """
    found: dict[str, str | None] = {}
    runs = record.task_runs
    for start in runs:
        if start in found:
            continue
        stack = [start]
        while stack:
            tid = stack[-1]
            run = runs[tid]
            if run["state"]["type"] not in PENDING_TYPES:
                found[tid] = tid if run["state"]["type"] in UNSUCCESSFUL_TYPES else None
                stack.pop()
                continue
            todo = [u for u in run.get("upstream", []) if u in runs and u not in found]
            todo = [u for u in todo if u not in stack]  # a cycle: ignore the back edge
            if todo:
                stack.append(todo[0])
                continue
            causes = (found.get(u) for u in run.get("upstream", []))
            found[tid] = next((c for c in causes if c is not None), None)
            stack.pop()
    return {
        tid: cause
        for tid, cause in found.items()
        if cause is not None and runs[tid]["state"]["type"] in PENDING_TYPES
    }


def blocked_text(record: RunRecord, cause: str) -> str:
    """The words `will not run: upstream X failed`, the same as the web UI shows."""
    run = record.task_runs[cause]
    return f"will not run: upstream {run['name']} {_VERBS[run['state']['type']]}"


def lost_text(last_seen: float, now: float | None = None) -> str:
    """`Lost (last seen 12:00:01, 45 s ago)`, the same words as the web UI's."""
    ago = (time.time() if now is None else now) - last_seen
    return (
        f"Lost (last seen {time.strftime('%H:%M:%S', time.localtime(last_seen))}, {ago:.0f} s ago)"
    )


def _state_counts(counts: Counter[str]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counts.most_common())


def render_text(record: RunRecord, max_pending: int = 20) -> str:
    """A compact text graph: each flow run's stages with counts by state, subflows nested
    under the stage that called them, then the pending task runs and what they wait on."""
    lines: list[str] = []
    subflows_of: dict[str, list[FlowRunLine]] = {}
    for flow_run in record.flow_runs.values():
        parent = flow_run.get("parent_task_run_id")
        if parent is not None:
            subflows_of.setdefault(parent, []).append(flow_run)

    lost = record.lost()

    def flow_block(run: FlowRunLine, indent: str) -> None:
        total = sum(1 for t in record.task_runs.values() if t.get("flow_run_id") == run["id"])
        state = run["state"]["name"]
        if lost and run["state"]["type"] not in FINAL_TYPES:
            state = lost_text(record.last_seen or 0.0)
        lines.append(
            f"{indent}flow run {run['name']} ({run.get('flow_name', '')}): "
            f"{state}, {total} task runs"
        )
        for stage in flow_stages(record, run["id"]):
            after = f"  after {', '.join(sorted(stage.upstream_stages))}"
            lines.append(
                f"{indent}  stage {stage.depth + 1}  {stage.key}  {len(stage.task_ids)}: "
                f"{_state_counts(stage.counts(record))}" + (after if stage.upstream_stages else "")
            )
            for task_id in stage.task_ids:
                for sub in subflows_of.get(task_id, []):
                    flow_block(sub, indent + "    ")

    flow_block(record.root, "")
    pending = sorted(record.pending(), key=lambda r: r["name"])
    blocked = blocked_by(record)
    if pending:
        never = f" ({len(blocked)} will not run)" if blocked else ""
        lines.append(f"pending: {len(pending)} task runs{never}")
        # Runs that will never start come first: they are what a reader looks for.
        pending.sort(key=lambda r: r["id"] not in blocked)
        for run in pending[:max_pending]:
            waits = record.waiting_on(run["id"])
            if run["id"] in blocked:
                lines.append(f"  {run['name']} {blocked_text(record, blocked[run['id']])}")
            elif waits:
                names = ", ".join(
                    f"{record.task_runs[w]['name']} ({record.task_runs[w]['state']['name']})"
                    if w in record.task_runs
                    else w
                    for w in waits
                )
                lines.append(f"  {run['name']} waits on {names}")
            else:
                lines.append(f"  {run['name']} waits on nothing: ready to start")
        if len(pending) > max_pending:
            lines.append(f"  ... and {len(pending) - max_pending} more")
    return "\n".join(lines)


TASK_COLUMNS = (
    "id",
    "name",
    "key",
    "flow",
    "type",
    "state",
    "message",
    "start",
    "end",
    "up",
    "sub",
    "mapIndex",
    "result",
)


def _columns(
    record: RunRecord, task_ids: list[str], task_index: dict[str, int], flow_index: dict[str, int]
) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {name: [] for name in TASK_COLUMNS}
    for tid in task_ids:
        run = record.task_runs[tid]
        state = run["state"]
        columns["id"].append(tid)
        columns["name"].append(run["name"])
        columns["key"].append(run.get("task_key") or run["name"])
        columns["flow"].append(flow_index.get(run.get("flow_run_id", ""), -1))
        columns["type"].append(state["type"])
        columns["state"].append(state["name"])
        columns["message"].append(state.get("message") or "")
        columns["start"].append(run.get("start"))
        columns["end"].append(run.get("end"))
        columns["up"].append([task_index[u] for u in run.get("upstream", []) if u in task_index])
        columns["sub"].append(flow_index.get(run.get("subflow_run_id") or "", -1))
        columns["mapIndex"].append(run.get("map_index"))
        columns["result"].append(state.get("result"))
    return columns


def _flows_part(record: RunRecord, task_index: dict[str, int]) -> dict[str, Any]:
    """The flow runs, the root and whether it ended: small, so every delta carries them."""
    flow_ids = list(record.flow_runs)
    flow_index = {fid: i for i, fid in enumerate(flow_ids)}
    flows = [
        {
            "id": fid,
            "name": run["name"],
            "flowName": run.get("flow_name"),
            "type": run["state"]["type"],
            "state": run["state"]["name"],
            "message": run["state"].get("message") or "",
            "start": run.get("start"),
            "end": run.get("end"),
            "parentTask": task_index.get(run.get("parent_task_run_id") or "", -1),
            "result": run["state"].get("result"),
        }
        for fid, run in ((fid, record.flow_runs[fid]) for fid in flow_ids)
    ]
    try:
        root = flow_index[record.root["id"]]
    except ValueError:  # the record has no flow-run line yet
        root = -1
    return {
        "record": record.url,
        "final": root >= 0 and flows[root]["type"] in FINAL_TYPES,
        "root": root,
        "flows": flows,
        "summary": record.summary,
        "lastSeen": record.last_seen,
    }


def graph_payload(record: RunRecord) -> dict[str, Any]:
    """The record as columns for the browser: 10,000 task runs as a few arrays, upstream
    ids as indices, so the page parses and lays it out without building 10,000 objects."""
    task_ids = list(record.task_runs)
    task_index = {tid: i for i, tid in enumerate(task_ids)}
    flow_index = {fid: i for i, fid in enumerate(record.flow_runs)}
    return {
        **_flows_part(record, task_index),
        "tasks": _columns(record, task_ids, task_index, flow_index),
    }


def graph_delta(record: RunRecord, indices: list[int]) -> dict[str, Any]:
    """Only the task runs at `indices` (new or changed since the page's cursor), as columns
    with an `index` column; a task run keeps its index for the life of the record."""
    task_ids = list(record.task_runs)
    task_index = {tid: i for i, tid in enumerate(task_ids)}
    flow_index = {fid: i for i, fid in enumerate(record.flow_runs)}
    columns = _columns(record, [task_ids[i] for i in indices], task_index, flow_index)
    return {
        **_flows_part(record, task_index),
        "delta": True,
        "n": len(task_ids),
        "tasks": {"index": indices, **columns},
    }
