"""`headrace graph`, the stage model behind both graph views, and the UI's API on local runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from ui_records import flow

from headrace.records import RunRecord
from headrace.ui.graph import order_stages, render_text


def task(tid: str, key: str, state: str, upstream: list[str], **extra: Any) -> dict[str, Any]:
    kind = {"Completed": "COMPLETED", "Running": "RUNNING", "Pending": "PENDING"}[state]
    return {
        "kind": "task_run",
        "id": tid,
        "flow_run_id": extra.pop("flow", "root"),
        "name": tid,
        "task_key": key,
        "state": {"type": kind, "name": state, "message": "", "timestamp": 1.0, "result": None},
        "start": None if state == "Pending" else 1.0,
        "end": 2.0 if state == "Completed" else None,
        "upstream": upstream,
        **extra,
    }


def write_record(path: Path) -> RunRecord:
    """halve runs listed before double (the order they finished in), a pending `report`
    waiting on a running `gate`, and a subflow with its own stage."""
    lines = [
        flow("root", "Running", "brave-run", flow_name="stages"),
        flow("sub", "Completed", "small-sub", "summarize-0", flow_name="summarize"),
        task("halve-0", "halve", "Completed", ["double-0"]),
        task("halve-1", "halve", "Running", ["double-1"]),
        task("double-0", "double", "Completed", []),
        task("double-1", "double", "Completed", []),
        task("gate-0", "gate", "Running", []),
        task("report-0", "report", "Pending", ["gate-0", "halve-0"]),
        task("summarize-0", "summarize", "Completed", [], subflow_run_id="sub"),
        task("square-0", "square", "Completed", [], flow="sub"),
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return RunRecord.load(path.as_uri())


def test_text_graph_groups_by_stage_and_lists_waits(tmp_path: Path) -> None:
    text = render_text(write_record(tmp_path / "record.jsonl"))
    lines = text.splitlines()
    assert lines[0] == "flow run brave-run (stages): Running, 7 task runs"
    stage_lines = [line.strip() for line in lines if line.strip().startswith("stage")]
    assert stage_lines.index("stage 1  double  2: Completed 2") < stage_lines.index(
        "stage 2  halve  2: Completed 1, Running 1  after double"
    )
    assert "stage 3  report  1: Pending 1  after gate, halve" in stage_lines
    assert "    flow run small-sub (summarize): Completed, 1 task runs" in lines
    assert "      stage 1  square  1: Completed 1" in lines
    assert "  report-0 waits on gate-0 (Running)" in lines  # halve-0 is done: not a wait


def test_stage_cycles_still_order() -> None:
    """`a` called again after `b` makes a stage cycle; every stage still gets a depth."""
    order, depth = order_stages(["a", "b", "c"], {"b": {"a"}, "a": {"b"}, "c": {"b"}})
    assert order == ["a", "b", "c"]
    assert depth == {"a": 0, "b": 1, "c": 2}


def test_cli_graph_and_ui_api_on_a_local_run(tmp_path: Path, ui_server: Callable[..., str]) -> None:
    home = tmp_path / "home"
    (home / "runs" / "root").mkdir(parents=True)
    record = write_record(home / "runs" / "root" / "record.jsonl")
    env = {**os.environ, "HEADRACE_HOME": str(home)}
    result = subprocess.run(
        [sys.executable, "-m", "headrace", "graph", "brave-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == render_text(record)

    base = ui_server(KUBECONFIG=str(tmp_path / "none"))
    runs = httpx.get(f"{base}/api/local").json()["items"]
    assert [(r["id"], r["name"], r["state"]) for r in runs] == [("root", "brave-run", "Running")]
    graph = httpx.get(f"{base}/api/local/root/graph")
    payload = graph.json()
    names = payload["tasks"]["name"]
    report = names.index("report-0")
    assert [names[i] for i in payload["tasks"]["up"][report]] == ["gate-0", "halve-0"]
    assert payload["flows"][1]["parentTask"] == names.index("summarize-0")
    # Polling an unchanged record costs a 304.
    again = httpx.get(
        f"{base}/api/local/root/graph", headers={"If-None-Match": graph.headers["ETag"]}
    )
    assert again.status_code == 304
    # Only recorded result locations are served: an id that has none is a 404.
    assert (
        httpx.get(f"{base}/api/local/root/results/file", params={"id": "halve-0"}).status_code
        == 404
    )
    assert httpx.get(f"{base}/api/flowruns").json()["kube"] is False
