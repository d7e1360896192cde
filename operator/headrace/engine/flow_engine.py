"""Running a flow: create its run, enforce its deadline, settle its final state, record it.

Sync flows run in the caller's thread (the main thread for a script or a pod), so signals can
interrupt them. Async flows run on their caller's event loop, which is never the engine's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from headrace import settings
from headrace.engine import collector
from headrace.engine.context import current_flow_run
from headrace.engine.hooks import hooks_for, run_hooks
from headrace.engine.inputs import collect_futures, futures_to_states, resolve
from headrace.engine.interrupts import SigtermHandler, deadline, interrupts, on_main_thread
from headrace.engine.names import custom_name, generate_name
from headrace.engine.orchestrator import get_engine
from headrace.engine.runs import FlowRun, RunTree, new_id
from headrace.engine.task_run import TaskRun
from headrace.exceptions import (
    FlowTimeout,
    ParameterValidationError,
    TerminationSignal,
    UpstreamTaskError,
)
from headrace.logging import print_to_log, setup_logging
from headrace.records.reader import record_url
from headrace.records.writer import RecordWriter
from headrace.retries import nth_delay
from headrace.states import (
    AwaitingRetry,
    Cancelled,
    Completed,
    Crashed,
    Failed,
    Running,
    State,
    TimedOut,
    exception_message,
    from_states,
    stored_only,
)
from headrace.task_runners import effective as effective_runner

if TYPE_CHECKING:
    from headrace.flows import Flow

logger = logging.getLogger("headrace.flow_runs")

EXIT_TERMINATED = 143  # 128 + SIGTERM, what a shell reports for a process ended by SIGTERM

# Called with each new top-level run tree: how the CLI finds the run it shows progress for.
root_observers: list[Callable[[RunTree], None]] = []

_env_id_lock = threading.Lock()
_env_id_used = False


def _take_env_id() -> str:
    """The id the operator gave this process's first top-level run, once."""
    global _env_id_used
    with _env_id_lock:
        if _env_id_used:
            return ""
        _env_id_used = True
        return settings.current().flow_run_id


def _run_name(flow_run: FlowRun, root: bool) -> str:
    naming = flow_run.flow.flow_run_name
    if naming is not None:
        token = current_flow_run.set(flow_run)  # a callable reads the new run's `runtime`
        try:
            return custom_name(naming, flow_run.parameters)
        finally:
            current_flow_run.reset(token)
    if root and settings.current().flow_run_name:
        return settings.current().flow_run_name
    return generate_name()


class FlowRunSession:
    """One call of a flow: everything both the sync and the async paths share."""

    def __init__(self, flow: Flow[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        setup_logging()
        self.flow = flow
        parent = current_flow_run.get()
        self.root = parent is None
        upstream = collect_futures((*args, *kwargs.values())) if parent is not None else []
        if upstream:
            # A subflow gets what its upstream runs returned, as a task would (Prefect 2).
            for future in upstream:
                future._wait_sync(None)
            not_done = [future for future in upstream if not future.state.is_completed()]
            if not_done:
                first = not_done[0]
                raise UpstreamTaskError(
                    f"subflow {flow.name!r} did not run: upstream task run "
                    f"{first.task_run.name!r} is {first.state.name}"
                )
        if parent is not None:
            # A subflow's inputs are its own, as a task run's are (Prefect 2).
            args, kwargs = resolve(args, copy=True), resolve(kwargs, copy=True)
        error: ParameterValidationError | None = None
        try:
            parameters = flow.validate_parameters(flow.bind(args, kwargs))
        except ParameterValidationError as invalid:
            error = invalid
            parameters = dict(kwargs)
        tree = RunTree() if parent is None else parent.tree
        parent_task_run = None
        if parent is not None:
            parent_task_run = TaskRun(None, parent, {}, upstream, flow.name)
        run_id = (_take_env_id() if self.root else "") or new_id()
        self.flow_run = FlowRun(
            flow,
            parameters,
            tree,
            parent_task_run,
            run_id,
            "",
            effective_runner(flow.task_runner),
            flow.result_store(),
            flow.persist_result,
            bool(flow.log_prints) or bool(flow.log_prints is None and parent and parent.log_prints),
        )
        self.flow_run.name = _run_name(self.flow_run, self.root)
        if parent_task_run is not None:
            parent_task_run.subflow_run = self.flow_run
        self.sigterm: SigtermHandler | None = None
        if self.root:
            tree.root = self.flow_run
            tree.record = RecordWriter(tree, record_url(run_id))
            tree.record.start()
            collector.hold(tree)
            for observer in list(root_observers):
                observer(tree)
            self.sigterm = SigtermHandler(
                lambda: TerminationSignal(settings.current().sigterm_state_now())
            )
            self.sigterm.install()
        self.invalid = error
        self.flow_run.task_runner.enter()  # ended in `finish`, which every session reaches
        self.attempt = 0
        self.attempt_start = 0  # where this attempt's task runs start in flow_run.task_runs

    # -- states ----------------------------------------------------------------------------
    def set_state(self, state: State[Any]) -> None:
        self.flow_run.set_state(state)
        parent_task_run = self.flow_run.parent_task_run
        if parent_task_run is not None:
            parent_task_run.set_state(
                State(state.type, state.name, state.message, result_uri=state.result_uri)
            )

    def begin_attempt(self) -> None:
        self.attempt += 1
        self.flow_run.run_count = self.attempt
        if self.attempt > 1:
            self.flow_run.begin_retry()
        self.attempt_start = len(self.flow_run.task_runs)
        if self.attempt == 1:
            logger.info(
                "Beginning flow run %r for flow %r",
                self.flow_run.name,
                self.flow.name,
                extra={"headrace_run": self.flow_run},
            )
        self.set_state(Running() if self.attempt == 1 else Running(f"attempt {self.attempt}"))
        if self.sigterm is not None:
            self.sigterm.armed = True

    def retry_delay(self, state: State[Any]) -> float | None:
        if state.is_failed() and self.attempt <= self.flow.retries:
            self.set_state(AwaitingRetry(f"retrying after: {state.message}"))
            return nth_delay(self.flow.retry_delay_seconds, self.attempt)
        return None

    def make_timeout(self) -> BaseException:
        return FlowTimeout(self.flow_run.id)

    def timed_out(self) -> State[Any]:
        return TimedOut(f"flow run exceeded its timeout of {self.flow.timeout_seconds}s")

    def classify(self, error: BaseException) -> tuple[State[Any], bool]:
        """The state an exception out of the body gives this run, and whether to re-raise it."""
        if isinstance(error, FlowTimeout):
            if not error.args or error.args[0] == self.flow_run.id:
                interrupts.clear_pending(error)
                return self.timed_out(), False
            return Cancelled("a parent flow run timed out"), True
        if isinstance(error, TerminationSignal):
            if self.root:
                interrupts.clear_pending(error)
            if error.args and error.args[0] == "TimedOut":
                return TimedOut("terminated by SIGTERM at its deadline"), True
            return Cancelled("terminated by SIGTERM"), True
        if isinstance(error, Exception):
            logger.error(
                "Flow run %r failed: %s",
                self.flow_run.name,
                exception_message(error),
                exc_info=error,
                extra={"headrace_run": self.flow_run},
            )
            return Failed(exception_message(error), error), False
        return Crashed(f"interrupted by {type(error).__name__}", error), True

    @contextlib.contextmanager
    def current(self) -> Iterator[None]:
        """Make this the current flow run (for tasks, loggers, `runtime`, `log_prints`)."""
        flow_run = self.flow_run
        token = current_flow_run.set(flow_run)
        print_token = (
            print_to_log.set(flow_run if flow_run.log_prints else None)
            if flow_run.log_prints or print_to_log.get() is not None
            else None
        )
        try:
            yield
        finally:
            if print_token is not None:
                print_to_log.reset(print_token)
            current_flow_run.reset(token)

    def interrupted(self, error: BaseException) -> tuple[State[Any], BaseException | None]:
        """The state an exception out of the body gives, and the exception to re-raise."""
        state, again = self.classify(error)
        return state, error if again else None

    def cancelled(
        self, cancelled: asyncio.CancelledError, task: asyncio.Task[Any] | None
    ) -> tuple[State[Any], BaseException | None]:
        """A cancelled flow task: a signal delivered while its loop was idle, or a real cancel."""
        pending = interrupts.take_pending() if task is not None else None
        if pending is None:
            return Cancelled("the flow run's task was cancelled"), cancelled
        assert task is not None
        task.uncancel()
        return self.interrupted(pending)

    def state_from_return(self, value: Any) -> State[Any]:
        """The state a flow's return value gives it, by Prefect 2's rules.

        A state the code made itself is the flow's state. Returned futures become their
        states; a run's state, or a list, tuple or set of nothing but states, decides the
        flow's state (`states.from_states`) and stays its result. Returning nothing, the flow
        is judged by this attempt's task runs and subflows. Anything else completes it.
        """
        if type(value) in _PLAIN:
            if value is None:
                runs = self.flow_run.task_runs[self.attempt_start :]
                return from_states([run.state for run in runs]) if runs else Completed(None)
            return Completed(value)
        value = futures_to_states(value)
        if isinstance(value, State) and not self._is_run_state(value):
            if not value.is_final():
                return Failed(
                    f"flow {self.flow.name!r} returned a {value.name} state; a flow can only "
                    "end in a final state (Completed, Failed, Crashed or Cancelled)"
                )
            return value
        if isinstance(value, State):
            return from_states([value], value)
        if (
            isinstance(value, list | tuple | set)
            and value
            and all(isinstance(item, State) for item in value)
        ):
            return from_states(list(value), value)
        return Completed(value)

    def _is_run_state(self, state: State[Any]) -> bool:
        """Whether `state` belongs to one of this tree's runs (not made by the flow's code)."""
        tree = self.flow_run.tree
        return any(run.state is state for run in tree.task_runs) or any(
            run.state is state for run in tree.flow_runs
        )

    def outstanding(self) -> list[TaskRun]:
        return [f.task_run for f in self.flow_run.futures if not f._done]

    def finish(self, state: State[Any]) -> State[Any]:
        if self.sigterm is not None:
            self.sigterm.armed = False
        outstanding = self.outstanding()
        if outstanding:
            get_engine().cancel(outstanding, f"flow run ended {state.name}: {state.message}")
        self.flow_run.task_runner.exit()  # its task runs are final: a Dask cluster can go
        if (
            state.is_completed()
            and state.result_uri is None
            and self.flow.persist_result is not False
        ):
            try:
                uri = self.flow_run.result_store.write(
                    state.data,
                    self.flow_run.result_store.result_key(self.flow_run.id, "flow-result"),
                )
                state = (
                    Completed(state.data, state.message, uri)
                    if self.flow.cache_result_in_memory
                    else stored_only(uri, state.message)
                )
            except Exception as error:
                logger.warning(
                    "Could not persist the flow result: %s",
                    exception_message(error),
                    extra={"headrace_run": self.flow_run},
                )
        self.set_state(state)
        logger.info("Finished in state %r", state, extra={"headrace_run": self.flow_run})
        hooks = hooks_for(self.flow, state, flow=True)
        if hooks:
            with self.current():
                run_hooks(hooks, self.flow_run, state, flow=self.flow)
        if self.root:
            tree = self.flow_run.tree
            if tree.record is not None:
                tree.record.close()
            collector.release(tree)
            if self.sigterm is not None:
                self.sigterm.uninstall()
        return state

    def outcome(self, state: State[Any], return_state: bool, error: BaseException | None) -> Any:
        if error is not None:
            if self.root and isinstance(error, TerminationSignal):
                raise SystemExit(EXIT_TERMINATED) from None
            raise error
        if self.root and self.sigterm is not None and self.sigterm.received:
            raise SystemExit(EXIT_TERMINATED)
        return state if return_state else state.result()

    def reject(self, return_state: bool) -> Any:
        assert self.invalid is not None
        state = self.finish(Failed(str(self.invalid), self.invalid))
        if return_state:
            return state
        raise self.invalid


_PLAIN = frozenset({int, float, str, bytes, bool, type(None)})


def run_flow_sync(
    flow: Flow[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any], return_state: bool
) -> Any:
    session = FlowRunSession(flow, args, kwargs)
    if session.invalid is not None:
        return session.reject(return_state)
    flow_run = session.flow_run
    reraise: BaseException | None = None
    while True:
        session.begin_attempt()
        try:
            with session.current(), deadline(flow.timeout_seconds, session.make_timeout):
                value = flow.signature.call(flow.fn, flow_run.parameters)
                for future in list(flow_run.futures):
                    future._wait_sync(None)
            state = session.state_from_return(value)
        except BaseException as error:
            state, reraise = session.interrupted(error)
        delay = None if reraise is not None else session.retry_delay(state)
        if delay is None:
            break
        try:
            time.sleep(delay)
        except BaseException as error:  # SIGTERM or Ctrl-C while waiting to retry
            state, reraise = session.interrupted(error)
            break
    state = session.finish(state)
    return session.outcome(state, return_state, reraise)


async def run_flow_async(
    flow: Flow[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any], return_state: bool
) -> Any:
    if current_flow_run.get() is not None:
        for future in collect_futures((*args, *kwargs.values())):
            await future._wait_async(None)  # so the session's wait for them does not block
    session = FlowRunSession(flow, args, kwargs)
    if session.invalid is not None:
        return session.reject(return_state)
    flow_run = session.flow_run
    task = asyncio.current_task()
    main = on_main_thread()
    frame = (
        interrupts.loop_frame(asyncio.get_running_loop(), task)
        if main and task is not None
        else contextlib.nullcontext()
    )
    reraise: BaseException | None = None
    with frame:
        while True:
            session.begin_attempt()
            # On the main thread the deadline is a signal; elsewhere the loop's own timeout.
            clock = asyncio.timeout(None if main else flow.timeout_seconds)
            try:
                with (
                    session.current(),
                    deadline(flow.timeout_seconds if main else None, session.make_timeout),
                ):
                    async with clock:
                        value = await flow.signature.call(flow.fn, flow_run.parameters)
                        for future in list(flow_run.futures):
                            await future._wait_async(None)
                state = session.state_from_return(value)
            except asyncio.CancelledError as cancelled:
                state, reraise = session.cancelled(cancelled, task if main else None)
            except TimeoutError as error:
                state, reraise = (
                    (session.timed_out(), None) if clock.expired() else session.interrupted(error)
                )
            except BaseException as error:
                state, reraise = session.interrupted(error)
            delay = None if reraise is not None else session.retry_delay(state)
            if delay is None:
                break
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError as cancelled:  # SIGTERM while waiting to retry
                state, reraise = session.cancelled(cancelled, task if main else None)
                break
            except BaseException as error:
                state, reraise = session.interrupted(error)
                break
    state = session.finish(state)
    return session.outcome(state, return_state, reraise)


def _run_in_new_loop(coro: Any) -> Any:
    """Run an async subflow of a sync flow on an event loop of its own."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def enter_flow(
    flow: Flow[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any], return_state: bool
) -> Any:
    if not flow.isasync:
        return run_flow_sync(flow, args, kwargs, return_state)
    coro = run_flow_async(flow, args, kwargs, return_state)
    if asyncio._get_running_loop() is None and current_flow_run.get() is not None:
        return _run_in_new_loop(coro)
    return coro
