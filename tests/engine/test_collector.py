"""While a top-level flow runs, full garbage collections wait in proportion to its run tree;
small flows keep Python's thresholds, and the thresholds are restored when the flow ends."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from headrace import flow, task
from headrace.engine.collector import OBJECTS_PER_RUN


@task
def noop(x: int) -> int:
    return x


@pytest.fixture(autouse=True)
def python_thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_a_big_flow_raises_the_full_collection_threshold_and_gives_it_back() -> None:
    seen: list[int] = []

    @flow(persist_result=False)
    def big(n: int) -> int:
        futures = noop.map(list(range(n)))
        total = sum(future.result() for future in futures)
        gc.collect(0)  # the collector's thresholds are looked at after each collection
        seen.append(gc.get_threshold()[2])
        return total

    assert big(20_000) == sum(range(20_000))
    # 20,000 runs of about 3 objects, twice over, in middle passes of 700 * 11 allocations
    assert seen[0] >= 2 * OBJECTS_PER_RUN * 20_000 // (700 * 11) > 10
    assert gc.get_threshold() == (700, 10, 10)


def test_a_small_flow_keeps_pythons_thresholds() -> None:
    seen: list[tuple[int, int, int]] = []

    @flow(persist_result=False)
    def small() -> int:
        total = sum(future.result() for future in noop.map([1, 2, 3]))
        gc.collect(0)
        seen.append(gc.get_threshold())
        return total

    assert small() == 6
    assert seen == [(700, 10, 10)]
    assert gc.get_threshold() == (700, 10, 10)


def test_a_factor_of_0_leaves_the_collector_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADRACE_GC_TREE_FACTOR", "0")
    callbacks = list(gc.callbacks)
    seen: list[int] = []

    @flow(persist_result=False)
    def big(n: int) -> int:
        total = sum(future.result() for future in noop.map(list(range(n))))
        gc.collect(0)
        seen.append(gc.get_threshold()[2])
        assert gc.callbacks == callbacks
        return total

    big(5_000)
    assert seen == [10]


def test_a_threshold_the_program_sets_during_the_flow_is_kept() -> None:
    @flow(persist_result=False)
    def sets_its_own(n: int) -> int:
        total = sum(future.result() for future in noop.map(list(range(n))))
        gc.set_threshold(700, 10, 55)
        noop.map(list(range(n)))
        gc.collect(0)
        assert gc.get_threshold() == (700, 10, 55)
        return total

    sets_its_own(20_000)
    assert gc.get_threshold() == (700, 10, 55)
