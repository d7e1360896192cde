"""Task and flow retries: attempt counts, delays (a number or a list), final states."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from headrace import flow, runtime, task
from headrace.tasks import exponential_backoff


class Flaky(Exception):
    pass


def make_flaky(failures: int, **options: object):
    calls: list[float] = []

    @task(**options)
    def flaky() -> int:
        calls.append(time.monotonic())
        if len(calls) <= failures:
            raise Flaky(f"attempt {len(calls)}")
        return len(calls)

    return flaky, calls


@pytest.mark.parametrize("how", ["call", "submit"])
def test_task_retries_until_it_succeeds(how: str, load_record) -> None:
    flaky, _ = make_flaky(2, retries=2)

    @flow
    def f() -> int:
        return flaky() if how == "call" else flaky.submit().result()

    assert f() == 3
    (run,) = load_record().task_runs.values()
    assert run["state"]["name"] == "Completed"
    assert run["attempt"] == 3


def test_task_fails_when_retries_run_out() -> None:
    flaky, calls = make_flaky(5, retries=1)

    @flow
    def f() -> None:
        flaky.submit()

    with pytest.raises(Flaky, match="attempt 2"):
        f()
    assert len(calls) == 2


def test_retry_delay_seconds_waits_between_attempts() -> None:
    flaky, calls = make_flaky(1, retries=1, retry_delay_seconds=0.3)

    @flow
    def f() -> int:
        return flaky.submit().result()

    assert f() == 2
    assert calls[1] - calls[0] >= 0.3


@pytest.mark.parametrize(
    ("delays", "gaps_at_least"),
    [
        ([0.1, 0.3], [0.1, 0.3, 0.3]),  # a list in order, then its last delay repeats
        # Prefect's `from prefect.tasks import exponential_backoff`, called with the retries.
        (exponential_backoff(0.1), [0.1, 0.2, 0.4]),
    ],
    ids=["list", "exponential_backoff"],
)
def test_retry_delay_seconds_are_waited_in_order(
    delays: object, gaps_at_least: list[float]
) -> None:
    flaky, calls = make_flaky(3, retries=3, retry_delay_seconds=delays)

    @flow
    def f() -> int:
        return flaky()

    assert f() == 4
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert all(gap >= least for gap, least in zip(gaps, gaps_at_least, strict=True)), gaps


def test_async_task_retries() -> None:
    attempts = []

    @task(retries=2, retry_delay_seconds=[0.05])
    async def flaky() -> int:
        attempts.append(runtime.task_run.run_count)
        await asyncio.sleep(0)
        if len(attempts) < 3:
            raise Flaky("again")
        return len(attempts)

    @flow
    async def f() -> list[int]:
        return [await flaky(), await (await flaky.submit()).result()]

    assert asyncio.run(f()) == [3, 4]  # the second run fails once more, then succeeds
    assert attempts[:3] == [1, 2, 3]


def test_retried_task_shows_attempt_in_runtime() -> None:
    seen = []

    @task(retries=1)
    def flaky() -> int:
        seen.append(runtime.task_run.run_count)
        if len(seen) == 1:
            raise Flaky("once")
        return 0

    @flow
    def f() -> int:
        return flaky.submit().result()

    f()
    assert seen == [1, 2]


def test_flow_retries_rerun_the_body() -> None:
    attempts = []

    @flow(retries=2, retry_delay_seconds=0.05)
    def f() -> int:
        attempts.append(1)
        if len(attempts) < 3:
            raise Flaky("flow attempt")
        return len(attempts)

    assert f() == 3


def test_flow_retry_is_judged_on_its_own_attempt_not_earlier_ones(load_record) -> None:
    # The first attempt's failed task must not fail the retry that succeeded.
    flaky, calls = make_flaky(1)

    @flow(retries=1)
    def f() -> None:
        flaky.submit()

    state = f(return_state=True)
    assert len(calls) == 2
    assert state.is_completed(), state
    assert load_record().root["state"]["name"] == "Completed"


def test_flow_fails_after_its_retries() -> None:
    attempts = []

    @flow(retries=1)
    async def f() -> None:
        attempts.append(1)
        raise Flaky("always")

    with pytest.raises(Flaky, match="always"):
        asyncio.run(f())
    assert len(attempts) == 2


def test_flow_retry_delay_seconds_list() -> None:
    starts: list[float] = []

    @flow(retries=2, retry_delay_seconds=[0.1, 0.3])
    def f() -> int:
        starts.append(time.monotonic())
        if len(starts) < 3:
            raise Flaky("again")
        return len(starts)

    assert f() == 3
    assert starts[1] - starts[0] >= 0.1
    assert starts[2] - starts[1] >= 0.3


def test_retry_jitter_factor_spreads_delays_within_its_bounds() -> None:
    """Prefect 2's bound: at most delay * (1 + factor); Headrace draws evenly from
    delay * (1 +- factor), so the gaps vary and none is under half the delay here."""
    starts: list[float] = []

    @task(retries=10, retry_delay_seconds=0.1, retry_jitter_factor=0.5)
    def flaky() -> None:
        starts.append(time.monotonic())
        raise ValueError("again")

    @flow
    def f() -> None:
        flaky(return_state=True)

    f(return_state=True)
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert len(gaps) == 10
    assert min(gaps) >= 0.045
    assert max(gaps) <= 0.25  # 0.15 and scheduling slack on a busy machine
    assert max(gaps) - min(gaps) > 0.01


def test_negative_retry_jitter_factor_is_refused() -> None:
    with pytest.raises(ValueError, match="retry_jitter_factor"):
        task(retry_jitter_factor=-1)(lambda: None)
