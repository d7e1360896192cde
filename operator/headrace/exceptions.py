"""Errors a user of Headrace can see, each named for what went wrong."""

from __future__ import annotations


class HeadraceError(Exception):
    """Base class for errors raised by Headrace itself."""


class MissingContextError(HeadraceError, RuntimeError):
    """Run context was asked for outside a flow or task run (`get_run_context()`)."""


class NotSupported(HeadraceError, NotImplementedError):
    """A Prefect 2 option or name that Headrace does not provide; the message says why."""


# Prefect 2 code catches its errors by Prefect's names: `except PrefectException`.
PrefectException = HeadraceError


class ParameterValidationError(HeadraceError, ValueError):
    """A flow or task cannot take the parameters it was given; the message names each one."""


class ParameterBindError(ParameterValidationError, TypeError):
    """Arguments that do not fit the function (too many, missing, unknown): a `TypeError`,
    as Python's own is and Prefect 2's `ParameterBindError` is."""


class ParameterTypeError(ParameterValidationError):
    """Flow parameters whose values fail their annotations (Prefect 2's name for it)."""


class MappingLengthMismatch(HeadraceError, ValueError):
    """Iterables passed to `Task.map` have different lengths."""


class MappingMissingIterable(HeadraceError, ValueError):
    """`Task.map` was given nothing to map over: no argument is iterable."""


class ObjectNotFound(HeadraceError):
    """A Deployment `run_deployment` was asked for does not exist (Prefect 2's name)."""


class UpstreamTaskError(HeadraceError):
    """A task did not run because an upstream task run did not complete."""


class UnfinishedRun(HeadraceError):
    """A result was requested from a run that has not reached a final state."""


class FailedRun(HeadraceError):
    """The run failed without an exception of its own (it returned a `Failed` state)."""


class CancelledRun(HeadraceError):
    """The run was cancelled; there is no result."""


class CrashedRun(HeadraceError):
    """The run crashed (the process or the engine failed, not user code)."""


class WorkerLost(HeadraceError):
    """The worker running a task run went away mid-attempt (a Dask worker that died or was
    killed). The run ends Crashed, and is retried per its task's `retries`."""


class MissingResult(HeadraceError):
    """A state has no in-memory result and no persisted location to load from."""


class FlowTimeout(BaseException):
    """Raised inside a flow's body when its deadline passes.

    A BaseException so that a user's `except Exception:` cannot swallow the timeout.
    """


class TaskTimeout(BaseException):
    """Raised inside a task's body when its deadline passes."""


class TerminationSignal(BaseException):
    """Raised in the main thread when the process receives SIGTERM."""


class RunTimedOut(HeadraceError, TimeoutError):
    """Raised by `State.result()` for a run that ended TimedOut."""
