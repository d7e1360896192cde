"""The run record: what a finished run left behind, and what a live one shows as it goes."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from typing import Any

import pytest
from engine_helpers import record_paths, task_runs_named, wait_until

from headrace import flow, get_run_logger, runtime, task
from headrace.engine.context import current_task_run
from headrace.engine.runs import new_id
from headrace.records import RunRecord, find_record, record_url
from headrace.records.writer import task_run_json, task_run_line
from headrace.results.store import read_bytes


@task
def produce(x: int) -> int:
    return x


@task
def combine(a: int, b: int) -> int:
    get_run_logger().info("combining %d and %d", a, b)
    return a + b


@task
def fail() -> None:
    raise ValueError("broken")


def test_finished_run_record(load_record) -> None:
    @flow(name="recorded")
    def f(n: int) -> int:
        get_run_logger().warning("flow-level line")
        a = produce.submit(n)
        b = produce.submit(2)
        fail.submit()
        return combine(a, b)

    assert f(1) == 3
    record = load_record()
    assert record.is_final()
    root = record.root
    assert root["flow_name"] == "recorded"
    assert root["state"]["name"] == "Completed"
    assert root["parameters"] == {"n": 1}
    assert root["start"] <= root["end"]

    produced = task_runs_named(record, "produce")
    (combined,) = task_runs_named(record, "combine")
    (failed,) = task_runs_named(record, "fail")
    assert [run["state"]["name"] for run in produced] == ["Completed", "Completed"]
    assert failed["state"]["name"] == "Failed" and "broken" in failed["state"]["message"]
    assert sorted(combined["upstream"]) == sorted(run["id"] for run in produced)
    for run in [*produced, combined, failed]:
        assert run["flow_run_id"] == root["id"]
        assert run["start"] is not None and run["end"] is not None
        assert root["start"] <= run["start"] <= run["end"] <= root["end"]

    logs = [(log["level"], log["message"], log.get("task_run_id")) for log in record.logs]
    assert ("WARNING", "flow-level line", None) in logs
    assert ("INFO", "combining 1 and 2", combined["id"]) in logs
    assert any(level == "ERROR" and task_id == failed["id"] for level, _, task_id in logs)
    assert record.summary is not None
    assert record.summary["counts"] == {"Completed": 3, "Failed": 1}
    assert record.summary["total"] == 4


def test_record_location_and_lookup(headrace_home, monkeypatch) -> None:
    @flow(flow_run_name="nightly-{day}")
    def f(day: str) -> None:
        pass

    f("monday")
    (path,) = record_paths(headrace_home)
    record = RunRecord.load(path.as_uri())
    run_id = record.root["id"]
    assert record.root["name"] == "nightly-monday"
    assert path.as_uri() == record_url(run_id)
    assert find_record(run_id) == path.as_uri()
    assert find_record(run_id[:8]) == path.as_uri()
    assert find_record("nightly-monday") == path.as_uri()


def test_flow_run_id_from_the_environment_names_the_record(script) -> None:
    run = script(
        """
        from headrace import flow, runtime

        @flow
        def f():
            return runtime.flow_run.id

        @flow
        def g():
            return runtime.flow_run.id

        print(f(), g())
        """
    )
    done = run.run(HEADRACE_FLOW_RUN_ID="given-id")
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.split()
    assert first == "given-id"
    assert second != "given-id"  # only the process's first top-level run takes it
    record = RunRecord.load(record_url("given-id", (run.home / "runs").as_uri()))
    assert record.root["id"] == "given-id"


def test_live_record_shows_pending_runs_and_what_they_wait_on(headrace_home) -> None:
    gate = threading.Event()
    started = threading.Event()

    @task
    def blocker() -> int:
        started.set()
        assert gate.wait(30)
        return 1

    @task
    def waiter(x: int) -> int:
        return x + 1

    outcome: list[object] = []

    @flow
    def f() -> int:
        upstream = blocker.submit()
        waiter.submit(upstream, return_state=False)
        return waiter.submit(upstream).result()

    thread = threading.Thread(target=lambda: outcome.append(f()), daemon=True)
    thread.start()
    try:
        assert started.wait(10)

        def pending_waiters() -> list[dict[str, object]] | None:
            paths = record_paths(headrace_home)
            if not paths:
                return None
            record = RunRecord.load(paths[-1].as_uri())
            pending = [r for r in record.pending() if r["task_key"] == "waiter"]
            return [(record, run) for run in pending] if len(pending) == 2 else None

        start = time.monotonic()
        found = wait_until(pending_waiters, timeout=10, interval=0.05)
        assert time.monotonic() - start < 5  # flushed every 0.5 s by default
        record, _ = found[0]
        (blocker_run,) = task_runs_named(record, "blocker")
        assert blocker_run["state"]["type"] == "RUNNING"
        assert not record.is_final()
        for _, run in found:
            assert run["upstream"] == [blocker_run["id"]]
            assert record.waiting_on(run["id"]) == [blocker_run["id"]]
    finally:
        gate.set()
        thread.join(30)
    assert outcome == [2]
    record = RunRecord.load(record_paths(headrace_home)[-1].as_uri())
    assert record.pending() == []
    for run in task_runs_named(record, "waiter"):
        assert record.waiting_on(run["id"]) == []
        assert run["state"]["name"] == "Completed"


def test_not_ready_runs_are_recorded_with_their_upstream(load_record) -> None:
    @flow
    def f() -> None:
        combine.submit(fail.submit(), 1)

    f(return_state=True)
    record = load_record()
    (failed,) = task_runs_named(record, "fail")
    (combined,) = task_runs_named(record, "combine")
    assert combined["state"]["name"] == "NotReady"
    assert combined["upstream"] == [failed["id"]]
    assert combined["start"] is None  # it never ran
    assert record.root["state"]["name"] == "Failed"


def test_a_large_run_records_every_task_run_final(load_record) -> None:
    @flow
    def f() -> int:
        return sum(x.result() for x in produce.map(range(3000)))

    assert f() == sum(range(3000))
    record = load_record()
    runs = task_runs_named(record, "produce")
    assert len(runs) == 3000
    assert {run["state"]["name"] for run in runs} == {"Completed"}
    assert record.summary["counts"] == {"Completed": 3000}


def test_a_record_in_a_store_that_cannot_append_holds_every_flush_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Such a record is rewritten whole at each flush, from the text of every flush so far,
    which is written a chunk of lines at a time: 1,200 runs in two flushes or more."""
    storage = f"memory://headrace-test-{uuid.uuid4().hex}/runs"
    monkeypatch.setenv("HEADRACE_RECORD_STORAGE", storage)
    monkeypatch.setenv("HEADRACE_RECORD_FLUSH_SECONDS", "0.05")

    @flow
    def f() -> tuple[str, int]:
        first = sum(x.result() for x in produce.map(range(600)))
        time.sleep(0.3)  # flushes in between
        return runtime.flow_run.id, first + sum(x.result() for x in produce.map(range(600, 1200)))

    flow_run_id, total = f()
    assert total == sum(range(1200))
    url = record_url(flow_run_id, storage)
    text = read_bytes(url).decode()
    finals = [
        line["id"]
        for line in map(json.loads, text.splitlines())
        if line["kind"] == "task_run" and line["state"]["type"] == "COMPLETED"
    ]
    assert len(finals) == len(set(finals)) == 1200  # each run's final line, once
    record = RunRecord.load(url)
    assert record.summary["counts"] == {"Completed": 1200}
    assert record.root["state"]["name"] == "Completed"


def test_record_keeps_every_field_of_a_task_run_with_awkward_names(load_record) -> None:
    attempts: list[int] = []

    @task(name='say "hi" ✓', tags={"b", "a\\z"}, retries=1, task_run_name="run\n{x}")
    def odd(x: int) -> int:
        attempts.append(x)
        if len(attempts) == 1:
            raise ValueError('first "try"\nfailed')
        return x

    @flow
    def child() -> int:
        return 1

    @flow
    def f() -> int:
        return sum(future.result() for future in odd.map([7, 8])) + child()

    assert f() == 16
    record = load_record()
    runs = task_runs_named(record, 'say "hi" ✓')
    assert sorted(run["name"] for run in runs) == ["run\n7", "run\n8"]
    assert sorted(run["map_index"] for run in runs) == [0, 1]
    assert sorted(run.get("attempt", 1) for run in runs) == [1, 2]
    for run in runs:
        assert run["tags"] == ["a\\z", "b"]
        assert run["state"]["type"] == "COMPLETED"
        assert isinstance(run["state"]["timestamp"], float)
        assert run["upstream"] == []
    (parent,) = [run for run in record.task_runs.values() if "subflow_run_id" in run]
    assert record.flow_runs[parent["subflow_run_id"]]["flow_name"] == "child"


def test_run_ids_are_unique_version_4_uuids_and_a_forked_child_draws_new_ones() -> None:
    ids = [new_id() for _ in range(1000)]
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(run_id).version == 4 for run_id in ids)
    assert uuid.UUID(ids[0]).variant == uuid.RFC_4122
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: write its next id and leave at once
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 100).decode()
    os.close(read)
    assert child[:24] != new_id()[:24]  # another process, another prefix


def test_each_task_run_line_is_the_text_json_dumps_gives(headrace_home) -> None:
    """The writer builds a task run's line by hand (for speed): it must be exactly what
    `json.dumps` gives, in every state a run passes through."""
    lines: list[tuple[str, str]] = []

    def both(run: Any) -> None:
        lines.append((task_run_json(run, run.state), json.dumps(task_run_line(run))))

    @task(name='odd "key" ✓', tags={"b", "a\\z"})
    def odd(x: int, y: int = 0) -> int:
        both(current_task_run.get())  # Running, its start time set
        return x + y

    @task
    def failing() -> None:
        raise ValueError('no "luck"\n')

    @flow(persist_result=True)
    def f() -> None:
        first = odd.submit(1)
        second = odd.submit(2, first)
        both(first.task_run)  # Pending, or further on
        third = odd.submit(first, second, wait_for=[first, second])
        state = failing.submit(return_state=True)
        both(third.task_run)
        third.wait()
        for future in (first, second, third):
            both(future.task_run)
        both(failing.submit(wait_for=[state]).task_run)

    f(return_state=True)
    assert len(lines) >= 8
    for built, dumped in lines:
        assert built == dumped
