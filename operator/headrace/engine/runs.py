"""Flow runs, the run tree they share, and run ids: what the engine tracks and the run record
is written from (a task run is `task_run.TaskRun`).

Plain `__slots__` classes, not pydantic models: runs are made on the hot path, and every
microsecond there is felt.
"""

from __future__ import annotations

import itertools
import os
from random import getrandbits
from typing import TYPE_CHECKING, Any, ClassVar

from headrace.engine.context import current_tags
from headrace.records.lines import FLOW_RUN
from headrace.states import FINAL_TYPES, Pending, State, StateType

if TYPE_CHECKING:
    from headrace.engine.task_run import TaskRun
    from headrace.flows import Flow
    from headrace.futures import HeadraceFuture
    from headrace.records.writer import RecordWriter
    from headrace.results.store import ResultStore
    from headrace.task_runners import TaskRunner


def _new_prefix() -> str:
    """The first 20 hex digits of this process's ids: 74 random bits, the version nibble and
    the RFC 4122 variant bits, so every id is a well-formed version 4 UUID."""
    bits = (getrandbits(80) & ~((0xF << 28) | (0x3 << 14))) | (0x4 << 28) | (0x2 << 14)
    digits = f"{bits:020x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-"


def _new_serial() -> itertools.count[int]:
    """From a random start below 2**47: ids do not read as 000000000000, 000000000001, ...
    and 2**47 more fit in the last 12 hex digits."""
    return itertools.count(getrandbits(47))


_prefix = _new_prefix()
_serial = _new_serial()


def _reseed() -> None:
    global _prefix, _serial
    _prefix = _new_prefix()
    _serial = _new_serial()


os.register_at_fork(after_in_child=_reseed)  # a forked child must not repeat its parent's ids


def new_id() -> str:
    """A UUID string, unique in this process by a counter and across processes by a random
    prefix drawn per process (74 bits: a collision is as unlikely as one of two uuid4s).

    Not `uuid.uuid4()`: its `os.urandom` call cost about a third of a task run's overhead, and
    formatting 128 random bits per run still cost a microsecond. Ids need to be unique, not
    unguessable.
    """
    return f"{_prefix}{next(_serial):012x}"


class RunTree:
    """What a top-level flow run shares with all its subflows: one record, one list of runs."""

    __slots__ = ("dirty", "flow_runs", "logs", "record", "root", "task_runs")

    def __init__(self) -> None:
        self.task_runs: list[TaskRun] = []
        self.flow_runs: list[FlowRun] = []
        self.dirty: list[TaskRun | FlowRun] = []
        self.logs: list[dict[str, Any]] = []  # log and artifact lines, for the next flush
        self.record: RecordWriter | None = None
        self.root: FlowRun | None = None

    def mark(self, run: TaskRun | FlowRun) -> None:
        if not run.dirty:
            run.dirty = True
            self.dirty.append(run)

    def counts(self) -> dict[str, int]:
        """Task runs by state name, derived on demand rather than kept on the hot path."""
        counts: dict[str, int] = {}
        for task_run in list(self.task_runs):
            name = task_run.state.name
            counts[name] = counts.get(name, 0) + 1
        return counts

    def running(self, limit: int = 20) -> list[str]:
        names = []
        for task_run in list(self.task_runs):
            if task_run.state.type is StateType.RUNNING:
                names.append(task_run.name)
                if len(names) >= limit:
                    break
        return names


class FlowRun:
    RECORD_KIND: ClassVar[str] = FLOW_RUN  # its line's kind in the run record
    __slots__ = (
        "_name_counters",
        "deadline",
        "dirty",
        "earlier",
        "end_time",
        "flow",
        "futures",
        "id",
        "is_async",
        "log_prints",
        "name",
        "parameters",
        "parent_task_run",
        "persist_result",
        "result_store",
        "run_count",
        "start_time",
        "state",
        "tags",
        "task_runner",
        "task_runs",
        "tree",
    )

    def __init__(
        self,
        flow: Flow[Any, Any],
        parameters: dict[str, Any],
        tree: RunTree,
        parent_task_run: TaskRun | None,
        run_id: str,
        name: str,
        task_runner: TaskRunner,
        result_store: ResultStore,
        persist_result: bool | None,
        log_prints: bool,
    ) -> None:
        self.id = run_id
        self.name = name
        self.flow = flow
        self.parameters = parameters
        self.tree = tree
        self.parent_task_run = parent_task_run
        self.task_runner = task_runner
        self.result_store = result_store
        self.persist_result = persist_result
        self.log_prints = log_prints
        self.is_async = flow.isasync
        self.tags = flow.tags | current_tags.get()
        self.run_count = 0
        self.futures: list[HeadraceFuture[Any]] = []
        self.task_runs: list[TaskRun] = []  # every task run it made, called or submitted
        self.state: State[Any] = Pending()
        self.start_time: float | None = None
        self.end_time: float | None = None
        self.deadline: float | None = None
        self.dirty = False
        self._name_counters: dict[str, itertools.count[int]] = {}
        # On a retry: the runs earlier attempts completed, by key, not to be run again.
        self.earlier: dict[str, TaskRun] | None = None
        tree.flow_runs.append(self)
        tree.mark(self)

    def begin_retry(self) -> None:
        """Before a later attempt: keys count from 0 again, so the n-th call of a task finds
        the run the n-th call completed before and takes its state (Prefect 2)."""
        earlier = dict(self.earlier or {})
        for run in self.task_runs:
            if run.task is not None and run.state.type is StateType.COMPLETED:
                earlier.setdefault(run.key, run)
        self.earlier = earlier
        self._name_counters.clear()

    # Prefect 2's FlowRun fields that flows read from `get_run_context().flow_run`.
    @property
    def state_name(self) -> str:
        return self.state.name

    @property
    def state_type(self) -> StateType:
        return self.state.type

    @property
    def flow_version(self) -> str | None:
        return self.flow.version

    @property
    def parent_task_run_id(self) -> str | None:
        return self.parent_task_run.id if self.parent_task_run is not None else None

    def set_state(self, state: State[Any]) -> None:
        if state.type is StateType.RUNNING and self.start_time is None:
            self.start_time = state.timestamp
        elif state.type in FINAL_TYPES and self.end_time is None:
            self.end_time = state.timestamp
        self.state = state
        self.tree.mark(self)
