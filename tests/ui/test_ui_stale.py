"""Stale runs: the engine's record writer beats while a run is quiet, and a run that is not
final and has not been seen for 30 s reads as "Lost (last seen …)" in the UI, its history,
`headrace graph`, and ends `headrace logs --follow`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ui_records import flow, task, write

from headrace.engine.runs import RunTree
from headrace.records import RunRecord
from headrace.records import writer as record_writer
from headrace.ui.graph import render_text

UiServer = Callable[..., str]


def quiet_tree() -> RunTree:
    """A run tree with nothing new to write: what a run in one long task looks like."""
    return RunTree()


def test_writer_beats_when_nothing_else_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "record.jsonl"
    writer = record_writer.RecordWriter(quiet_tree(), path.as_uri(), interval=60)
    path.write_text("")
    writer.flush()  # the first summary: a beat too
    writer.flush()  # within HEARTBEAT_SECONDS of the last write: nothing
    assert [json.loads(line)["kind"] for line in path.read_text().splitlines()] == ["summary"]
    monkeypatch.setattr(record_writer, "HEARTBEAT_SECONDS", 0.0)
    writer.flush()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["kind"] for line in lines] == ["summary", "heartbeat"]
    assert abs(lines[-1]["ts"] - time.time()) < 5
    assert RunRecord.load(path.as_uri()).last_seen == lines[-1]["ts"]


def lost_record(
    path: Path, seen_ago: float, state: str = "Running", name: str = "stuck-run"
) -> float:
    seen = time.time() - seen_ago
    write(
        path,
        [
            flow("root", state, name),
            task("slow-0", "slow", "Running"),
            {"kind": "heartbeat", "ts": seen},
        ],
    )
    return seen


def test_lost_after_30_seconds_without_a_beat(tmp_path: Path) -> None:
    path = tmp_path / "record.jsonl"
    lost_record(path, 60)
    assert RunRecord.load(path.as_uri()).lost()
    lost_record(path, 5)
    assert not RunRecord.load(path.as_uri()).lost()
    lost_record(path, 60, state="Completed")  # a final run is not lost, however old
    assert not RunRecord.load(path.as_uri()).lost()


def test_graph_and_logs_follow_on_a_lost_run(tmp_path: Path) -> None:
    home = tmp_path / "home"
    path = home / "runs" / "root" / "record.jsonl"
    seen = lost_record(path, 60)
    first = render_text(RunRecord.load(path.as_uri())).splitlines()[0]
    when = time.strftime("%H:%M:%S", time.localtime(seen))
    assert first.startswith(f"flow run stuck-run (pipeline): Lost (last seen {when}, 6")
    assert first.endswith(" s ago), 1 task runs")
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "headrace", "logs", "root", "--follow"],
        env={**os.environ, "HEADRACE_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert f"run Lost (last seen {when}" in result.stderr
    assert time.monotonic() - started < 30


def test_ui_shows_a_lost_run(tmp_path: Path, ui_server: UiServer, page: Any) -> None:
    home = tmp_path / "home"
    lost_record(home / "runs" / "root" / "record.jsonl", 90)
    lost_record(home / "runs" / "alive" / "record.jsonl", 2, name="busy-run")
    base = ui_server(KUBECONFIG=str(tmp_path / "none"))
    page.goto(f"{base}/#/")
    page.wait_for_selector("#localruns tbody tr")
    badges = {
        row.locator("td").first.inner_text(): row.locator(".badge").inner_text()
        for row in page.locator("#localruns tbody tr").all()
    }
    assert badges == {"stuck-run": "Lost", "busy-run": "Running"}
    page.goto(f"{base}/#/local/root")
    page.wait_for_selector(".run-header .badge:text('Lost')")
    assert page.locator(".run-header .lost").inner_text().startswith("last seen ")
    assert page.locator(".run-header .lost").inner_text().endswith(" s ago")
