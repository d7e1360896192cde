"""Flow retries do not run again the task runs an earlier attempt completed.

Mirrors Prefect 2.14.21 as observed: a flow that calls a task directly and submits another,
then fails once, ran each task body once in total (2 calls) and returned 3 on its retry.
"""

from __future__ import annotations

import asyncio

from headrace import flow, task


def test_completed_task_runs_are_not_run_again_on_a_flow_retry() -> None:
    calls: list[int] = []
    attempts: list[int] = []

    @task
    def counted(i: int) -> int:
        calls.append(i)
        return i

    @flow(retries=1)
    def f() -> int:
        a = counted(1)
        b = counted.submit(2).result()
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("first attempt fails")
        return a + b

    assert f() == 3
    assert calls == [1, 2]


def test_a_task_run_that_failed_runs_again_on_the_retry() -> None:
    calls: list[str] = []

    @task
    def first() -> str:
        calls.append("first")
        return "first"

    @task
    def flaky() -> str:
        calls.append("flaky")
        if calls.count("flaky") == 1:
            raise ValueError("once")
        return "flaky"

    @flow(retries=1)
    def f() -> list[str]:
        return [first(), flaky(), first()]

    assert f() == ["first", "flaky", "first"]
    # the first attempt ran first-0, flaky-0; the retry reuses first-0 and runs first-1 new
    assert calls == ["first", "flaky", "flaky", "first"]


def test_async_flow_retry_reuses_completed_runs_too() -> None:
    calls: list[int] = []

    @task
    async def counted(i: int) -> int:
        calls.append(i)
        return i

    @flow(retries=2)
    async def f() -> list[int]:
        results = [await counted(1), await (await counted.submit(2)).result()]
        if len(calls) < 3 and results:
            calls.append(0)
            raise ValueError("again")
        return results

    assert asyncio.run(f()) == [1, 2]
    assert [c for c in calls if c] == [1, 2]
