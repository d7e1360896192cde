"""Arguments Prefect 2 types as Optional take None, in both builds of the engine.

The image runs the task-run hot path compiled with mypyc, which checks argument types where
pure Python does not: an annotation narrower than Prefect's would fail in the cluster a flow
that ran locally. CI runs this directory against the compiled build too (scripts/test).
"""

from __future__ import annotations

from typing import Any

import pytest

from headrace import flow, task
from headrace.exceptions import FailedRun
from headrace.states import (
    AwaitingRetry,
    Cancelled,
    Completed,
    Crashed,
    Failed,
    Pending,
    Running,
    Scheduled,
    State,
    StateType,
    TimedOut,
)


@pytest.mark.parametrize(
    "factory",
    [Scheduled, AwaitingRetry, Pending, Running, Completed, Failed, TimedOut, Crashed, Cancelled],
)
def test_a_state_made_with_message_none_has_an_empty_message(factory: Any) -> None:
    state = factory(message=None)
    assert state.message == ""
    assert repr(state) == f"{state.name}()"


def test_a_flow_returning_failed_with_message_none_fails_with_the_default_error() -> None:
    @flow
    def gives_up() -> State[Any]:
        return Failed(message=None)

    state = gives_up(return_state=True)
    assert state.is_failed() and state.message == ""
    with pytest.raises(FailedRun, match="run failed"):
        state.result()
    assert State(StateType.COMPLETED, message=None, data=3).result() == 3


def test_retries_none_means_no_retries_for_tasks_and_flows() -> None:
    attempts: list[int] = []

    @task(retries=None, retry_delay_seconds=0)
    def flaky() -> int:
        attempts.append(1)
        raise ValueError("once is enough")

    @flow(retries=None)
    def runs_it() -> State[Any]:
        return flaky(return_state=True)

    assert runs_it(return_state=True).is_failed()
    assert len(attempts) == 1
    assert flaky.retries == 0 and runs_it.retries == 0


def test_refresh_cache_none_reads_the_cache() -> None:
    calls: list[int] = []

    @task(cache_key_fn=lambda _run, params: f"key-{params['x']}", refresh_cache=None)
    def cached(x: int) -> int:
        calls.append(x)
        return x * 10

    @flow
    def twice() -> tuple[int, int]:
        return cached(4), cached.submit(4).result()

    assert twice() == (40, 40)
    assert calls == [4]
