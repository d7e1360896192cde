"""Flow and task timeouts end runs TimedOut promptly, even in blocking calls.

Bounds are generous on purpose: a 1 s timeout over a 30 s sleep must end well under 10 s.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from headrace import RunTimedOut, flow, task

BOUND = 10.0


def test_sync_flow_timeout_interrupts_a_blocking_sleep(load_record) -> None:
    @flow(timeout_seconds=1)
    def f() -> None:
        time.sleep(30)

    start = time.monotonic()
    state = f(return_state=True)
    assert time.monotonic() - start < BOUND
    assert state.name == "TimedOut" and state.is_failed()
    with pytest.raises(RunTimedOut):
        f()
    assert load_record().root["state"]["name"] == "TimedOut"


def test_flow_timeout_cannot_be_swallowed_by_except_exception() -> None:
    @flow(timeout_seconds=0.5)
    def f() -> str:
        try:
            time.sleep(30)
        except Exception:
            return "swallowed"
        return "slept"

    start = time.monotonic()
    assert f(return_state=True).name == "TimedOut"
    assert time.monotonic() - start < BOUND


def test_async_flow_timeout_while_awaiting() -> None:
    @flow(timeout_seconds=1)
    async def f() -> None:
        await asyncio.sleep(30)

    start = time.monotonic()
    state = asyncio.run(f(return_state=True))
    assert time.monotonic() - start < BOUND
    assert state.name == "TimedOut"


def test_async_flow_timeout_while_its_body_blocks() -> None:
    @flow(timeout_seconds=1)
    async def f() -> None:
        time.sleep(30)

    start = time.monotonic()
    state = asyncio.run(f(return_state=True))
    assert time.monotonic() - start < BOUND
    assert state.name == "TimedOut"


def test_flow_timeout_while_waiting_on_submitted_tasks_cancels_them(load_record) -> None:
    @task
    def slow() -> None:
        time.sleep(3)

    @flow(timeout_seconds=0.5)
    def f() -> None:
        slow.submit()
        slow.submit()

    start = time.monotonic()
    assert f(return_state=True).name == "TimedOut"
    assert time.monotonic() - start < BOUND
    runs = load_record().task_runs.values()
    assert [run["state"]["name"] for run in runs] == ["Cancelled", "Cancelled"]


def test_async_subflow_timeout_in_a_sync_flow() -> None:
    @flow(timeout_seconds=0.5)
    async def child() -> None:
        await asyncio.sleep(30)

    @flow
    def parent() -> str:
        return child(return_state=True).name

    start = time.monotonic()
    assert parent() == "TimedOut"
    assert time.monotonic() - start < BOUND


def test_subflow_timeout_does_not_end_the_parent() -> None:
    @flow(timeout_seconds=0.5)
    def child() -> None:
        time.sleep(30)

    @flow(timeout_seconds=20)
    def parent() -> str:
        state = child(return_state=True)
        return f"child {state.name}"

    start = time.monotonic()
    assert parent() == "child TimedOut"
    assert time.monotonic() - start < BOUND


def test_flow_timeout_off_the_main_thread() -> None:
    @flow(timeout_seconds=0.5)
    def f() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # pure Python: interruptible between bytecodes
            pass

    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(f(return_state=True)))
    start = time.monotonic()
    thread.start()
    thread.join(BOUND + 5)
    assert not thread.is_alive()
    assert time.monotonic() - start < BOUND
    assert result[0].name == "TimedOut"  # type: ignore[attr-defined]


def test_direct_task_call_on_the_main_thread_is_interrupted_by_signal() -> None:
    @task(timeout_seconds=1)
    def sleepy() -> None:
        time.sleep(30)

    @flow
    def f() -> str:
        return sleepy(return_state=True).name

    start = time.monotonic()
    assert f() == "TimedOut"
    assert time.monotonic() - start < BOUND


def test_submitted_task_times_out_at_its_deadline_while_its_thread_is_abandoned() -> None:
    @task(timeout_seconds=1)
    def sleepy() -> None:
        time.sleep(30)

    @flow
    def f() -> str:
        future = sleepy.submit()
        with pytest.raises(RunTimedOut):
            future.result()
        return future.state.name

    start = time.monotonic()
    assert f() == "TimedOut"
    assert time.monotonic() - start < BOUND


def test_async_task_timeout() -> None:
    @task(timeout_seconds=0.5)
    async def sleepy() -> None:
        await asyncio.sleep(30)

    @flow
    async def f() -> list[str]:
        direct = await sleepy(return_state=True)
        submitted = await sleepy.submit(return_state=True)
        return [direct.name, submitted.name]

    start = time.monotonic()
    assert asyncio.run(f()) == ["TimedOut", "TimedOut"]
    assert time.monotonic() - start < BOUND


def test_task_timeout_does_not_fire_for_a_quick_task() -> None:
    @task(timeout_seconds=5)
    def quick(x: int) -> int:
        return x

    @flow
    def f() -> list[int]:
        return [quick(1), quick.submit(2).result()]

    assert f() == [1, 2]


def test_retries_after_a_task_timeout(load_record) -> None:
    attempts = {"direct": 0, "submitted": 0}

    @task(timeout_seconds=0.5, retries=2)
    def slow_first(kind: str) -> str:
        attempts[kind] += 1
        if attempts[kind] == 1:
            time.sleep(30)
        return f"attempt {attempts[kind]}"

    @flow
    def f() -> list[str]:
        return [slow_first("direct"), slow_first.submit("submitted").result()]

    start = time.monotonic()
    assert f() == ["attempt 2", "attempt 2"]
    assert time.monotonic() - start < BOUND
    runs = load_record().task_runs.values()
    assert all(run["state"]["name"] == "Completed" and run["attempt"] == 2 for run in runs)


def test_a_task_that_always_times_out_ends_timed_out_after_its_retries() -> None:
    attempts = []

    @task(timeout_seconds=0.2, retries=1)
    async def never_done() -> None:
        attempts.append(1)
        await asyncio.sleep(30)

    @flow
    def f() -> str:
        return never_done.submit(return_state=True).name

    assert f() == "TimedOut"
    assert len(attempts) == 2


def test_deadlines_give_back_another_sigalrm_users_handler_and_timer(script) -> None:
    # pytest-timeout and other libraries use SIGALRM too: a flow's deadline must not eat
    # their alarm or leave its own handler behind.
    run = script(
        """
        import signal, time
        from headrace import flow

        fired = []
        def mine(signum, frame):
            fired.append(time.monotonic())

        signal.signal(signal.SIGALRM, mine)
        start = time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, 1.5)

        @flow(timeout_seconds=0.3)
        def times_out():
            time.sleep(30)

        @flow(timeout_seconds=20)
        def outlives_the_alarm():
            time.sleep(2)  # the other user's alarm falls due in here
            return "ok"

        assert times_out(return_state=True).name == "TimedOut"
        assert signal.getsignal(signal.SIGALRM) is mine
        assert 0 < signal.getitimer(signal.ITIMER_REAL)[0] <= 1.5
        assert outlives_the_alarm() == "ok"
        assert signal.getsignal(signal.SIGALRM) is mine
        assert len(fired) == 1, fired
        assert 1.2 < fired[0] - start < 5, fired[0] - start
        print("OK")
        """
    )
    done = run.run(timeout=60)
    assert done.returncode == 0, done.stderr
    assert "OK" in done.stdout


def test_parent_timeout_ends_a_running_async_subflow() -> None:
    @flow
    async def child() -> None:
        await asyncio.sleep(30)

    @flow(timeout_seconds=0.5)
    def parent() -> None:
        child()

    start = time.monotonic()
    state = parent(return_state=True)
    assert time.monotonic() - start < BOUND
    assert state.name == "TimedOut"


def test_flow_timeout_over_a_direct_task_call_with_a_longer_timeout(load_record) -> None:
    @task(timeout_seconds=60)
    def long_task() -> None:
        time.sleep(30)

    @flow(timeout_seconds=0.5)
    def f() -> None:
        long_task()

    start = time.monotonic()
    assert f(return_state=True).name == "TimedOut"
    assert time.monotonic() - start < BOUND
    (run,) = load_record().task_runs.values()
    assert run["state"]["type"] != "RUNNING"


def test_async_flow_timeout_while_gathering_threads() -> None:
    @flow(timeout_seconds=0.5)
    async def f() -> None:
        await asyncio.gather(asyncio.to_thread(time.sleep, 1.5), asyncio.sleep(30))

    start = time.monotonic()
    assert asyncio.run(f(return_state=True)).name == "TimedOut"
    assert time.monotonic() - start < BOUND


def test_a_timeout_that_never_fired_does_not_keep_the_flow_run_alive(script) -> None:
    """A task's timer is cancelled when it finishes, but the loop keeps a cancelled timer
    until its time: it must not hold the flow run (here: its parameters) for that hour. In a
    script of its own: pytest keeps each test's log records, which carry the flow run."""
    run = script(
        """
        import gc, time, weakref
        from headrace import flow, task

        class Big:
            pass

        @task(timeout_seconds=3600)
        def quick(x):
            return x

        @task(timeout_seconds=3600)
        async def quick_async(x):
            return x

        @flow(persist_result=False)
        def f(big):
            return quick.submit(1).result() + quick_async.submit(2).result()

        big = Big()
        alive = weakref.ref(big)
        assert f(big) == 3
        del big
        deadline = time.monotonic() + 10  # a worker lets go of its last run once idle
        while alive() is not None and time.monotonic() < deadline:
            time.sleep(0.01)
            gc.collect()
        print("freed" if alive() is None else "alive")
        """
    ).run()
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["freed"]
