"""What `State.result()` gives for each outcome, on states from real runs."""

from __future__ import annotations

import datetime

import pytest

from headrace import (
    CancelledRun,
    RunTimedOut,
    StateType,
    UpstreamTaskError,
    flow,
    task,
    task_input_hash,
)
from headrace.exceptions import MissingResult, UnfinishedRun
from headrace.states import Cancelled, NotReady, Pending, State


class Boom(Exception):
    pass


@task
def double(x: int) -> int:
    return 2 * x


@task
def explode(x: int) -> int:
    raise Boom(f"bad {x}")


def run_for_state(call) -> State:
    """Run `call` in a flow and hand back the state it returned.

    (A flow that returns a state takes that state as its own, so it is passed out aside.)
    """
    box: list[State] = []

    @flow
    def f() -> None:
        box.append(call())

    f(return_state=True)
    return box[0]


def test_completed_state_gives_the_return_value() -> None:
    state = run_for_state(lambda: double(21, return_state=True))
    assert state.type is StateType.COMPLETED
    assert state.name == "Completed"
    assert state.is_completed() and state.is_final()
    assert state.result() == 42


def test_cached_state_is_completed_and_loads_its_result() -> None:
    cached = task(cache_key_fn=task_input_hash, cache_expiration=datetime.timedelta(hours=1))(
        lambda x: x + 1
    )

    first = run_for_state(lambda: cached(1, return_state=True))
    second = run_for_state(lambda: cached(1, return_state=True))
    assert first.name == "Completed"
    assert second.name == "Cached"
    assert second.type is StateType.COMPLETED and second.is_completed()
    assert second.result() == 2


def test_failed_state_raises_the_original_exception() -> None:
    state = run_for_state(lambda: explode(1, return_state=True))
    assert state.is_failed() and state.name == "Failed"
    assert "Boom: bad 1" in state.message
    with pytest.raises(Boom, match="bad 1"):
        state.result()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, Boom)


def test_timed_out_state_is_failed_and_raises_run_timed_out() -> None:
    @task(timeout_seconds=0.2)
    async def slow() -> None:
        import asyncio

        await asyncio.sleep(30)

    state = run_for_state(lambda: slow(return_state=True))
    assert state.name == "TimedOut"
    assert state.is_failed()
    with pytest.raises(RunTimedOut):
        state.result()
    assert isinstance(state.result(raise_on_failure=False), TimeoutError)


def test_not_ready_state_raises_upstream_task_error() -> None:
    state = run_for_state(lambda: double.submit(explode.submit(1), return_state=True))
    assert state.name == "NotReady"
    assert state.type is StateType.PENDING
    assert "explode-0" in state.message
    with pytest.raises(UpstreamTaskError):
        state.result()


def test_cancelled_state_raises_cancelled_run() -> None:
    state = Cancelled("stopped")
    assert state.is_cancelled() and state.is_final()
    with pytest.raises(CancelledRun, match="stopped"):
        state.result()


def test_a_state_that_is_not_final_has_no_result() -> None:
    with pytest.raises(UnfinishedRun):
        Pending().result()
    assert not NotReady().is_final()


def test_completed_state_without_data_or_uri_says_how_to_keep_results() -> None:
    state = State(StateType.COMPLETED, "Completed")
    with pytest.raises(MissingResult, match="persist_result"):
        state.result()


def test_state_round_trips_through_its_record_form() -> None:
    @task(persist_result=True)
    def value() -> dict[str, int]:
        return {"a": 1}

    state = run_for_state(lambda: value(return_state=True))
    again = State.from_dict(state.to_dict())
    assert again.name == state.name and again.type is state.type
    assert again.result_uri == state.result_uri is not None
    assert again.result() == {"a": 1}  # loaded from where it was persisted
