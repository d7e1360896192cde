"""What a flow returns decides its state; a task that returns a state takes it.

Every expectation mirrors Prefect 2.14.21 as observed running the same flows in ephemeral
mode, messages included ("2/3 states failed.", "All states completed.", ...).
"""

from __future__ import annotations

import asyncio

import pytest

from headrace import flow, task
from headrace.exceptions import FailedRun
from headrace.states import Cancelled, Completed, Failed, Pending, State


class Boom(Exception):
    pass


@task
def ok(x: int) -> int:
    return x


@task
def bad(x: int) -> int:
    raise Boom(f"bad {x}")


def test_returned_tuple_of_futures_with_failures_fails_the_flow() -> None:
    @flow
    def f() -> object:
        return ok.submit(1), bad.submit(2), bad.submit(3)

    state = f(return_state=True)
    assert state.is_failed() and state.message == "2/3 states failed."
    with pytest.raises(Boom, match="bad 2"):
        state.result()


def test_returned_list_of_states_with_a_failure_fails_the_flow() -> None:
    @flow
    def f() -> object:
        return [ok(1, return_state=True), bad(2, return_state=True)]

    state = f(return_state=True)
    assert state.is_failed() and state.message == "1/2 states failed."


def test_returned_list_of_completed_futures_completes_with_their_states() -> None:
    @flow
    def f() -> object:
        return [ok.submit(1), ok.submit(2)]

    state = f(return_state=True)
    assert state.is_completed() and state.message == "All states completed."
    assert [item.result() for item in state.result()] == [1, 2]


def test_a_returned_dict_or_mixed_list_does_not_decide_the_state() -> None:
    """Prefect 2.14 judges only a top-level list, tuple or set made of states."""

    @flow
    def as_dict() -> object:
        return {"a": ok.submit(1), "b": bad.submit(2)}

    @flow
    def mixed() -> object:
        return [bad.submit(1), 5]

    state = as_dict(return_state=True)
    assert state.is_completed()
    assert state.result()["b"].is_failed()
    value = mixed()
    assert value[0].is_failed() and value[1] == 5


def test_returned_single_future_or_state() -> None:
    @flow
    def good_future() -> object:
        return ok.submit(5)

    @flow
    def bad_state() -> object:
        return bad(5, return_state=True)

    state = good_future(return_state=True)
    assert state.message == "All states completed."
    inner = state.result()
    assert isinstance(inner, State) and inner.result() == 5
    failed = bad_state(return_state=True)
    assert failed.is_failed() and failed.message == "1/1 states failed."
    with pytest.raises(Boom, match="bad 5"):
        failed.result()


def test_a_returned_not_ready_task_state_fails_the_flow() -> None:
    @flow
    def f() -> object:
        return ok.submit(2, wait_for=[bad.submit(1)])

    state = f(return_state=True)
    assert state.is_failed() and state.message == "1/1 states are not final."


def test_a_state_the_flow_makes_is_its_state() -> None:
    @flow
    def done() -> object:
        return Completed(7, message="mine")

    @flow
    def failed() -> object:
        return Failed("by hand")

    @flow
    def cancelled() -> object:
        return Cancelled("by hand")

    state = done(return_state=True)
    assert (state.name, state.message, state.result()) == ("Completed", "mine", 7)
    assert failed(return_state=True).message == "by hand"
    assert failed(return_state=True).is_failed()
    assert cancelled(return_state=True).is_cancelled()


def test_a_returned_pending_state_is_refused_by_name() -> None:
    """Prefect 2.14 aborts ("cannot transition to a PENDING state"); Headrace fails the flow
    naming the state, rather than leave it unfinished."""

    @flow
    def f() -> object:
        return Pending()

    state = f(return_state=True)
    assert state.is_failed() and "returned a Pending state" in state.message


def test_subflow_caller_gets_states_where_prefect_gives_them() -> None:
    @flow
    def child_future() -> object:
        return ok.submit(5)

    @flow
    def child_list() -> object:
        return [ok.submit(1), ok(2, return_state=True), 3]

    @flow
    def child_own_state() -> object:
        return Completed(7)

    @flow
    def parent() -> tuple[object, object, object]:
        return child_future(), child_list(), child_own_state()

    single, listed, own = parent()
    assert isinstance(single, State) and single.result() == 5
    assert isinstance(listed, list) and isinstance(listed[0], State) and listed[2] == 3
    assert own == 7


def test_task_returning_failed_fails_the_task_and_a_direct_call_raises() -> None:
    @task
    def chooses() -> object:
        return Failed("chose to fail")

    @flow
    def f() -> int:
        state = chooses(return_state=True)
        assert state.is_failed() and state.message == "chose to fail"
        with pytest.raises(FailedRun, match="chose to fail"):
            chooses()
        return 1

    assert f() == 1  # returns a value: Completed, as in Prefect 2.14


def test_task_returning_cancelled_cancels_it_and_the_flow() -> None:
    @task
    def chooses() -> object:
        return Cancelled("chose to cancel")

    @flow
    def called() -> None:
        state = chooses(return_state=True)
        assert state.is_cancelled() and state.message == "chose to cancel"

    @flow
    def submitted() -> None:
        chooses.submit()

    for f in (called, submitted):
        state = f(return_state=True)
        assert state.is_cancelled() and state.message == "1/1 states cancelled."


def test_failed_with_prefect_data_keyword_raises_that_error() -> None:
    """Prefect 2.14: message "by hand", result() raises Boom("inside")."""

    @flow
    def f() -> object:
        return Failed(message="by hand", data=Boom("inside"))

    state = f(return_state=True)
    assert state.message == "by hand"
    with pytest.raises(Boom, match="inside"):
        state.result()


def test_task_returning_completed_keeps_its_message() -> None:
    @task
    def chooses() -> object:
        return Completed(message="done by hand")

    @flow
    def f() -> None:
        state = chooses(return_state=True)
        assert (state.name, state.message, state.result()) == ("Completed", "done by hand", None)

    state = f(return_state=True)
    assert state.is_completed() and state.message == "All states completed."


def test_task_returning_failed_is_retried() -> None:
    attempts: list[int] = []

    @task(retries=1)
    def flaky() -> object:
        attempts.append(1)
        return Failed("again") if len(attempts) == 1 else Completed(3)

    @flow
    def f() -> object:
        return flaky()

    assert f() == 3 and len(attempts) == 2


def test_async_flow_returning_futures_is_judged_the_same() -> None:
    @task
    async def abad(x: int) -> int:
        raise Boom(str(x))

    @flow
    async def f() -> object:
        return [await abad.submit(1), ok.submit(2)]

    state = asyncio.run(f(return_state=True))
    assert state.is_failed() and state.message == "1/2 states failed."
