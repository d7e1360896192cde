"""Run loggers: log lines that belong to a run land in its record and on the console."""

from __future__ import annotations

import builtins
import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, cast

from headrace import settings
from headrace.engine.context import current_flow_run, current_task_run
from headrace.exceptions import MissingContextError
from headrace.records.lines import LOG, TASK_RUN, LogLine

if TYPE_CHECKING:
    from headrace.engine.runs import FlowRun
    from headrace.engine.task_run import TaskRun

RUN_LOGGER = "headrace.runs"

# The run whose prints become log lines (set when `log_prints` is on).
print_to_log: ContextVar[TaskRun | FlowRun | None] = ContextVar("headrace_print", default=None)


def _owner(record: logging.LogRecord) -> TaskRun | FlowRun | None:
    run = getattr(record, "headrace_run", None)
    if run is not None:
        return run  # type: ignore[no-any-return]
    return current_task_run.get() or current_flow_run.get()


def record_owner(run: TaskRun | FlowRun) -> tuple[FlowRun, TaskRun | None]:
    """The flow run whose record takes a line made in `run`, and the task run it names."""
    # By kind, not isinstance: the task run class is above this module (it logs prints).
    if run.RECORD_KIND == TASK_RUN:
        task_run = cast("TaskRun", run)
        return task_run.flow_run, task_run
    return cast("FlowRun", run), None


class RecordHandler(logging.Handler):
    """Copies log lines of runs into their run tree, for the record writer to flush."""

    def emit(self, record: logging.LogRecord) -> None:
        run = _owner(record)
        if run is None:
            return
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            flow_run, task_run = record_owner(run)
            entry: LogLine = {
                "kind": LOG,
                "ts": record.created,
                "level": record.levelname,
                "logger": record.name,
                "message": message,
                "flow_run_id": flow_run.id,
            }
            if task_run is not None:
                entry["task_run_id"] = task_run.id
                entry["task_run_name"] = task_run.name
            flow_run.tree.logs.append(cast("dict[str, Any]", entry))  # untyped in the engine
        except Exception:
            self.handleError(record)


class ConsoleHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is now, so live progress displays can capture it."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


class RunFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        run = _owner(record)
        prefix = ""
        if run is not None:
            kind = "Task run" if hasattr(run, "task_key") else "Flow run"
            prefix = f"{kind} {run.name!r} - "
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        text = f"{stamp}.{int(record.msecs):03d} | {record.levelname:<7} | {prefix}{record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


_configured = False


def setup_logging(level: str | None = None) -> None:
    """Install the record and console handlers once; `HEADRACE_LOGGING_LEVEL` sets the level."""
    global _configured
    if _configured:
        return
    _configured = True
    root = logging.getLogger("headrace")
    root.setLevel(level or settings.current().logging_level)
    root.addHandler(RecordHandler())
    console = ConsoleHandler()
    console.setFormatter(RunFormatter())
    root.addHandler(console)
    root.propagate = False


class RunLoggerAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        extra = dict(kwargs.get("extra") or {})
        extra.setdefault("headrace_run", self.extra["headrace_run"] if self.extra else None)
        kwargs["extra"] = extra
        return msg, kwargs


def get_run_logger() -> logging.LoggerAdapter:  # type: ignore[type-arg]
    """A logger whose lines are kept with the current task run or flow run."""
    run = current_task_run.get() or current_flow_run.get()
    if run is None:
        if logging.getLogger(RUN_LOGGER).disabled:  # in `disable_run_logger()`, as Prefect's
            return logging.LoggerAdapter(logging.getLogger("null"), {})
        raise MissingContextError(  # a RuntimeError, as Prefect 2's is
            "get_run_logger() was called outside a flow or task run; "
            "use logging.getLogger(...) there instead"
        )
    return RunLoggerAdapter(logging.getLogger(RUN_LOGGER), {"headrace_run": run})


@contextlib.contextmanager
def disable_run_logger() -> Iterator[None]:
    """Run loggers log nothing inside, and `get_run_logger()` works outside a run: for tests
    that call a task's function, `my_task.fn(...)`, as with Prefect's."""
    logger = logging.getLogger(RUN_LOGGER)
    was = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = was


def get_logger(name: str | None = None) -> logging.Logger:
    """A logger under `headrace` (Prefect's `get_logger` gives one under `prefect`)."""
    parent = logging.getLogger("headrace")
    if not name:
        return parent
    return logging.getLogger(name if name.startswith("headrace.") else f"headrace.{name}")


_original_print = builtins.print


def _print(
    *args: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None, flush: bool = False
) -> None:
    run = print_to_log.get()
    if run is None or file not in (None, sys.stdout):
        _original_print(*args, sep=sep, end=end, file=file, flush=flush)
        return
    message = (sep if sep is not None else " ").join(str(arg) for arg in args)
    logging.getLogger(RUN_LOGGER).info(message, extra={"headrace_run": run})


def enable_log_prints() -> None:
    """Route `print` through the run logger for runs with `log_prints=True`."""
    if builtins.print is not _print:
        builtins.print = _print
