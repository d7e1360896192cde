"""`log_prints=False` on a task in a flow that logs prints; generator tasks.

Mirrors Prefect 2.14.21 as observed: the quiet task's print reached stdout while the other
task's went to the run log; a generator task called directly returned [0, 1, 2] and its
future's result() [0, 1]. Prefect 2.14 crashed a generator task that raised mid-way instead of
retrying it; Headrace retries and times out the generator's body as the issue asks (listed in
docs/prefect-compatibility.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from headrace import flow, task


def test_log_prints_false_on_a_task_prints_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    @task(log_prints=False)
    def quiet() -> None:
        print("QUIET-PRINT")

    @task
    def loud() -> None:
        print("LOUD-PRINT")

    @flow(log_prints=True)
    def f() -> None:
        quiet()
        loud()
        quiet.submit().result()

    f()
    out = capsys.readouterr().out
    assert out.count("QUIET-PRINT") == 2
    assert "LOUD-PRINT" not in out


def test_log_prints_false_on_a_subflow_prints_to_stdout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    @flow(log_prints=False)
    def child() -> None:
        print("CHILD-PRINT")

    @flow(log_prints=True)
    def parent() -> None:
        child()

    parent()
    assert "CHILD-PRINT" in capsys.readouterr().out


@task
def count_to(n: int) -> Iterator[int]:
    yield from range(n)


def test_generator_task_returns_its_items_as_a_list() -> None:
    @flow
    def f() -> tuple[object, object]:
        return count_to(3), count_to.submit(2).result()

    assert f() == ([0, 1, 2], [0, 1])


def test_retries_cover_the_generator_body() -> None:
    attempts: list[int] = []

    @task(retries=1)
    def flaky() -> Iterator[int]:
        attempts.append(1)
        yield 1
        if len(attempts) == 1:
            raise ValueError("fail mid-generator")
        yield 2

    @flow
    def f() -> object:
        return flaky()

    assert f() == [1, 2]
    assert len(attempts) == 2


def test_timeouts_cover_the_generator_body() -> None:
    @task(timeout_seconds=0.3)
    def slow() -> Iterator[int]:
        yield 1
        time.sleep(3)
        yield 2

    @flow
    def f() -> tuple[str, str]:
        direct = slow(return_state=True)
        submitted = slow.submit(return_state=True)
        return direct.name, submitted.name

    started = time.monotonic()
    assert f() == ("TimedOut", "TimedOut")
    assert time.monotonic() - started < 2.5


def test_async_generator_tasks_are_refused_by_name() -> None:
    async def agen() -> object:
        yield 1

    with pytest.raises(TypeError, match="async generator"):
        task(agen)
