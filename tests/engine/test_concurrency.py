"""Where flows and tasks run (the sync/async matrix), and scale without deadlocks."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from headrace import ConcurrentTaskRunner, HeadraceFuture, flow, runtime, task
from headrace.engine.orchestrator import get_engine


@task
def sync_inc(x: int) -> int:
    return x + 1


@task
async def async_inc(x: int) -> int:
    await asyncio.sleep(0.001)
    return x + 1


def test_sync_flow_runs_on_the_main_thread() -> None:
    @flow
    def f() -> bool:
        return threading.current_thread() is threading.main_thread()

    assert f() is True


def test_async_flow_runs_on_its_callers_loop_not_the_engines() -> None:
    @flow
    async def f() -> tuple[object, object]:
        return asyncio.get_running_loop(), get_engine().loop

    async def main() -> None:
        mine, engines = await f()
        assert mine is asyncio.get_running_loop()
        assert mine is not engines

    asyncio.run(main())


def test_sync_flow_mixing_sync_and_async_tasks() -> None:
    @flow
    def f() -> int:
        a = async_inc.submit(0)  # async upstream of sync
        b = sync_inc.submit(a)
        c = async_inc(b)  # a direct async call in a sync flow returns the result
        d = sync_inc(c)
        assert not asyncio.iscoroutine(c)
        return async_inc.submit(d).result()

    assert f() == 5


def test_async_flow_task_conventions() -> None:
    """Mirrors Prefect 2.14 as observed: in an async flow only async tasks hand back
    awaitables; a sync task's call, submit, map and future are plain, blocking calls."""

    @flow
    async def f() -> list[int]:
        direct_async = await async_inc(0)
        direct_sync = sync_inc(direct_async)
        assert not asyncio.iscoroutine(direct_sync)
        future = sync_inc.submit(direct_sync)
        assert isinstance(future, HeadraceFuture)
        from_future = future.result()
        async_future = await async_inc.submit(future)  # a sync upstream of an async task
        state = await async_future.wait()
        assert state.is_completed()
        states = sync_inc.submit(1, return_state=True)
        return [direct_async, direct_sync, from_future, await async_future, states.result()]

    assert asyncio.run(f()) == [1, 2, 3, 4, 2]


def test_sync_task_direct_call_in_async_flow_runs_on_a_worker_thread() -> None:
    """Prefect 2.14 blocks the flow's loop for a sync call and runs the body in a worker
    thread, so a sync task may start an event loop of its own."""

    @task
    def own_loop() -> str:
        return asyncio.run(asyncio.sleep(0, "done"))

    @flow
    async def f() -> str:
        return own_loop()

    assert asyncio.run(f()) == "done"


def test_async_tasks_run_concurrently_on_the_engine_loop() -> None:
    @task
    async def where(i: int) -> bool:
        await asyncio.sleep(0.01)
        return asyncio.get_running_loop() is get_engine().loop

    @flow
    def f() -> list[bool]:
        return [fut.result() for fut in where.map(range(3))]

    assert f() == [True, True, True]


def test_max_workers_bounds_concurrency() -> None:
    lock = threading.Lock()
    active = [0, 0]  # current, peak

    @task
    def busy(i: int) -> int:
        with lock:
            active[0] += 1
            active[1] = max(active[1], active[0])
        time.sleep(0.01)
        with lock:
            active[0] -= 1
        return i

    @flow(task_runner=ConcurrentTaskRunner(max_workers=3))
    def f() -> int:
        return sum(fut.result() for fut in busy.map(range(30)))

    assert f() == sum(range(30))
    assert active[1] <= 3


# -- 10k: no deadlocks, no recursion, no per-task threads -------------------------------------


@pytest.mark.timeout(60)
def test_ten_thousand_async_tasks_sleeping_at_once() -> None:
    @task
    async def nap(i: int) -> int:
        await asyncio.sleep(0.2)
        return i

    @flow
    def f() -> int:
        futures = nap.map(range(10_000))
        return sum(future.result() for future in futures)

    assert f() == sum(range(10_000))


@pytest.mark.timeout(60)
def test_ten_thousand_async_tasks_submitted_from_an_async_flow() -> None:
    @task
    async def nap(i: int) -> int:
        await asyncio.sleep(0.2)
        return i

    @flow
    async def f() -> int:
        futures = [await nap.submit(i) for i in range(10_000)]
        return sum([await future.result() for future in futures])

    assert asyncio.run(f()) == sum(range(10_000))


@pytest.mark.timeout(60)
def test_ten_thousand_sync_tasks() -> None:
    @task
    def short(i: int) -> int:
        time.sleep(0.001)
        return i

    @flow
    def f() -> int:
        return sum(future.result() for future in short.map(range(10_000)))

    assert f() == sum(range(10_000))


@pytest.mark.timeout(60)
def test_flows_in_four_threads_submitting_chains_and_fan_ins_at_once(load_record) -> None:
    """Workers that end runs while other threads hold the engine busy leave them to the
    next holder: every run still ends Completed, with its result, in its own record."""

    @task
    def inc(x: int) -> int:
        return x + 1

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    @flow(persist_result=False)
    def f(n: int) -> tuple[str, int, int, int]:
        chained = inc.submit(0)
        for _ in range(n - 1):
            chained = inc.submit(chained)
        loose = [inc.submit(i) for i in range(n)]
        mapped = sum(future.result() for future in inc.map(range(n)))
        return runtime.flow_run.id, chained.result(), total.submit(loose).result(), mapped

    n = 2_000
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(f, [n] * 4))
    expected = sum(range(1, n + 1))
    assert {outcome[1:] for outcome in outcomes} == {(n, expected, expected)}
    for flow_run_id, *_ in outcomes:
        runs = load_record(flow_run_id).task_runs.values()
        assert len(runs) == 3 * n + 1
        assert {run["state"]["name"] for run in runs} == {"Completed"}


@pytest.mark.timeout(60)
def test_one_task_with_ten_thousand_upstream_futures_as_input() -> None:
    @task
    def total(values: list[int]) -> int:
        return sum(values)

    @flow
    def f() -> tuple[int, int]:
        upstream = sync_inc.map(range(10_000))
        via_async = async_inc.map(range(10_000))
        return total(upstream), total.submit(via_async).result()

    expected = sum(range(1, 10_001))
    assert f() == (expected, expected)


@pytest.mark.timeout(60)
def test_one_task_waiting_for_ten_thousand_futures(load_record) -> None:
    finished = []

    @task
    def mark(i: int) -> None:
        finished.append(i)

    @task
    def after() -> int:
        return len(finished)

    @flow
    def f() -> int:
        futures = mark.map(range(10_000))
        return after.submit(wait_for=futures).result()

    assert f() == 10_000
    record = load_record()
    (after_run,) = [run for run in record.task_runs.values() if run["task_key"] == "after"]
    assert len(after_run["upstream"]) == 10_000


@pytest.mark.timeout(60)
def test_long_chain_of_not_ready_runs_does_not_recurse() -> None:
    @task
    def fail() -> int:
        raise ValueError("first link")

    @flow
    def f() -> str:
        future = fail.submit()
        for _ in range(5_000):
            future = sync_inc.submit(future)
        return future.wait().name

    assert f() == "NotReady"


@pytest.mark.timeout(60)
def test_long_chain_with_a_retry_a_timeout_and_a_hook_in_it(load_record) -> None:
    attempts: list[int] = []
    hooked: list[str] = []

    @task(retries=1)
    def flaky(x: int) -> int:
        attempts.append(x)
        if len(attempts) == 1:
            raise ValueError("first attempt")
        return x + 1

    @task(timeout_seconds=30)
    def timed(x: int) -> int:
        return x + 1

    @task(on_completion=[lambda task, task_run, state: hooked.append(task_run.name)])
    def hooked_inc(x: int) -> int:
        return x + 1

    @flow
    def f() -> int:
        future = sync_inc.submit(0)
        for i in range(1, 3_000):
            step = flaky if i == 1_000 else timed if i == 2_000 else sync_inc
            step = hooked_inc if i == 2_500 else step
            future = step.submit(future)
        return future.result()

    assert f() == 3_000
    assert attempts == [1_000, 1_000]
    assert hooked == ["hooked_inc-0"]
    runs = load_record().task_runs.values()
    assert len(runs) == 3_000
    assert {run["state"]["name"] for run in runs} == {"Completed"}
    (retried,) = [run for run in runs if run["task_key"] == "flaky"]
    assert retried["attempt"] == 2


@pytest.mark.timeout(60)
def test_a_link_of_a_chain_that_times_out_ends_the_chain_and_every_run_is_recorded(
    load_record,
) -> None:
    @task(timeout_seconds=0.3)
    def stuck(x: int) -> int:
        time.sleep(30)
        return x

    @flow
    def f() -> str:
        future = sync_inc.submit(0)
        for i in range(1, 400):
            future = (stuck if i == 200 else sync_inc).submit(future)
        return future.wait().name

    started = time.monotonic()
    assert f() == "NotReady"
    assert time.monotonic() - started < 10
    runs = load_record().task_runs.values()
    assert len(runs) == 400
    names = [run["state"]["name"] for run in runs]
    assert names.count("Completed") == 200
    assert names.count("TimedOut") == 1
    assert names.count("NotReady") == 199


@pytest.mark.timeout(60)
def test_a_chain_cut_off_by_the_flows_timeout_is_cancelled_and_recorded(load_record) -> None:
    @task
    def slow_inc(x: int) -> int:
        time.sleep(0.01)
        return x + 1

    @flow(timeout_seconds=1)
    def f() -> int:
        future = slow_inc.submit(0)
        for _ in range(1, 1_000):
            future = slow_inc.submit(future)
        return future.result()

    state = f(return_state=True)
    assert state.name == "TimedOut"
    runs = list(load_record().task_runs.values())
    assert len(runs) == 1_000
    names = {run["state"]["name"] for run in runs}
    # The run cut off is Cancelled; those after it end Cancelled or, freed by it, NotReady.
    assert "Cancelled" in names
    assert names <= {"Completed", "Cancelled", "NotReady"}
    completed = sum(run["state"]["name"] == "Completed" for run in runs)
    assert 0 < completed < 1_000


def test_a_finished_flow_run_and_its_task_runs_are_freed_when_it_returns(script) -> None:
    """Nothing of the engine's (an idle worker's last item, the engine loop's own handles)
    keeps a finished flow's run tree alive. In a fresh interpreter: pytest's log capture
    keeps log records, which name their run."""
    run = script(
        """
        import gc

        from headrace import flow, task
        from headrace.engine.runs import FlowRun
        from headrace.engine.task_run import TaskRun

        @task
        def inc(x: int) -> int:
            return x + 1

        @flow
        def mapped() -> int:
            return sum(future.result() for future in inc.map(range(100)))

        assert mapped() == 5_050
        gc.collect()
        print(sum(type(run) in (FlowRun, TaskRun) for run in gc.get_objects()))
        """
    )
    done = run.run()
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0"]
