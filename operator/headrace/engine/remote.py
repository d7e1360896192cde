"""One attempt of a task run in another process (a Dask worker): what goes there, what comes back.

The engine in the flow process keeps the run's state, retries, cache and result; a worker only
calls the function. `run_attempt` is what a worker runs: it calls the task's function with its
inputs, under the task's timeout, with a stand-in of the run as the current run (so
`get_run_logger()`, `log_prints` and `headrace.runtime` work there), and returns an `Outcome`
holding the value or the error and the run's log lines, for the engine to settle.

Imported on workers by reference: it depends on nothing of Dask, only on `headrace` itself.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import traceback
from collections.abc import Callable
from typing import Any, cast

from headrace.engine.context import current_flow_run, current_task_run
from headrace.engine.inputs import resolve
from headrace.engine.runs import RunTree
from headrace.engine.task_run import TaskRun
from headrace.engine.workers import raise_in_thread
from headrace.exceptions import TaskTimeout
from headrace.logging import enable_log_prints, print_to_log, setup_logging
from headrace.records.lines import FLOW_RUN, TASK_RUN
from headrace.states import State

COMPLETED = "completed"
FAILED = "failed"
TIMED_OUT = "timed_out"


class RemoteCall:
    """What a worker needs to run one attempt: the function and who the run is (for its logs)."""

    __slots__ = (
        "attempt",
        "filename",
        "flow_name",
        "flow_run_id",
        "flow_run_name",
        "fn",
        "isasync",
        "log_prints",
        "simple",
        "tags",
        "task_key",
        "task_run_id",
        "task_run_name",
        "timeout",
        "unwrap",
    )

    def __init__(self, task_run: TaskRun, unwrap: bool) -> None:
        task = task_run.task
        assert task is not None
        flow_run = task_run.flow_run
        self.fn = task._body
        code = getattr(task.fn, "__code__", None)
        self.filename = code.co_filename if code is not None else ""
        self.isasync = task.isasync
        self.simple = task.signature.simple
        self.timeout = task.timeout_seconds
        self.log_prints = task_run.log_prints
        self.task_run_id = task_run.id
        self.task_run_name = task_run.name
        self.task_key = task_run.task_key
        self.attempt = task_run.attempt
        self.tags = task_run.tags
        self.flow_run_id = flow_run.id
        self.flow_run_name = flow_run.name
        self.flow_name = flow_run.flow.name
        self.unwrap = unwrap  # whether inputs hold upstream Outcomes (from Dask futures)

    def __getstate__(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        for name, value in zip(self.__slots__, state, strict=True):
            setattr(self, name, value)


class Outcome:
    """What one remote attempt gave: a value, an error (with its traceback as text), or a
    timeout; and the log lines of the run made meanwhile. Downstream attempts take `value`."""

    __slots__ = ("kind", "logs", "trace", "value")

    def __init__(self, kind: str, value: Any, logs: list[dict[str, Any]], trace: str = "") -> None:
        self.kind = kind
        self.value = value
        self.logs = logs
        self.trace = trace

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.kind, self.value, self.logs, self.trace)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.kind, self.value, self.logs, self.trace = state


def outcome_state(task_run: TaskRun, outcome: Outcome) -> State[Any]:
    """The state a remote attempt's outcome gives the run, by the same rules as a local one:
    in the flow process, where its result is persisted and its log lines join the record."""
    if outcome.logs:
        task_run.flow_run.tree.logs.extend(outcome.logs)
    flow_token = current_flow_run.set(task_run.flow_run)
    task_token = current_task_run.set(task_run)
    try:
        if outcome.kind == COMPLETED:
            return task_run.settle(outcome.value)
        if outcome.kind == TIMED_OUT:
            return task_run.timed_out()
        return task_run.failed(outcome.value, outcome.trace)
    finally:
        current_task_run.reset(task_token)
        current_flow_run.reset(flow_token)


class RemoteError(Exception):
    """A task's error that could not be sent back as itself (it does not pickle)."""


class _FlowInfo:
    """The flow as `headrace.runtime.flow_run` reads it on a worker."""

    __slots__ = ("name", "version")

    def __init__(self, name: str) -> None:
        self.name = name
        self.version = None


class _FlowRunStandIn:
    """The flow run as a worker sees it: what loggers and `headrace.runtime.flow_run` read,
    and a tree of its own for log lines. Not a `FlowRun`: that one registers with its run
    tree, which lives in the flow process, and holds the flow itself."""

    RECORD_KIND = FLOW_RUN
    __slots__ = ("flow", "id", "log_prints", "name", "parameters", "tree")
    tags: frozenset[str] = frozenset()
    run_count = 1
    start_time = None
    parent_task_run = None

    def __init__(self, call: RemoteCall) -> None:
        self.id = call.flow_run_id
        self.name = call.flow_run_name
        self.flow = _FlowInfo(call.flow_name)
        self.tree = RunTree()
        self.log_prints = call.log_prints
        self.parameters: dict[str, Any] = {}


class _TaskRunStandIn:
    """The task run as a worker sees it: what loggers, `log_prints` and
    `headrace.runtime.task_run` read. Not a `TaskRun`: that one registers with its flow run."""

    RECORD_KIND = TASK_RUN
    __slots__ = (
        "attempt",
        "flow_run",
        "id",
        "log_prints",
        "name",
        "parameters",
        "tags",
        "task_key",
    )

    def __init__(self, call: RemoteCall, parameters: dict[str, Any]) -> None:
        self.id = call.task_run_id
        self.name = call.task_run_name
        self.task_key = call.task_key
        self.tags = call.tags
        self.flow_run = _FlowRunStandIn(call)
        self.parameters = parameters
        self.attempt = call.attempt
        self.log_prints = call.log_prints

    @property
    def run_count(self) -> int:
        return self.attempt


def _stand_in(call: RemoteCall, parameters: dict[str, Any]) -> TaskRun:
    """The run as a worker sees it, as the current task run (typed as the one it stands for:
    only what the stand-in has is read on a worker)."""
    return cast("TaskRun", _TaskRunStandIn(call, parameters))


def _value_of(leaf: Any) -> Any:
    return leaf.value if type(leaf) is Outcome else leaf


def run_attempt(call: RemoteCall, parameters: dict[str, Any]) -> Outcome:
    """Run one attempt of a task's function here; never raises for the task's own errors."""
    setup_logging()
    if call.unwrap:  # upstream results arrive as the Outcomes their attempts returned
        parameters = {name: resolve(value, _value_of) for name, value in parameters.items()}
    run = _stand_in(call, parameters)
    logs = run.flow_run.tree.logs
    context = contextvars.copy_context()
    context.run(current_flow_run.set, run.flow_run)
    context.run(current_task_run.set, run)
    if call.log_prints:
        enable_log_prints()
        context.run(print_to_log.set, run)
    if call.isasync:
        body: Callable[[], Any] = lambda: asyncio.run(_call_async(call, parameters))  # noqa: E731
    else:
        body = lambda: _call(call, parameters)  # noqa: E731
    try:
        if call.timeout is None or call.isasync:
            value = context.run(body)
        else:
            value = _within(context, body, call.timeout)
    except TaskTimeout:
        return Outcome(TIMED_OUT, None, logs)
    except Exception as error:
        return Outcome(FAILED, _sendable(error), logs, _trace(error, call.filename))
    return Outcome(COMPLETED, value, logs)


def _call(call: RemoteCall, parameters: dict[str, Any]) -> Any:
    if call.simple:
        return call.fn(**parameters)
    from headrace.signature import Signature  # noqa: PLC0415 (only a task with a signature of its own)

    return Signature(call.fn).call(call.fn, parameters)


async def _call_async(call: RemoteCall, parameters: dict[str, Any]) -> Any:
    clock = asyncio.timeout(call.timeout)
    try:
        async with clock:
            return await _call(call, parameters)
    except TimeoutError as error:
        if clock.expired():
            raise TaskTimeout() from error
        raise  # the task's own TimeoutError: a failure, as locally


def _within(context: contextvars.Context, body: Callable[[], Any], seconds: float) -> Any:
    """Run `body` in a thread of its own and give up on it after `seconds`: the attempt ends on
    time even when the function sits in a blocking call, and it is interrupted at its next
    bytecode, as a timed-out run on the engine's own threads is."""
    box: list[tuple[bool, Any]] = []

    def target() -> None:
        try:
            box.append((True, context.run(body)))
        except BaseException as error:
            box.append((False, error))

    thread = threading.Thread(target=target, name="headrace-attempt", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive() and thread.ident is not None:
        raise_in_thread(thread.ident, TaskTimeout)
        raise TaskTimeout()
    ok, value = box[0]
    if ok:
        return value
    raise value


def _trace(error: Exception, filename: str) -> str:
    """The traceback from the task's own frames on (this module's are not the user's), with
    the file of functions sent by value (cloudpickle names it `<dynamic-code>`) put back."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    stack = traceback.StackSummary.extract(traceback.walk_tb(tb), lookup_lines=False)
    if filename:
        for frame in stack:
            if frame.filename == "<dynamic-code>":
                frame.filename = filename
    lines = ["Traceback (most recent call last):\n", *stack.format()]
    lines += traceback.format_exception_only(type(error), error)
    return "".join(lines)


def _sendable(error: Exception) -> Exception:
    """The error itself if it pickles, else a `RemoteError` with its type and message."""
    import cloudpickle  # noqa: PLC0415 (a dependency of dask, there on every worker)

    try:
        cloudpickle.loads(cloudpickle.dumps(error))
    except Exception:
        return RemoteError(f"{type(error).__name__}: {error}")
    return error
