"""The async forms of the Prefect 2 behaviours tested elsewhere, in one async flow each.

Every expectation mirrors Prefect 2.14.21: the same flows printed the same values under both
(allow_failure as an argument and in wait_for, map with return_state, task_run_name, tags, a
sync generator task, a task returning Failed, returned futures, log_prints=False).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from headrace import allow_failure, flow, runtime, tags, task
from headrace.states import Failed


class Boom(Exception):
    pass


@task
async def abad() -> None:
    raise Boom("boom")


@task
async def aok(x: object = None) -> object:
    return x


def test_allow_failure_in_an_async_flow() -> None:
    @flow
    async def f() -> tuple[object, str]:
        failed = await abad.submit()
        given = await aok.submit(allow_failure(failed))
        waited = await aok.submit(1, wait_for=[allow_failure(failed)])
        return await given.result(), (await waited.wait()).name

    value, name = asyncio.run(f())
    assert isinstance(value, Boom) and name == "Completed"


def test_names_tags_and_kwargs_mapping_in_an_async_flow() -> None:
    @task(task_run_name="named-{x}")
    async def named(x: int) -> tuple[str, list[str]]:
        return str(runtime.task_run.name), runtime.task_run.tags

    @task
    async def with_kwargs(x: int, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        return x, kwargs

    @flow
    async def f() -> tuple[object, list[object], list[str]]:
        with tags("t1"):
            first = await named(4)
        mapped = await with_kwargs.map([1, 2], z=[3, 4])
        states = await aok.map([1, 2], return_state=True)
        return first, [await m.result() for m in mapped], [s.name for s in states]

    first, mapped, names = asyncio.run(f())
    assert first == ("named-4", ["t1"])
    assert mapped == [(1, {"z": 3}), (2, {"z": 4})]
    assert names == ["Completed", "Completed"]


def test_states_returned_in_an_async_flow() -> None:
    @task
    async def chooses() -> object:
        return Failed("async chose")

    @flow
    async def f() -> object:
        state = await chooses(return_state=True)
        assert (state.name, state.message) == ("Failed", "async chose")
        return [await aok.submit(1), await abad.submit()]

    state = asyncio.run(f(return_state=True))
    assert state.is_failed() and state.message == "1/2 states failed."


def test_sync_generator_task_and_quiet_prints_in_an_async_flow(
    capsys: pytest.CaptureFixture[str],
) -> None:
    @task
    def count_to(n: int) -> Any:
        yield from range(n)

    @task(log_prints=False)
    async def quiet() -> None:
        print("ASYNC-QUIET")

    @flow(log_prints=True)
    async def f() -> object:
        await quiet()
        return count_to(2)

    assert asyncio.run(f()) == [0, 1]
    assert "ASYNC-QUIET" in capsys.readouterr().out


def test_async_subflow_state_decides_its_sync_parent() -> None:
    @flow
    async def child() -> object:
        return [await aok.submit(1), await abad.submit()]

    @flow
    def parent() -> object:
        return child(return_state=True)

    assert parent(return_state=True).message == "1/1 states failed."
