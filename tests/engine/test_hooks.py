"""State hooks: `on_completion`/`on_failure` on tasks, those and `on_cancellation`/`on_crashed`
on flows.

Mirrors Prefect 2.14.21 as observed with the same flows: hooks are called by keyword (task=,
task_run=, state= / flow=, flow_run=, state=), once, for the final state only (a task with
retries=1 that failed twice called on_failure once), a hook that raises is logged and the next
one still runs, the run's state is unchanged, and a KeyboardInterrupt in a flow calls
on_crashed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from headrace import flow, task
from headrace.exceptions import NotSupported

Calls = list[tuple[str, list[str], str]]


def recorder(calls: Calls, name: str) -> Callable[..., None]:
    def hook(**kwargs: Any) -> None:
        calls.append((name, sorted(kwargs), kwargs["state"].name))

    return hook


def test_task_and_flow_hooks_run_once_for_the_final_state() -> None:
    calls: Calls = []
    attempts: list[int] = []

    def broken(**kwargs: Any) -> None:
        calls.append(("broken", [], ""))
        raise RuntimeError("hook failed")

    @task(
        retries=1,
        on_failure=[recorder(calls, "t_fail")],
        on_completion=[recorder(calls, "t_done")],
    )
    def flaky() -> None:
        attempts.append(1)
        raise ValueError("x")

    @task(on_completion=[broken, recorder(calls, "t_done2")])
    def fine() -> int:
        return 1

    @flow(on_completion=[recorder(calls, "f_done")], on_failure=[recorder(calls, "f_fail")])
    def f() -> int:
        flaky(return_state=True)
        return fine.submit().result()

    state = f(return_state=True)
    assert state.is_completed() and len(attempts) == 2
    assert calls == [
        ("t_fail", ["state", "task", "task_run"], "Failed"),
        ("broken", [], ""),
        ("t_done2", ["state", "task", "task_run"], "Completed"),
        ("f_done", ["flow", "flow_run", "state"], "Completed"),
    ]


def test_flow_on_failure_runs_after_the_last_retry_only() -> None:
    calls: Calls = []

    @flow(on_failure=[recorder(calls, "f_fail")], retries=1)
    def g() -> None:
        raise ValueError("y")

    g(return_state=True)
    assert calls == [("f_fail", ["flow", "flow_run", "state"], "Failed")]


def test_flow_on_crashed_runs_for_a_keyboard_interrupt() -> None:
    calls: Calls = []

    @flow(on_cancellation=[recorder(calls, "f_cancel")], on_crashed=[recorder(calls, "f_crash")])
    def h() -> None:
        raise KeyboardInterrupt()

    with pytest.raises(KeyboardInterrupt):
        h()
    assert calls == [("f_crash", ["flow", "flow_run", "state"], "Crashed")]


def test_async_task_hooks() -> None:
    calls: Calls = []

    @task(on_completion=[recorder(calls, "a_done")])
    async def adone() -> int:
        return 1

    @flow
    async def af() -> list[int]:
        return [await adone(), await (await adone.submit()).result()]

    assert asyncio.run(af()) == [1, 1]
    assert calls == [("a_done", ["state", "task", "task_run"], "Completed")] * 2


def test_a_submitted_run_that_times_out_calls_on_failure_before_its_future_ends() -> None:
    calls: Calls = []

    def slow_hook(**kwargs: Any) -> None:
        time.sleep(0.2)
        recorder(calls, "timed_out")(**kwargs)

    @task(timeout_seconds=0.2, on_failure=[slow_hook])
    def stuck() -> None:
        time.sleep(5)

    @flow
    def f() -> str:
        state = stuck.submit().wait()
        assert calls, "the future ended before its hook ran"
        return str(state.name)

    assert f() == "TimedOut"
    assert calls == [("timed_out", ["state", "task", "task_run"], "TimedOut")]


def test_hooks_must_be_a_list_of_plain_functions() -> None:
    async def later(**kwargs: Any) -> None:
        pass

    with pytest.raises(TypeError, match="takes a list of hooks"):
        task(on_failure=print)(lambda: None)
    with pytest.raises(NotSupported, match="calls hooks synchronously"):
        flow(on_completion=[later])(lambda: None)
