"""Run states: a type (what the orchestrator acts on) and a name (what the user sees).

Headrace follows Prefect 2: `Retrying` is a RUNNING state, `Cached` a COMPLETED one,
`TimedOut` a FAILED one and `NotReady` a PENDING one, so `state.is_failed()` stays true for a
timeout while the name keeps the detail.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, get_args, overload

from headrace.exceptions import (
    CancelledRun,
    CrashedRun,
    FailedRun,
    MissingResult,
    RunTimedOut,
    UnfinishedRun,
    UpstreamTaskError,
)

if TYPE_CHECKING:
    from headrace.records.lines import StateDict


class StateType(enum.StrEnum):
    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CRASHED = "CRASHED"
    CANCELLED = "CANCELLED"


FINAL_TYPES = frozenset(
    {StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED}
)
# Final types other than COMPLETED: what makes a downstream run "will not run".
UNSUCCESSFUL_TYPES = FINAL_TYPES - {StateType.COMPLETED}
# The names of final states a flow or task run can end in (`NotReady`: never run, as an
# upstream run did not complete).
FINAL_NAMES = frozenset(
    {"Completed", "Cached", "Failed", "TimedOut", "Crashed", "Cancelled", "NotReady"}
)
# A FlowRun's `status.state` (the CRD's enum), and the ones it ends in.
RunState = Literal[
    "Scheduled",
    "Pending",
    "Running",
    "Retrying",
    "Completed",
    "Failed",
    "Crashed",
    "Cancelled",
    "TimedOut",
]
FLOWRUN_STATES: tuple[str, ...] = get_args(RunState)
# The type of each: a FlowRun's state read back as a `State` (`run_deployment`'s).
FLOWRUN_STATE_TYPES: dict[str, StateType] = {
    "Scheduled": StateType.SCHEDULED,
    "Pending": StateType.PENDING,
    "Running": StateType.RUNNING,
    "Retrying": StateType.RUNNING,
    "Completed": StateType.COMPLETED,
    "Failed": StateType.FAILED,
    "Crashed": StateType.CRASHED,
    "Cancelled": StateType.CANCELLED,
    "TimedOut": StateType.FAILED,
}
# Those of a final type: Completed, Failed, Crashed, Cancelled, TimedOut.
FINAL_STATES = frozenset(name for name, kind in FLOWRUN_STATE_TYPES.items() if kind in FINAL_TYPES)

_NOT_SET: Any = object()


R = TypeVar("R")


class State(Generic[R]):
    """An immutable-by-convention snapshot of a run's state.

    `data` holds the in-memory result (or the exception for a failure); `result_uri` names
    where the result was persisted, so a state read back from a run record can still load it.
    """

    __slots__ = ("_data", "message", "name", "result_uri", "timestamp", "type")

    def __init__(
        self,
        type: StateType,
        name: str | None = None,
        message: str | None = "",
        data: Any = _NOT_SET,
        result_uri: str | None = None,
        timestamp: float | None = None,
    ) -> None:
        self.type = type
        self.name = name or type.value.capitalize()
        self.message = message or ""  # Prefect 2's message is Optional[str]
        self._data = data
        self.result_uri = result_uri
        self.timestamp = time.time() if timestamp is None else timestamp

    @property
    def data(self) -> Any:
        return None if self._data is _NOT_SET else self._data

    def has_data(self) -> bool:
        return self._data is not _NOT_SET

    def is_scheduled(self) -> bool:
        return self.type is StateType.SCHEDULED

    def is_pending(self) -> bool:
        return self.type is StateType.PENDING

    def is_running(self) -> bool:
        return self.type is StateType.RUNNING

    def is_completed(self) -> bool:
        return self.type is StateType.COMPLETED

    def is_failed(self) -> bool:
        return self.type is StateType.FAILED

    def is_crashed(self) -> bool:
        return self.type is StateType.CRASHED

    def is_cancelled(self) -> bool:
        return self.type is StateType.CANCELLED

    def is_final(self) -> bool:
        return self.type in FINAL_TYPES

    def is_paused(self) -> bool:
        """Always False: Headrace runs cannot pause (Prefect 2 has a PAUSED type)."""
        return False

    def is_cancelling(self) -> bool:
        """Always False: cancelling a Headrace run is immediate (no CANCELLING type)."""
        return False

    @overload
    def result(self, raise_on_failure: Literal[True] = True) -> R: ...

    @overload
    def result(self, raise_on_failure: bool) -> R | BaseException: ...

    def result(self, raise_on_failure: bool = True) -> R | BaseException:
        """The run's return value; for an unsuccessful run, raise (or return) its error."""
        if self.type is StateType.COMPLETED:
            data: R = self._data  # an annotation, not cast(): this is on every run's path
            if data is not _NOT_SET:
                return data
            if self.result_uri:
                # results.store imports states: a top-level import would be a cycle.
                from headrace.results.store import load_result  # noqa: PLC0415

                self._data = data = load_result(self.result_uri)
                return data
            raise MissingResult(
                f"State {self.name!r} has no result in memory and none was persisted; "
                "set persist_result=True on the task or flow to keep results"
            )
        error = self._error()
        if raise_on_failure:
            raise error
        return error

    def _error(self) -> BaseException:
        if isinstance(self._data, BaseException):
            return self._data
        if self.name == "TimedOut":
            return RunTimedOut(self.message or "run timed out")
        if self.type is StateType.CANCELLED:
            return CancelledRun(self.message or "run was cancelled")
        if self.type is StateType.CRASHED:
            return CrashedRun(self.message or "run crashed")
        if self.name == "NotReady":
            return UpstreamTaskError(self.message or "an upstream task run did not complete")
        if self.type is StateType.FAILED:
            return FailedRun(self.message or "run failed")
        return UnfinishedRun(f"run is in state {self.name!r}, which is not final")

    def to_dict(self) -> StateDict:
        return {
            "type": self.type.value,
            "name": self.name,
            "message": self.message,
            "timestamp": self.timestamp,
            "result": self.result_uri,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> State[Any]:
        return cls(
            StateType(data["type"]),
            name=data.get("name"),
            message=data.get("message") or "",
            result_uri=data.get("result"),
            timestamp=data.get("timestamp"),
        )

    def __repr__(self) -> str:
        return f"{self.name}({self.message!r})" if self.message else f"{self.name}()"


def Scheduled(message: str | None = "", name: str = "Scheduled") -> State[Any]:
    return State(StateType.SCHEDULED, name, message)


def AwaitingRetry(message: str | None = "") -> State[Any]:
    return State(StateType.SCHEDULED, "AwaitingRetry", message)


def Pending(message: str | None = "") -> State[Any]:
    return State(StateType.PENDING, "Pending", message)


def NotReady(message: str | None = "") -> State[Any]:
    return State(StateType.PENDING, "NotReady", message)


def Running(message: str | None = "") -> State[Any]:
    return State(StateType.RUNNING, "Running", message)


def Retrying(message: str | None = "") -> State[Any]:
    return State(StateType.RUNNING, "Retrying", message)


def Completed(
    data: Any = None, message: str | None = "", result_uri: str | None = None
) -> State[Any]:
    return State(StateType.COMPLETED, "Completed", message, data, result_uri)


def stored_only(result_uri: str, message: str | None = "") -> State[Any]:
    """Completed with no result in memory: `result()` reads it from `result_uri` (Prefect 2's
    `cache_result_in_memory=False`)."""
    return State(StateType.COMPLETED, "Completed", message, result_uri=result_uri)


def Cached(
    data: Any = _NOT_SET, message: str | None = "", result_uri: str | None = None
) -> State[Any]:
    return State(StateType.COMPLETED, "Cached", message, data, result_uri)


def Failed(
    message: str | None = "", error: BaseException | None = None, *, data: Any = _NOT_SET
) -> State[Any]:
    """A failed state; `data=` is Prefect 2's spelling of what `result()` raises."""
    return State(StateType.FAILED, "Failed", message, error if error is not None else data)


def TimedOut(message: str | None = "") -> State[Any]:
    return State(StateType.FAILED, "TimedOut", message)


def Crashed(message: str | None = "", error: BaseException | None = None) -> State[Any]:
    return State(StateType.CRASHED, "Crashed", message, error if error is not None else _NOT_SET)


def Cancelled(message: str | None = "") -> State[Any]:
    return State(StateType.CANCELLED, "Cancelled", message)


def from_states(states: list[State[Any]], data: Any = None) -> State[Any]:
    """The state of a flow that returned these states, or returned nothing and ran them.

    Prefect 2's rule and wording: any failed or crashed one fails it ("2/3 states failed."),
    else all completed completes it with `data`, else any cancelled cancels it, else it
    failed with states that are not final (a NotReady task run's, say).
    """
    total = len(states)
    failed = [state for state in states if state.type in _FAILED_TYPES]
    if failed:
        return Failed(f"{len(failed)}/{total} states failed.", failed[0]._error())
    if all(state.type is StateType.COMPLETED for state in states):
        return Completed(data, "All states completed." if states else "")
    cancelled = sum(1 for state in states if state.type is StateType.CANCELLED)
    if cancelled:
        return Cancelled(f"{cancelled}/{total} states cancelled.")
    not_final = sum(1 for state in states if not state.is_final())
    return Failed(f"{not_final}/{total} states are not final.")


_FAILED_TYPES = frozenset({StateType.FAILED, StateType.CRASHED})


def exception_message(error: BaseException) -> str:
    """`Type: text`, the one-line form used in state messages."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
