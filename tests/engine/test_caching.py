"""cache_key_fn and cache_expiration: hits are "Cached" and skip the function; expiry re-runs."""

from __future__ import annotations

import datetime
import time

from headrace import flow, task, task_input_hash


def counting_task(**options: object):
    calls: list[int] = []

    @task(cache_key_fn=task_input_hash, **options)
    def work(x: int) -> dict[str, int]:
        calls.append(x)
        return {"x": x, "call": len(calls)}

    return work, calls


def test_cache_hit_is_cached_and_does_not_run_again() -> None:
    work, calls = counting_task(cache_expiration=datetime.timedelta(hours=1))
    states = []

    @flow
    def f() -> None:
        states.append(work(1, return_state=True))
        states.append(work.submit(1, return_state=True))
        states.append(work(2, return_state=True))

    f()
    f()  # a later run of the flow hits the cache too
    assert calls == [1, 2]
    assert [s.name for s in states] == ["Completed", "Cached", "Completed"] + ["Cached"] * 3
    assert [s.result() for s in states] == [{"x": 1, "call": 1}] * 2 + [{"x": 2, "call": 2}] + [
        {"x": 1, "call": 1},
        {"x": 1, "call": 1},
        {"x": 2, "call": 2},
    ]


def test_cache_expiration_reruns_after_expiry() -> None:
    work, calls = counting_task(cache_expiration=datetime.timedelta(seconds=0.5))

    @flow
    def f() -> list[str]:
        first = work(1, return_state=True).name
        second = work(1, return_state=True).name
        time.sleep(0.7)
        third = work(1, return_state=True).name
        return [first, second, third]

    assert f() == ["Completed", "Cached", "Completed"]
    assert calls == [1, 1]


def test_cache_key_fn_returning_none_never_caches() -> None:
    calls = []

    @task(cache_key_fn=lambda context, args: None)
    def work() -> int:
        calls.append(1)
        return len(calls)

    @flow
    def f() -> list[int]:
        return [work(), work()]

    assert f() == [1, 2]


def test_custom_cache_key_and_refresh_cache() -> None:
    calls = []

    @task(cache_key_fn=lambda context, args: f"key-{args['x'] % 2}")
    def parity(x: int) -> int:
        calls.append(x)
        return x

    @flow
    def f() -> list[int]:
        return [parity(1), parity(3), parity(2), parity.with_options(refresh_cache=True)(5)]

    assert f() == [1, 1, 2, 5]
    assert calls == [1, 2, 5]

    @flow
    def g() -> int:
        return parity(7)

    assert g() == 5  # the refreshed value replaced the cached one


def test_cached_result_feeds_downstream_tasks() -> None:
    work, calls = counting_task()

    @task
    def plus_one(value: dict[str, int]) -> int:
        return value["x"] + 1

    @flow
    def f() -> int:
        return plus_one.submit(work.submit(41)).result()

    assert f() == 42
    assert f() == 42
    assert calls == [41]


def test_cache_in_an_async_task() -> None:
    import asyncio

    calls = []

    @task(cache_key_fn=task_input_hash)
    async def work(x: int) -> int:
        calls.append(x)
        return x * 2

    @flow
    async def f() -> list[str]:
        first = await work(3, return_state=True)
        second = await work.submit(3, return_state=True)
        return [first.name, second.name, str(second.result())]

    assert asyncio.run(f()) == ["Completed", "Cached", "6"]
    assert calls == [3]
