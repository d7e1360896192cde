"""One attempt of a task run, and the rules around attempts (readiness, retries, results).

These functions run wherever the attempt runs: a worker thread, the engine loop, or the
caller's own thread for a direct call. They never block on other runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextvars import Token
from typing import TYPE_CHECKING, Any

from headrace.engine.context import current_flow_run, current_task_run
from headrace.engine.inputs import resolve_parameters
from headrace.engine.interrupts import deadline
from headrace.engine.names import custom_name
from headrace.engine.remote import COMPLETED, TIMED_OUT, Outcome
from headrace.exceptions import TaskTimeout, WorkerLost
from headrace.logging import print_to_log
from headrace.results.store import ResultStore
from headrace.retries import jittered, nth_delay
from headrace.states import (
    AwaitingRetry,
    Cached,
    Completed,
    Crashed,
    Failed,
    NotReady,
    Retrying,
    Running,
    State,
    StateType,
    TimedOut,
    exception_message,
    stored_only,
)

if TYPE_CHECKING:
    from headrace.engine.runs import TaskRun
    from headrace.task_runners import RemoteExecutor

logger = logging.getLogger("headrace.task_runs")


def not_ready_state(task_run: TaskRun) -> State[Any] | None:
    """A NotReady state if an upstream run did not complete, else None."""
    allowed = task_run.allowed
    for future in task_run.upstream:
        state = future._state
        if allowed is not None and state is not None and id(future) in allowed:
            continue  # allow_failure(...): any final state will do
        if state is None or not state.is_completed():
            name = future.name
            shown = state.name if state is not None else "unfinished"
            return NotReady(f"upstream task run {name!r} did not complete (it is {shown})")
    return None


def prepare_inputs(task_run: TaskRun, remote: RemoteExecutor | None = None) -> State[Any] | None:
    """Once every upstream run is final: swap their results into the parameters.

    Returns the state the run ends in instead of running (NotReady, or Crashed if the
    results cannot be read), or None when it may run. A run going to a `remote` executor also
    keeps its inputs as sent there (upstream results as remote futures) in `task_run.remote`.
    """
    earlier = task_run.flow_run.earlier
    if earlier is not None:
        done = earlier.get(task_run.key)
        if done is not None and done is not task_run:
            return done.state  # completed in an earlier attempt of this flow run
    state = not_ready_state(task_run)
    if state is not None:
        return state
    if remote is not None:
        try:
            task_run.remote = remote.inputs(task_run.parameters)
        except Exception as error:
            return Crashed(f"resolving inputs failed: {error}", error)
    if not task_run.upstream and task_run.allowed is None:
        return None
    try:
        task_run.parameters = resolve_parameters(task_run.parameters)
    except Exception as error:
        return Crashed(f"resolving inputs failed: {error}", error)
    return None


def await_retry(task_run: TaskRun, state: State[Any]) -> float | None:
    """If `state` earns another attempt, mark the run AwaitingRetry and return the delay."""
    delay = retry_delay(task_run, state)
    if delay is not None:
        task_run.set_state(AwaitingRetry(f"retrying in {delay:g}s after: {state.message}"))
    return delay


def retry_delay(task_run: TaskRun, state: State[Any]) -> float | None:
    """Seconds to wait before another attempt, or None when the state is final."""
    task = task_run.task
    if task is None or task_run.attempt > task.retries:
        return None
    if not state.is_failed() and not (state.is_crashed() and isinstance(state.data, WorkerLost)):
        return None  # a run is retried when it failed, or when the worker it ran on was lost
    condition = task.retry_condition_fn
    if condition is not None and not condition(task=task, task_run=task_run, state=state):
        return None  # Prefect 2's retry_condition_fn said this failure is final
    return jittered(nth_delay(task.retry_delay_seconds, task_run.attempt), task.retry_jitter_factor)


def _begin(task_run: TaskRun) -> None:
    task_run.attempt += 1
    if task_run.attempt == 1 and task_run.task is not None and task_run.task.task_run_name:
        # Named once its inputs are resolved, in its own context, as in Prefect 2.
        task_run.name = custom_name(task_run.task.task_run_name, task_run.parameters)
    task_run.set_state(
        Running() if task_run.attempt == 1 else Retrying(f"attempt {task_run.attempt}")
    )


def _store(task_run: TaskRun) -> ResultStore:
    task = task_run.task
    assert task is not None
    return task.result_store() or task_run.flow_run.result_store


def _should_persist(task_run: TaskRun) -> bool:
    task = task_run.task
    assert task is not None
    if task.persist_result is not None:
        return task.persist_result
    if task.cache_key_fn is not None or not task.cache_result_in_memory:
        return True  # a cache, or a result kept only in storage: the flow's default cannot stop it
    if task_run.flow_run.persist_result is not None:
        return task_run.flow_run.persist_result
    return task_run.flow_run.flow.persist_tasks_default


def _cache_lookup(task_run: TaskRun, parameters: dict[str, Any]) -> State[Any] | None:
    task = task_run.task
    assert task is not None
    if task.cache_key_fn is None:
        return None
    key = task.cache_key_fn(task_run, parameters)
    task_run.cache_key = key
    if key is None or task.refresh_cache:
        return None
    uri = _store(task_run).cached(key)
    if uri is None:
        return None
    return Cached(message=f"cache hit for key {key!r}", result_uri=uri)


def _completed(task_run: TaskRun, value: Any) -> State[Any]:
    if not _should_persist(task_run):
        return Completed(value)
    task = task_run.task
    assert task is not None
    store = _store(task_run)
    if task_run.cache_key is not None:
        expires = None
        if task.cache_expiration is not None:
            expires = time.time() + task.cache_expiration.total_seconds()
        uri = store.write(value, store.cache_key_path(task_run.cache_key), expires)
    elif task.result_storage_key is not None:
        uri = store.write(value, _storage_key(task.result_storage_key, task_run))
    else:
        uri = store.write(value, store.result_key(task_run.flow_run.id, task_run.id))
    if not task.cache_result_in_memory:
        return stored_only(uri)
    return Completed(value, result_uri=uri)


def _storage_key(template: str, task_run: TaskRun) -> str:
    """A `result_storage_key` filled in as Prefect 2 does: `{parameters[x]}`, and the
    `flow_run` and `task_run` of `headrace.runtime` (`{flow_run.flow_name}`, ...)."""
    from headrace import runtime  # noqa: PLC0415 (only a key that names it pays its import)

    return template.format(
        parameters=task_run.parameters, flow_run=runtime.flow_run, task_run=runtime.task_run
    )


def _failed(task_run: TaskRun, error: Exception, trace: str = "") -> State[Any]:
    """`trace`: the traceback as text, for an error raised in another process (it lost its own
    traceback on the way back)."""
    if trace:
        logger.error(
            "Task run %r failed (attempt %d): %s\n%s",
            task_run.name,
            task_run.attempt,
            exception_message(error),
            trace.rstrip(),
            extra={"headrace_run": task_run},
        )
    else:
        logger.error(
            "Task run %r failed (attempt %d): %s",
            task_run.name,
            task_run.attempt,
            exception_message(error),
            exc_info=error,
            extra={"headrace_run": task_run},
        )
    return Failed(exception_message(error), error)


def _timed_out(task_run: TaskRun) -> State[Any]:
    seconds = task_run.task.timeout_seconds if task_run.task else None
    return TimedOut(f"task run exceeded its timeout of {seconds}s")


class _Attempt:
    """One attempt's bookkeeping: counts it, marks it running, and makes it the current run
    (for loggers, `runtime` and `log_prints`) until it ends. A class, not a generator-based
    context manager: it is on every task run's path."""

    __slots__ = ("_flow", "_print", "_task", "task_run")

    def __init__(self, task_run: TaskRun) -> None:
        self.task_run = task_run

    def __enter__(self) -> None:
        task_run = self.task_run
        self._flow = current_flow_run.set(task_run.flow_run)
        self._task = current_task_run.set(task_run)
        try:
            _begin(task_run)
        except BaseException:  # a task_run_name that raised: leave no context behind
            current_task_run.reset(self._task)
            current_flow_run.reset(self._flow)
            raise
        if task_run.log_prints:
            self._print: Token[Any] | None = print_to_log.set(task_run)
        elif task_run.flow_run.log_prints:  # log_prints=False in a flow that logs prints
            self._print = print_to_log.set(None)
        else:
            self._print = None

    def __exit__(self, *_: object) -> None:
        if self._print is not None:
            print_to_log.reset(self._print)
        current_task_run.reset(self._task)
        current_flow_run.reset(self._flow)


def _settle(task_run: TaskRun, value: Any) -> State[Any]:
    if isinstance(value, State):
        return _returned_state(task_run, value)
    try:
        return _completed(task_run, value)
    except Exception as error:
        return Failed(f"persisting the result failed: {exception_message(error)}", error)


def _returned_state(task_run: TaskRun, state: State[Any]) -> State[Any]:
    """A task that returns a state takes it, as in Prefect 2 (a `Failed` one is retried)."""
    if not state.is_final():
        return Failed(
            f"task {task_run.task_key!r} returned a {state.name} state; a task can only end in "
            "a final state (Completed, Failed, Crashed or Cancelled)"
        )
    if state.is_completed() and state.result_uri is None and state.has_data():
        try:
            settled = _completed(task_run, state.data)
        except Exception as error:
            return Failed(f"persisting the result failed: {exception_message(error)}", error)
        return State(state.type, state.name, state.message, state.data, settled.result_uri)
    return state


def execute_attempt(
    task_run: TaskRun, parameters: dict[str, Any], timeout: float | None = None
) -> State[Any]:
    """Run a sync task once. `timeout` is for direct calls; the engine times submitted runs.

    `_Attempt`'s work written out: this is every sync run's path (a third less time)."""
    task = task_run.task
    assert task is not None
    flow_token = current_flow_run.set(task_run.flow_run)
    task_token = current_task_run.set(task_run)
    print_token: Token[Any] | None = None
    try:
        if task_run.attempt or task.task_run_name:
            _begin(task_run)
        else:  # a first attempt with no name template (most): `_begin`'s work, without it
            task_run.attempt = 1
            task_run.set_state(State(StateType.RUNNING, "Running"))
        if task_run.log_prints:
            print_token = print_to_log.set(task_run)
        elif task_run.flow_run.log_prints:  # log_prints=False in a flow that logs prints
            print_token = print_to_log.set(None)
        if task.cache_key_fn is not None:
            cached = _cache_lookup(task_run, parameters)
            if cached is not None:
                return cached
        try:
            if timeout is None:  # most runs: no generator context manager on their path
                signature = task.signature
                if signature.simple:  # `task.call`, without its two calls
                    value = task._body(**parameters)
                else:
                    value = signature.call(task._body, parameters)
            else:
                with deadline(timeout, TaskTimeout):
                    value = task.call(parameters)
        except TaskTimeout:
            return _timed_out(task_run)
        except Exception as error:
            return _failed(task_run, error)
        if not isinstance(value, State) and not _should_persist(task_run):
            return State(StateType.COMPLETED, "Completed", "", value)  # _settle's common case
        return _settle(task_run, value)
    finally:
        if print_token is not None:
            print_to_log.reset(print_token)
        current_task_run.reset(task_token)
        current_flow_run.reset(flow_token)


async def execute_attempt_async(
    task_run: TaskRun, parameters: dict[str, Any], timeout: float | None = None
) -> State[Any]:
    """Run an async task once, in the current event loop."""
    task = task_run.task
    assert task is not None
    with _Attempt(task_run):
        cached = _cache_lookup(task_run, parameters)
        if cached is not None:
            return cached
        clock = asyncio.timeout(timeout)
        try:
            async with clock:
                value = await task.call(parameters)
        except TimeoutError as error:
            if clock.expired():
                return _timed_out(task_run)
            return _failed(task_run, error)
        except Exception as error:
            return _failed(task_run, error)
        return _settle(task_run, value)


# -- attempts in another process (a remote task runner) ------------------------------------------
def begin_remote_attempt(task_run: TaskRun) -> State[Any] | None:
    """The flow process's start of an attempt sent elsewhere: count it, name it, mark it
    Running, and look up its cache. Returns the Cached state on a hit, else None (send it)."""
    with _Attempt(task_run):
        return _cache_lookup(task_run, task_run.parameters)


def remote_attempt_state(task_run: TaskRun, outcome: Outcome) -> State[Any]:
    """The state a remote attempt's outcome gives the run, by the same rules as a local one;
    its result is persisted here, and its log lines join the run record."""
    if outcome.logs:
        task_run.flow_run.tree.logs.extend(outcome.logs)
    flow_token = current_flow_run.set(task_run.flow_run)
    task_token = current_task_run.set(task_run)
    try:
        if outcome.kind == COMPLETED:
            return _settle(task_run, outcome.value)
        if outcome.kind == TIMED_OUT:
            return _timed_out(task_run)
        return _failed(task_run, outcome.value, outcome.trace)
    finally:
        current_task_run.reset(task_token)
        current_flow_run.reset(flow_token)
