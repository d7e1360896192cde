"""Sync and async tasks in sync and async flows: what a call, `submit` and `map` hand back.

Every expectation here mirrors what Prefect 2.14.21 did with the same flow (ephemeral mode):
only an async task called in an async flow hands back awaitables; everything else is plain.
"""

from __future__ import annotations

import asyncio

from headrace import HeadraceFuture, flow, task


@task
def plus_one(x: int) -> int:
    return x + 1


@task
async def plus_ten(x: int) -> int:
    await asyncio.sleep(0)
    return x + 10


def test_sync_task_in_async_flow_is_plain() -> None:
    """Prefect 2.14: a direct call returns 2, submit a future whose result() is 3 without
    await, map a list of futures."""

    @flow
    async def f() -> tuple[int, int, list[int], str]:
        direct = plus_one(1)
        future = plus_one.submit(2)
        assert isinstance(future, HeadraceFuture)
        mapped = plus_one.map([1, 2])
        assert isinstance(mapped, list)
        state = plus_one(1, return_state=True)
        return direct, future.result(), [m.result() for m in mapped], state.name

    assert asyncio.run(f()) == (2, 3, [2, 3], "Completed")


def test_sync_task_direct_call_in_async_flow_really_runs() -> None:
    """The bug this replaces: an un-awaited coroutine, the task never ran, flow Completed."""
    ran: list[int] = []

    @task
    def record(x: int) -> None:
        ran.append(x)

    @flow
    async def f() -> None:
        record(1)

    state = asyncio.run(f(return_state=True))
    assert ran == [1]
    assert state.is_completed()


def test_async_task_in_async_flow_is_awaited() -> None:
    """Prefect 2.14: `await a(1)` is 11, `await a.submit(2)` a future whose result() must be
    awaited, `await a.map(...)` a list of futures."""

    @flow
    async def f() -> tuple[int, int, list[int]]:
        call = plus_ten(1)
        assert asyncio.iscoroutine(call)
        direct = await call
        future = await plus_ten.submit(2)
        pending = future.result()
        assert asyncio.iscoroutine(pending)
        mapped = await plus_ten.map([1, 2])
        return direct, await pending, [await m.result() for m in mapped]

    assert asyncio.run(f()) == (11, 12, [11, 12])


def test_async_task_in_sync_flow_is_plain() -> None:
    """Prefect 2.14: 11, a future with result() 12, results [11, 12], no await anywhere."""

    @flow
    def f() -> tuple[int, int, list[int]]:
        future = plus_ten.submit(2)
        return plus_ten(1), future.result(), [m.result() for m in plus_ten.map([1, 2])]

    assert f() == (11, 12, [11, 12])


def test_sync_task_in_sync_flow_is_plain() -> None:
    @flow
    def f() -> tuple[int, int, list[int]]:
        return plus_one(1), plus_one.submit(2).result(), [m.result() for m in plus_one.map([1])]

    assert f() == (2, 3, [2])
