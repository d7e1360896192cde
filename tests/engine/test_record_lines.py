"""One vocabulary for the run record: every line the writer writes is one of the kinds in
records/lines.py with exactly its fields, and every reader takes it as that kind. A field
or kind added on one side only fails here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from engine_helpers import record_paths

from headrace import flow, get_run_logger, task
from headrace.artifacts import create_link_artifact, create_markdown_artifact
from headrace.engine.runs import FlowRun, RunTree
from headrace.engine.task_run import TaskRun
from headrace.records import lines
from headrace.records import writer as record_writer
from headrace.records.reader import RunRecord, scan
from headrace.records.untrusted import LINE, engine_report, load, read_summary

ATTEMPTS: list[int] = []


@task(retries=1, tags=["t"])
def flaky(x: int) -> int:
    get_run_logger().info("attempt for %d", x)
    create_link_artifact("https://example.com", link_text="example", key=f"link-{x}")
    ATTEMPTS.append(x)
    if ATTEMPTS.count(x) == 1:
        raise ValueError("first attempt fails")
    return x


@flow
def child(n: int) -> int:
    return n + 1


@task
def calls_child(n: int) -> int:
    return child(n)


@flow(name="every-kind", tags=["f"])
def every_kind(n: int) -> int:
    get_run_logger().warning("flow-level line")
    create_markdown_artifact("# flow-level", description="made by the flow")
    mapped = flaky.map(range(n))
    return sum(m.result() for m in mapped) + calls_child(n)


def written_lines(headrace_home: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setattr(record_writer, "HEARTBEAT_SECONDS", 0.0)
    ATTEMPTS.clear()
    assert every_kind(2) == 1 + 3
    path = record_paths(headrace_home)[-1]
    writer = record_writer.RecordWriter(_quiet_tree(), path.as_uri(), interval=60)
    writer._last_counts = {}  # counts already written: the next flush is a heartbeat
    writer.flush()
    return path.read_text().splitlines()


def _quiet_tree() -> RunTree:
    """A run tree with nothing new to write."""
    return RunTree()


def test_every_written_line_is_a_kind_with_exactly_its_fields(
    headrace_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = written_lines(headrace_home, monkeypatch)
    kinds = set()
    for line in text:
        entry = json.loads(line)
        kind = entry["kind"]
        kinds.add(kind)
        assert lines.kind_of(line) == kind  # the fast path reads what parsing reads
        assert line.startswith(lines.PREFIX + kind + '"')
        shape = lines.KINDS[kind]
        declared = shape.__required_keys__ | shape.__optional_keys__
        assert shape.__required_keys__ <= entry.keys() <= declared, (kind, entry.keys())
        assert LINE.validate_json(line) == entry  # the validating readers keep it whole
    assert kinds == set(lines.KINDS)  # the run wrote every kind the readers know
    assert {FlowRun.RECORD_KIND, TaskRun.RECORD_KIND} == {lines.FLOW_RUN, lines.TASK_RUN}


def test_the_hand_built_task_run_line_is_the_typed_one(
    headrace_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = written_lines(headrace_home, monkeypatch)
    task_lines = [json.loads(line) for line in text if lines.kind_of(line) == lines.TASK_RUN]
    assert any(line.get("attempt") == 2 for line in task_lines)
    assert any("map_index" in line and "tags" in line for line in task_lines)
    assert any("subflow_run_id" in line for line in task_lines)


def test_every_reader_sees_the_same_record(
    headrace_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written_lines(headrace_home, monkeypatch)
    url = record_paths(headrace_home)[-1].as_uri()
    trusted, checked = RunRecord.load(url), load(url)
    assert checked.flow_runs == trusted.flow_runs
    assert checked.task_runs == trusted.task_runs
    assert checked.logs == trusted.logs and trusted.logs
    assert checked.artifacts == trusted.artifacts and trusted.artifacts
    assert checked.summary == trusted.summary == read_summary(url)
    assert trusted.last_seen is not None
    text = Path(record_paths(headrace_home)[-1]).read_text()
    assert next(scan(text, {lines.HEARTBEAT}))["ts"] == trusted.last_seen
    report = engine_report(url)
    assert report["state"] == "Completed" and report["flowRunId"] == trusted.root["id"]
    assert sum(report["counts"].values()) == len(trusted.task_runs)


def test_untrusted_readers_skip_lines_that_are_not_the_vocabulary(tmp_path: Path) -> None:
    path = tmp_path / "record.jsonl"
    good = {"kind": "summary", "ts": 1.0, "counts": {"Completed": 1}, "total": 1, "running": []}
    bad = {"kind": "summary", "ts": 2.0, "counts": "all of them"}
    path.write_text(f"{json.dumps(good)}\n{json.dumps(bad)}\n{{}}\n[1]\n")
    assert read_summary(path.as_uri()) == good
    assert load(path.as_uri()).summary == good
    assert RunRecord.load(path.as_uri()).summary == bad  # the engine's own reader trusts it
