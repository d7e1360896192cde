"""How task calls enter the engine: direct calls, `submit` and `map`.

A direct call runs inline when it can (a sync task in a sync flow's thread, an async task in
an async flow's loop): no hop, and on the main thread its timeout is a real signal. Anything
else goes through the orchestrator and the caller waits on the future.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from headrace.engine.context import given, hands_back_awaitables
from headrace.engine.inputs import DEEPER, allowed_to_fail, collect_futures, top_level_futures
from headrace.engine.orchestrator import get_engine
from headrace.engine.runs import FlowRun
from headrace.engine.task_run import TaskRun
from headrace.futures import HeadraceFuture
from headrace.states import Pending, State

if TYPE_CHECKING:
    from headrace.tasks import Task


class _WaitFor:
    """The futures of a `wait_for=`, and the annotations (`allow_failure`) among them."""

    __slots__ = ("annotated", "futures")

    def __init__(self, wait_for: Any) -> None:
        self.annotated: list[Any] = []
        if wait_for is None:
            self.futures: list[HeadraceFuture[Any]] = []
        elif isinstance(wait_for, list | tuple | set):
            self.futures = collect_futures(wait_for, self.annotated)
        else:
            self.futures = collect_futures([wait_for], self.annotated)


_NO_WAIT = _WaitFor(None)


def _wait_for(wait_for: Any) -> _WaitFor:
    return _NO_WAIT if wait_for is None else _WaitFor(wait_for)


_NONE_ANNOTATED: list[Any] = []  # never appended to: shared


def _new_task_run(
    task: Task[Any, Any],
    flow_run: FlowRun,
    parameters: dict[str, Any],
    wait_for: _WaitFor,
    map_index: int | None = None,
    pending: State[Any] | None = None,
) -> TaskRun:
    upstream = top_level_futures(parameters.values())
    annotated: list[Any] = _NONE_ANNOTATED
    walked = False
    if upstream is DEEPER:  # containers, records or annotations among them
        walked = True
        annotated = []
        upstream = collect_futures(parameters.values(), annotated)
    if wait_for.futures:
        upstream = [*(upstream or ()), *wait_for.futures]
    # No upstream: the empty tuple, which the garbage collector does not track (an empty list
    # it would, in every full collection, for each of 100,000 finished runs).
    task_run = TaskRun(task, flow_run, parameters, upstream or (), task.name, map_index, pending)
    if annotated or wait_for.annotated or (walked and not upstream):
        # Not None: the run's inputs are walked before it runs (made its own, as in Prefect
        # 2, which inputs with futures get anyway), and these futures inside
        # `allow_failure(...)` may end in any state.
        task_run.allowed = allowed_to_fail(annotated + wait_for.annotated)
    return task_run


def _with_future(task_run: TaskRun) -> HeadraceFuture[Any]:
    """Hand the run out as a future: its flow waits for it."""
    task_run.submitted = True
    task_run.flow_run.futures.append(task_run)
    return task_run


def _outcome(state: State[Any], return_state: bool) -> Any:
    return state if return_state else state.result()


def call_task(
    task: Task[Any, Any],
    flow_run: FlowRun,
    parameters: dict[str, Any],
    wait_for: Any,
    return_state: bool,
) -> Any:
    task_run = _new_task_run(task, flow_run, parameters, _wait_for(wait_for))
    if hands_back_awaitables(task, flow_run):
        return _call_in_loop(task_run, return_state)
    if task.isasync or (flow_run.is_async and asyncio._get_running_loop() is not None):
        # An async task outside its loop runs on the engine's; a sync task called in an event
        # loop runs on a worker thread (code that starts its own loop still works) while the
        # caller blocks, as a sync call does in Prefect 2.
        future = _with_future(task_run)
        get_engine().submit(task_run, direct=True)
        state = future._wait_sync(None)
        assert state is not None
        return _outcome(state, return_state)
    return _outcome(task_run.run_inline(), return_state)


async def _call_in_loop(task_run: TaskRun, return_state: bool) -> Any:
    return _outcome(await task_run.run_inline_async(), return_state)


def _start(task_run: TaskRun) -> HeadraceFuture[Any]:
    future = _with_future(task_run)
    flow_run = task_run.flow_run
    if flow_run.task_runner.concurrent:
        get_engine().submit(task_run)
    elif task_run.task is not None and task_run.task.isasync:
        get_engine().submit(task_run)
        future._wait_sync(None)
    else:
        future._finish(task_run.run_inline())
    return future


def _handed_back(
    task: Task[Any, Any],
    flow_run: FlowRun,
    value: Any,
    futures: list[HeadraceFuture[Any]],
    return_state: bool,
) -> Any:
    """What `submit`/`map` return: futures, or their final states with `return_state=True`."""
    if hands_back_awaitables(task, flow_run):
        if not return_state:
            return given(value)

        async def states() -> Any:
            waited = [await future._wait_async(None) for future in futures]
            return waited if isinstance(value, list) else waited[0]

        return states()
    if return_state:
        waited = [future._wait_sync(None) for future in futures]
        return waited if isinstance(value, list) else waited[0]
    return value


def submit_task(
    task: Task[Any, Any],
    flow_run: FlowRun,
    parameters: dict[str, Any],
    wait_for: Any,
    return_state: bool,
) -> Any:
    task_run = _new_task_run(
        task, flow_run, parameters, _NO_WAIT if wait_for is None else _WaitFor(wait_for)
    )
    if return_state or task.isasync or not flow_run.task_runner.concurrent:
        started = _start(task_run)
        return _handed_back(task, flow_run, started, [started], return_state)
    # Most submits: a sync task's run to the engine, handed back as its future; what
    # `_start`, `_with_future` and `_handed_back` do here, without their calls.
    task_run.submitted = True
    flow_run.futures.append(task_run)
    get_engine().submit(task_run)
    return task_run


def map_task(
    task: Task[Any, Any],
    flow_run: FlowRun,
    runs: list[dict[str, Any]],
    wait_for: Any,
    return_state: bool,
) -> Any:
    extra = _wait_for(wait_for)
    futures: list[HeadraceFuture[Any]] = []
    if flow_run.task_runner.concurrent:
        task_runs = []
        pending = Pending()
        for index, parameters in enumerate(runs):
            task_run = _new_task_run(task, flow_run, parameters, extra, index, pending)
            futures.append(_with_future(task_run))
            task_runs.append(task_run)
        get_engine().submit_many(task_runs)
    else:
        for index, parameters in enumerate(runs):
            futures.append(_start(_new_task_run(task, flow_run, parameters, extra, index)))
    return _handed_back(task, flow_run, futures, futures, return_state)
