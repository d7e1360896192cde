"""SIGTERM (how a pod is stopped) ends the running flow in a fresh process: exit code 143,
the flow Cancelled or TimedOut in its run record, no task run left Running."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from engine_helpers import load_record_at, wait_until

from headrace.records import RunRecord

SLEEPING_FLOW = """
    import sys, time
    from pathlib import Path
    from headrace import flow, task

    @task
    def sleepy(i):
        time.sleep(60)

    @task
    async def async_sleepy():
        import asyncio
        await asyncio.sleep(60)

    @task
    def quick():
        return 1

    @flow
    def stuck():
        quick()
        sleepy.submit(1)
        async_sleepy.submit()
        Path(sys.argv[0]).with_suffix(".ready").write_text("ready")
        time.sleep(60)

    stuck()
    print("NOT REACHED")
"""

ASYNC_SLEEPING_FLOW = """
    import asyncio, sys
    from pathlib import Path
    from headrace import flow, task

    @task
    def sleepy():
        import time
        time.sleep(60)

    @flow
    async def stuck():
        sleepy.submit()
        Path(sys.argv[0]).with_suffix(".ready").write_text("ready")
        await asyncio.sleep(60)

    asyncio.run(stuck())
    print("NOT REACHED")
"""


def _terminate(script, source: str, run_id: str, **env: str) -> tuple[int, float, RunRecord]:
    run = script(source)
    proc = run.start(HEADRACE_FLOW_RUN_ID=run_id, **env)
    ready = run.path.with_suffix(".ready")
    wait_until(lambda: ready.exists() or proc.poll() is not None, timeout=30)
    assert proc.poll() is None, proc.communicate()
    time.sleep(0.2)
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=15)
    elapsed = time.monotonic() - start
    assert "NOT REACHED" not in out
    return proc.returncode, elapsed, load_record_at(run.home, run_id)


def _assert_nothing_left_running(record: RunRecord) -> None:
    for run in record.task_runs.values():
        assert run["state"]["type"] != "RUNNING", run
        assert run["state"]["type"] in {"COMPLETED", "CANCELLED", "FAILED"}, run


def test_sigterm_cancels_the_flow_and_exits_143(script) -> None:
    code, elapsed, record = _terminate(script, SLEEPING_FLOW, "sigterm-cancel")
    assert code == 143
    assert elapsed < 5
    assert record.root["id"] == "sigterm-cancel"
    assert record.root["state"]["name"] == "Cancelled"
    assert "SIGTERM" in record.root["state"]["message"]
    _assert_nothing_left_running(record)
    names = {run["name"]: run["state"]["name"] for run in record.task_runs.values()}
    assert names == {"quick-0": "Completed", "sleepy-0": "Cancelled", "async_sleepy-0": "Cancelled"}


def test_sigterm_state_timed_out(script) -> None:
    code, elapsed, record = _terminate(
        script, SLEEPING_FLOW, "sigterm-timedout", HEADRACE_SIGTERM_STATE="TimedOut"
    )
    assert code == 143 and elapsed < 5
    assert record.root["state"]["name"] == "TimedOut"
    assert record.root["state"]["type"] == "FAILED"
    _assert_nothing_left_running(record)


def test_sigterm_after_the_deadline_means_timed_out(script) -> None:
    code, _, record = _terminate(
        script, SLEEPING_FLOW, "sigterm-deadline", HEADRACE_DEADLINE=str(time.time() - 1)
    )
    assert code == 143
    assert record.root["state"]["name"] == "TimedOut"


def test_sigterm_before_the_deadline_is_cancelled(script) -> None:
    code, _, record = _terminate(
        script, SLEEPING_FLOW, "sigterm-early", HEADRACE_DEADLINE=str(time.time() + 3600)
    )
    assert code == 143
    assert record.root["state"]["name"] == "Cancelled"


def test_sigterm_in_an_async_flow(script) -> None:
    code, elapsed, record = _terminate(script, ASYNC_SLEEPING_FLOW, "sigterm-async")
    assert code == 143 and elapsed < 5
    assert record.root["state"]["name"] == "Cancelled"
    _assert_nothing_left_running(record)


def test_sigterm_in_a_subflow_ends_the_whole_run(script) -> None:
    source = """
        import sys, time
        from pathlib import Path
        from headrace import flow

        @flow
        def child():
            Path(sys.argv[0]).with_suffix(".ready").write_text("ready")
            time.sleep(60)

        @flow
        def parent():
            child()

        parent()
    """
    code, elapsed, record = _terminate(script, source, "sigterm-subflow")
    assert code == 143 and elapsed < 5
    assert record.root["state"]["name"] == "Cancelled"
    (child,) = [run for run in record.flow_runs.values() if run["parent_task_run_id"]]
    assert child["state"]["name"] == "Cancelled"
    _assert_nothing_left_running(record)


def test_debug_mode_logs_engine_internals(script, tmp_path: Path) -> None:
    run = script(
        """
        from headrace import flow, task

        @task
        def one(i):
            return i

        @flow
        def f():
            return sum(x.result() for x in one.map(range(3)))

        assert f() == 3
        """
    )
    done = run.run(HEADRACE_DEBUG="1")
    assert done.returncode == 0, done.stderr
    assert "engine thread started" in done.stderr
    assert "submitted 3 task runs" in done.stderr
    quiet = run.run()
    assert quiet.returncode == 0, quiet.stderr
    assert "submitted" not in quiet.stderr


@pytest.mark.parametrize("state", ["Cancelled", "TimedOut"])
def test_sigterm_after_the_flow_finished_still_exits_cleanly(script, state: str) -> None:
    # A SIGTERM that lands when no flow runs is the default action: the process ends.
    run = script(
        """
        import os, signal, sys, time
        from headrace import flow

        @flow
        def f():
            return 1

        assert f() == 1
        print("flow done", flush=True)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)
        """
    )
    done = run.run(timeout=30, HEADRACE_SIGTERM_STATE=state)
    assert "flow done" in done.stdout
    assert done.returncode == -signal.SIGTERM


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_sigterm_while_a_flow_waits_to_retry(script, kind: str) -> None:
    source = f"""
        import asyncio, sys
        from pathlib import Path
        from headrace import flow

        @flow(retries=1, retry_delay_seconds=60)
        {"async " if kind == "async" else ""}def flaky():
            Path(sys.argv[0]).with_suffix(".ready").write_text("ready")
            raise ValueError("first attempt")

        {"asyncio.run(flaky())" if kind == "async" else "flaky()"}
        print("NOT REACHED")
    """
    code, elapsed, record = _terminate(script, source, f"sigterm-retry-{kind}")
    assert code == 143 and elapsed < 5
    assert record.root["state"]["name"] == "Cancelled"
