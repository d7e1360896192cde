"""A task run's life in one class: its inputs, its attempts, their retries, and the state each
gives it.

The methods run wherever the engine runs the step: a worker thread, the engine loop, or the
caller's own thread for a call that runs inline. They never block on other runs.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from contextvars import Token
from typing import TYPE_CHECKING, Any, ClassVar

from headrace.engine import runs
from headrace.engine.context import current_flow_run, current_tags, current_task_run
from headrace.engine.hooks import hooks_for, run_hooks
from headrace.engine.inputs import resolve_parameters
from headrace.engine.interrupts import deadline
from headrace.engine.names import custom_name
from headrace.exceptions import TaskTimeout, WorkerLost
from headrace.futures import HeadraceFuture
from headrace.logging import print_to_log
from headrace.records.lines import TASK_RUN
from headrace.results.store import ResultStore
from headrace.retries import jittered, nth_delay
from headrace.states import (
    FINAL_TYPES,
    AwaitingRetry,
    Cached,
    Cancelled,
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
    from headrace.engine.runs import FlowRun
    from headrace.task_runners import RemoteExecutor
    from headrace.tasks import Task

logger = logging.getLogger("headrace.task_runs")


def inputs_failed(error: Exception) -> State[Any]:
    """The state of a run whose upstream results could not be swapped into its parameters
    (one kept only in storage that fails to load, say): it crashes rather than waits."""
    return Crashed(f"resolving inputs failed: {error}", error)


class TaskRun(HeadraceFuture[Any]):
    """A task run from its creation to its final state, and the future `submit` and `map` hand
    out for it: the same object. A method per step of its life; the engine (orchestrator.py)
    decides when and on which thread each runs, and owns its dependencies and timers."""

    RECORD_KIND: ClassVar[str] = TASK_RUN  # its line's kind in the run record
    __slots__ = (
        "allowed",
        "attempt",
        "cache_key",
        "dirty",
        "end_time",
        "flow_run",
        "id",
        "key",
        "log_prints",
        "map_index",
        "name",
        "parameters",
        "pending",
        "recorded",
        "remote",
        "start_time",
        "state",
        "subflow_run",
        "submitted",
        "tag_context",
        "task",
        "task_key",
        "timer",
        "token",
        "upstream",
        "worker",
    )

    def __init__(
        self,
        task: Task[Any, Any] | None,
        flow_run: FlowRun,
        parameters: dict[str, Any],
        upstream: Sequence[HeadraceFuture[Any]],
        task_key: str,
        map_index: int | None = None,
        pending: State[Any] | None = None,
    ) -> None:
        """`pending`: the Pending state to start in, shared by the runs of one `map` (states
        are immutable; one made per run cost half a microsecond)."""
        self.id = f"{runs._prefix}{next(runs._serial):012x}"  # runs.new_id(), inlined
        self.task = task
        self.task_key = task_key
        self.flow_run = flow_run
        counter = flow_run._name_counters.get(task_key)  # the n-th run of this task key
        if counter is None:
            counter = flow_run._name_counters.setdefault(task_key, itertools.count())
        self.name = self.key = f"{task_key}-{next(counter)}"
        self.parameters = parameters
        self.upstream = upstream
        self.map_index = map_index
        self.state: State[Any] = (
            State(StateType.PENDING, "Pending") if pending is None else pending  # Pending()
        )
        # Handed out as a future (by `submit`, `map`, or a call that runs on the engine): its
        # end finishes the future, and its flow waits for it. A run called inline is not.
        self.submitted = False
        self._state: State[Any] | None = None  # the future's fields (futures.py)
        self._done = False
        self._waiters: list[Callable[[], None]] | None = None
        self._dependents: list[TaskRun] | None = None
        self.pending = 0
        self.attempt = 0
        self.token = 0
        self.timer: Any = None
        self.worker: Any = None
        self.cache_key: str | None = None
        # None when the parameters are scalars and bare futures; else they are walked before
        # the run (made its own), and these are the ids of futures allowed to fail (often none).
        self.allowed: frozenset[int] | None = None
        self.subflow_run: FlowRun | None = None
        self.tag_context = current_tags.get()
        self.start_time: float | None = None
        self.end_time: float | None = None
        prints = task.log_prints if task is not None else False
        self.log_prints = flow_run.log_prints if prints is None else bool(prints)
        self.recorded: str | None = None  # the state name the record writer last wrote
        # For a remote task runner (Dask): the run's inputs as sent, with upstream results as
        # remote futures, until it completes; then the remote future of its own result.
        self.remote: Any = None
        flow_run.task_runs.append(self)
        tree = flow_run.tree
        tree.task_runs.append(self)
        self.dirty = True  # new: to be written (RunTree.mark, inlined)
        tree.dirty.append(self)

    def set_state(self, state: State[Any]) -> None:
        if self._done:
            return  # final, its future finished: an attempt that started late cannot undo it
        kind = state.type
        if kind is StateType.RUNNING:
            if self.start_time is None:
                self.start_time = state.timestamp
        elif kind in FINAL_TYPES:
            self.end_time = state.timestamp
        self.state = state
        if not self.dirty:
            self.dirty = True
            self.flow_run.tree.dirty.append(self)

    @property
    def tags(self) -> frozenset[str]:
        """The task's own tags and those of the `tags(...)` blocks it was created in."""
        return self.tag_context | self.task.tags if self.task is not None else self.tag_context

    @property
    def run_count(self) -> int:
        """Attempts so far, as Prefect 2's `get_run_context().task_run.run_count`."""
        return self.attempt

    # Prefect 2's TaskRun fields that tasks read from `get_run_context().task_run`.
    @property
    def flow_run_id(self) -> str:
        return self.flow_run.id

    @property
    def state_name(self) -> str:
        return self.state.name

    @property
    def state_type(self) -> StateType:
        return self.state.type

    def upstream_ids(self) -> list[str]:
        seen: dict[str, None] = {}
        for future in self.upstream:
            seen.setdefault(future.id, None)
        return list(seen)

    # -- inputs ----------------------------------------------------------------------------
    def not_ready(self) -> State[Any] | None:
        """A NotReady state if an upstream run did not complete, else None."""
        allowed = self.allowed
        for future in self.upstream:
            state = future._state
            if allowed is not None and state is not None and id(future) in allowed:
                continue  # allow_failure(...): any final state will do
            if state is None or not state.is_completed():
                shown = state.name if state is not None else "unfinished"
                return NotReady(
                    f"upstream task run {future.name!r} did not complete (it is {shown})"
                )
        return None

    def prepare(self, remote: RemoteExecutor | None = None) -> State[Any] | None:
        """Once every upstream run is final: swap their results into the parameters.

        Returns the state the run ends in instead of running (NotReady, or Crashed if the
        results cannot be read), or None when it may run. A run going to a `remote` executor
        also keeps its inputs as sent there (upstream results as remote futures) in `remote`.
        """
        earlier = self.flow_run.earlier
        if earlier is not None:
            done = earlier.get(self.key)
            if done is not None and done is not self:
                return done.state  # completed in an earlier attempt of this flow run
        state = self.not_ready()
        if state is not None:
            return state
        if remote is not None:
            try:
                self.remote = remote.inputs(self.parameters)
            except Exception as error:
                return inputs_failed(error)
        if not self.upstream and self.allowed is None:
            return None
        try:
            self.parameters = resolve_parameters(self.parameters)
        except Exception as error:
            return inputs_failed(error)
        return None

    # -- attempts --------------------------------------------------------------------------
    def begin_attempt(self) -> None:
        """Count the attempt and mark it running; a first one is named now, once its inputs
        are resolved, in its own context, as in Prefect 2."""
        self.attempt += 1
        if self.attempt == 1 and self.task is not None and self.task.task_run_name:
            self.name = custom_name(self.task.task_run_name, self.parameters)
        self.set_state(Running() if self.attempt == 1 else Retrying(f"attempt {self.attempt}"))

    def run_attempt(self, parameters: dict[str, Any], timeout: float | None = None) -> State[Any]:
        """Run a sync task once. `timeout` is for calls that run inline; the engine times
        submitted runs.

        `_Attempt`'s work written out: this is every sync run's path (a third less time)."""
        task = self.task
        assert task is not None
        flow_token = current_flow_run.set(self.flow_run)
        task_token = current_task_run.set(self)
        print_token: Token[Any] | None = None
        try:
            if self.attempt or task.task_run_name:
                self.begin_attempt()
            else:  # a first attempt with no name template (most): `begin_attempt`, inlined
                self.attempt = 1
                self.set_state(State(StateType.RUNNING, "Running"))
            if self.log_prints:
                print_token = print_to_log.set(self)
            elif self.flow_run.log_prints:  # log_prints=False in a flow that logs prints
                print_token = print_to_log.set(None)
            if task.cache_key_fn is not None:
                cached = self._cache_lookup(parameters)
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
                return self.timed_out()
            except Exception as error:
                return self.failed(error)
            if not isinstance(value, State) and not self._should_persist():
                return State(StateType.COMPLETED, "Completed", "", value)  # settle's common case
            return self.settle(value)
        finally:
            if print_token is not None:
                print_to_log.reset(print_token)
            current_task_run.reset(task_token)
            current_flow_run.reset(flow_token)

    async def run_attempt_async(
        self, parameters: dict[str, Any], timeout: float | None = None
    ) -> State[Any]:
        """Run an async task once, in the current event loop."""
        task = self.task
        assert task is not None
        with _Attempt(self):
            cached = self._cache_lookup(parameters)
            if cached is not None:
                return cached
            clock = asyncio.timeout(timeout)
            try:
                async with clock:
                    value = await task.call(parameters)
            except TimeoutError as error:
                if clock.expired():
                    return self.timed_out()
                return self.failed(error)
            except Exception as error:
                return self.failed(error)
            return self.settle(value)

    def begin_remote_attempt(self) -> State[Any] | None:
        """The flow process's start of an attempt sent elsewhere: count it, name it, mark it
        Running, and look up its cache. Returns the Cached state on a hit, else None (send it)."""
        with _Attempt(self):
            return self._cache_lookup(self.parameters)

    # -- what an attempt gives -------------------------------------------------------------
    def settle(self, value: Any) -> State[Any]:
        """The state a returned value gives: Completed (its result persisted if it should be),
        or the state the task returned."""
        if isinstance(value, State):
            return self._returned_state(value)
        try:
            return self._completed(value)
        except Exception as error:
            return Failed(f"persisting the result failed: {exception_message(error)}", error)

    def failed(self, error: Exception, trace: str = "") -> State[Any]:
        """The Failed state an error gives, logged. `trace`: the traceback as text, for an
        error raised in another process (it lost its own traceback on the way back)."""
        if trace:
            logger.error(
                "Task run %r failed (attempt %d): %s\n%s",
                self.name,
                self.attempt,
                exception_message(error),
                trace.rstrip(),
                extra={"headrace_run": self},
            )
        else:
            logger.error(
                "Task run %r failed (attempt %d): %s",
                self.name,
                self.attempt,
                exception_message(error),
                exc_info=error,
                extra={"headrace_run": self},
            )
        return Failed(exception_message(error), error)

    def timed_out(self) -> State[Any]:
        seconds = self.task.timeout_seconds if self.task else None
        return TimedOut(f"task run exceeded its timeout of {seconds}s")

    def _returned_state(self, state: State[Any]) -> State[Any]:
        """A task that returns a state takes it, as in Prefect 2 (a `Failed` one is retried)."""
        if not state.is_final():
            return Failed(
                f"task {self.task_key!r} returned a {state.name} state; a task can only end in "
                "a final state (Completed, Failed, Crashed or Cancelled)"
            )
        if state.is_completed() and state.result_uri is None and state.has_data():
            try:
                settled = self._completed(state.data)
            except Exception as error:
                return Failed(f"persisting the result failed: {exception_message(error)}", error)
            return State(state.type, state.name, state.message, state.data, settled.result_uri)
        return state

    # -- results and the cache -------------------------------------------------------------
    def _store(self) -> ResultStore:
        task = self.task
        assert task is not None
        return task.result_store() or self.flow_run.result_store

    def _should_persist(self) -> bool:
        task = self.task
        assert task is not None
        if task.persist_result is not None:
            return task.persist_result
        if task.cache_key_fn is not None or not task.cache_result_in_memory:
            return True  # a cache, or a result kept only in storage: the flow cannot stop it
        if self.flow_run.persist_result is not None:
            return self.flow_run.persist_result
        return self.flow_run.flow.persist_tasks_default

    def _cache_lookup(self, parameters: dict[str, Any]) -> State[Any] | None:
        task = self.task
        assert task is not None
        if task.cache_key_fn is None:
            return None
        key = task.cache_key_fn(self, parameters)
        self.cache_key = key
        if key is None or task.refresh_cache:
            return None
        uri = self._store().cached(key)
        if uri is None:
            return None
        return Cached(message=f"cache hit for key {key!r}", result_uri=uri)

    def _completed(self, value: Any) -> State[Any]:
        if not self._should_persist():
            return Completed(value)
        task = self.task
        assert task is not None
        store = self._store()
        if self.cache_key is not None:
            expires = None
            if task.cache_expiration is not None:
                expires = time.time() + task.cache_expiration.total_seconds()
            uri = store.write(value, store.cache_key_path(self.cache_key), expires)
        elif task.result_storage_key is not None:
            uri = store.write(value, self._storage_key(task.result_storage_key))
        else:
            uri = store.write(value, store.result_key(self.flow_run.id, self.id))
        if not task.cache_result_in_memory:
            return stored_only(uri)
        return Completed(value, result_uri=uri)

    def _storage_key(self, template: str) -> str:
        """A `result_storage_key` filled in as Prefect 2 does: `{parameters[x]}`, and the
        `flow_run` and `task_run` of `headrace.runtime` (`{flow_run.flow_name}`, ...)."""
        from headrace import runtime  # noqa: PLC0415 (only a key that names it pays its import)

        return template.format(
            parameters=self.parameters, flow_run=runtime.flow_run, task_run=runtime.task_run
        )

    # -- retries ---------------------------------------------------------------------------
    def retry_delay(self, state: State[Any]) -> float | None:
        """Seconds to wait before another attempt, or None when the state is final."""
        task = self.task
        if task is None or self.attempt > task.retries:
            return None
        if not state.is_failed() and not (
            state.is_crashed() and isinstance(state.data, WorkerLost)
        ):
            return None  # a run is retried when it failed, or when its worker was lost
        condition = task.retry_condition_fn
        if condition is not None and not condition(task=task, task_run=self, state=state):
            return None  # Prefect 2's retry_condition_fn said this failure is final
        return jittered(nth_delay(task.retry_delay_seconds, self.attempt), task.retry_jitter_factor)

    def await_retry(self, state: State[Any]) -> float | None:
        """If `state` earns another attempt, mark the run AwaitingRetry and return the delay."""
        delay = self.retry_delay(state)
        if delay is not None:
            self.set_state(AwaitingRetry(f"retrying in {delay:g}s after: {state.message}"))
        return delay

    # -- a whole run, inline ---------------------------------------------------------------
    def run_inline(self) -> State[Any]:
        """Run a sync task run to its final state in this thread, retries included."""
        task = self.task
        assert task is not None
        try:
            for future in self.upstream:
                future._wait_sync(None)
            state = self.prepare()
            while state is None:
                state = self.run_attempt(self.parameters, task.timeout_seconds)
                delay = self.await_retry(state)
                if delay is not None:
                    time.sleep(delay)
                    state = None
        except BaseException as error:
            self._interrupted(error)
            raise
        return self._end_inline(state)

    async def run_inline_async(self) -> State[Any]:
        """Run an async task run to its final state in the current loop, retries included."""
        task = self.task
        assert task is not None
        try:
            for future in self.upstream:
                await future._wait_async(None)
            state = self.prepare()
            while state is None:
                state = await self.run_attempt_async(self.parameters, task.timeout_seconds)
                delay = self.await_retry(state)
                if delay is not None:
                    await asyncio.sleep(delay)
                    state = None
        except BaseException as error:
            self._interrupted(error)
            raise
        return self._end_inline(state)

    def _interrupted(self, error: BaseException) -> None:
        self.set_state(Cancelled(f"interrupted by {type(error).__name__}"))

    def _end_inline(self, state: State[Any]) -> State[Any]:
        """An inline run's end: its final state, then its hooks, in the caller's thread."""
        self.set_state(state)
        task = self.task
        if task is not None and task.has_hooks:
            run_hooks(hooks_for(task, state, flow=False), self, state, task=task)
        return state


class _Attempt:
    """One attempt's bookkeeping: counts it, marks it running, and makes it the current run
    (for loggers, `runtime` and `log_prints`) until it ends. A class, not a generator-based
    context manager: it is on every async task run's path."""

    __slots__ = ("_flow", "_print", "_task", "task_run")

    def __init__(self, task_run: TaskRun) -> None:
        self.task_run = task_run

    def __enter__(self) -> None:
        task_run = self.task_run
        self._flow = current_flow_run.set(task_run.flow_run)
        self._task = current_task_run.set(task_run)
        try:
            task_run.begin_attempt()
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
