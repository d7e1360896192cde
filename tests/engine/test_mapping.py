"""`Task.map`: one run per element, `unmapped`, length checks, futures as mapped input."""

from __future__ import annotations

import asyncio

import pytest
from engine_helpers import task_runs_named

from headrace import MappingLengthMismatch, flow, task, unmapped
from headrace.exceptions import MappingMissingIterable


@task
def scale(x: int, factor: int) -> int:
    return x * factor


def test_map_runs_once_per_element_in_order(load_record) -> None:
    @flow
    def f() -> list[int]:
        futures = scale.map([1, 2, 3], factor=unmapped(10))
        return [future.result() for future in futures]

    assert f() == [10, 20, 30]
    runs = task_runs_named(load_record(), "scale")
    assert [run["map_index"] for run in runs] == [0, 1, 2]
    assert all(run["state"]["name"] == "Completed" for run in runs)


def test_map_zips_several_iterables_and_passes_scalars_and_strings_whole() -> None:
    """A dict is mapped over its keys as in Prefect 2.14, so it goes whole only unmapped."""

    @task
    def join(a: int, b: str, sep: str, opts: dict[str, int]) -> str:
        return f"{a}{sep}{b}{opts['n']}"

    @flow
    def f() -> list[str]:
        return [fut.result() for fut in join.map((1, 2), ["x", "y"], "-", unmapped({"n": 0}))]

    assert f() == ["1-x0", "2-y0"]


def test_unmapped_list_goes_to_every_run_whole() -> None:
    @task
    def pick(i: int, items: list[str]) -> str:
        return items[i]

    @flow
    def f() -> list[str]:
        return [fut.result() for fut in pick.map(range(3), unmapped(["a", "b", "c"]))]

    assert f() == ["a", "b", "c"]


def test_map_length_mismatch_names_the_arguments() -> None:
    @flow
    def f() -> None:
        scale.map([1, 2, 3], [1, 2])

    with pytest.raises(MappingLengthMismatch, match=r"x=3, factor=2"):
        f()


def test_map_without_any_iterable_is_prefects_missing_iterable_error() -> None:
    @flow
    def f() -> None:
        scale.map(1, 2)

    with pytest.raises(MappingMissingIterable, match="no iterable") as caught:
        f()
    assert not isinstance(caught.value, MappingLengthMismatch)  # siblings, as in Prefect 2


def test_map_over_futures_and_a_future_of_a_list() -> None:
    @task
    def numbers() -> list[int]:
        return [1, 2, 3]

    @flow
    def f() -> tuple[list[int], list[int]]:
        over_future = scale.map(numbers.submit(), unmapped(2))
        over_futures = scale.map(over_future, unmapped(10))
        return [x.result() for x in over_future], [x.result() for x in over_futures]

    assert f() == ([2, 4, 6], [20, 40, 60])


def test_map_with_return_state_and_wait_for() -> None:
    order = []

    @task
    def first() -> None:
        order.append("first")

    @task
    def each(i: int) -> int:
        order.append(i)
        return i

    @flow
    def f() -> list[str]:
        gate = first.submit()
        states = each.map([1, 2], wait_for=[gate], return_state=True)
        return [state.name for state in states]

    assert f() == ["Completed", "Completed"]
    assert order[0] == "first"


def test_map_in_an_async_flow() -> None:
    @task
    async def aplus(x: int) -> int:
        await asyncio.sleep(0)
        return x + 1

    @task
    def numbers() -> list[int]:
        return [1, 2, 3]

    @flow
    async def f() -> list[int]:
        futures = await aplus.map([1, 2, 3])
        again = scale.map(futures, unmapped(2))  # a sync task: plain futures (Prefect 2.14)
        return [fut.result() for fut in again]

    assert asyncio.run(f()) == [4, 6, 8]


def test_map_over_a_future_in_an_async_flow() -> None:
    @task
    def numbers() -> list[int]:
        return [1, 2, 3]

    @flow
    async def f() -> list[int]:
        listed = numbers.submit()
        futures = scale.map(listed, unmapped(3))
        return [fut.result() for fut in futures]

    assert asyncio.run(f()) == [3, 6, 9]


def test_map_with_sequential_runner() -> None:
    from headrace import SequentialTaskRunner

    @flow(task_runner=SequentialTaskRunner())
    def f() -> list[int]:
        return [fut.result() for fut in scale.map([1, 2], unmapped(5))]

    assert f() == [5, 10]
