"""`headrace graph` on a run with failures: what will never run says so, and why."""

from __future__ import annotations

from pathlib import Path

from ui_records import flow, task, write

from headrace.records import RunRecord
from headrace.ui.graph import blocked_by, render_text


def failed_run(path: Path) -> RunRecord:
    """fetch-1 failed; parse-1 is NotReady behind it, and report-0 behind parse-1; wait-0
    waits on a running gate, and load-0's upstream completed (it may start)."""
    write(
        path,
        [
            flow("root", "Running", "broken-run"),
            task("fetch-0", "fetch", "Completed"),
            task("fetch-1", "fetch", "Failed", message="ValueError: boom"),
            task("crash-0", "crash", "Crashed"),
            task("parse-0", "parse", "Completed", ["fetch-0"]),
            task("parse-1", "parse", "NotReady", ["fetch-1"]),
            task("report-0", "report", "Pending", ["parse-0", "parse-1"]),
            task("after-crash-0", "after", "Pending", ["crash-0"]),
            task("gate-0", "gate", "Running"),
            task("wait-0", "wait", "Pending", ["gate-0"]),
            task("load-0", "load", "Pending", ["fetch-0"]),
        ],
    )
    return RunRecord.load(path.as_uri())


def test_blocked_runs_name_the_failure(tmp_path: Path) -> None:
    record = failed_run(tmp_path / "record.jsonl")
    assert blocked_by(record) == {
        "parse-1": "fetch-1",
        "report-0": "fetch-1",
        "after-crash-0": "crash-0",
    }
    lines = render_text(record).splitlines()
    pending = lines[lines.index("pending: 5 task runs (3 will not run)") + 1 :]
    # What will never run comes first, then what is still waiting.
    assert pending == [
        "  after-crash-0 will not run: upstream crash-0 crashed",
        "  parse-1 will not run: upstream fetch-1 failed",
        "  report-0 will not run: upstream fetch-1 failed",
        "  load-0 waits on nothing: ready to start",
        "  wait-0 waits on gate-0 (Running)",
    ]


def test_no_failure_no_blocked_runs(tmp_path: Path) -> None:
    path = tmp_path / "record.jsonl"
    write(
        path,
        [
            flow("root", "Running"),
            task("a-0", "a", "Running"),
            task("b-0", "b", "Pending", ["a-0"]),
        ],
    )
    record = RunRecord.load(path.as_uri())
    assert blocked_by(record) == {}
    assert "pending: 1 task runs" in render_text(record).splitlines()
