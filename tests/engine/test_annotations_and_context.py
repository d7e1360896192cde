"""`allow_failure`, `quote`, the `tags` block, `runtime` extras and `get_run_context()`.

Each expectation mirrors Prefect 2.14.21 as observed running the same flows (ephemeral mode).
"""

from __future__ import annotations

import datetime as dt

import pytest

from headrace import allow_failure, flow, runtime, tags, task
from headrace.context import FlowRunContext, TaskRunContext, get_run_context
from headrace.exceptions import MissingContextError
from headrace.futures import HeadraceFuture
from headrace.utilities.annotations import quote


class Boom(Exception):
    pass


@task
def bad() -> int:
    raise Boom("boom")


@task
def ok(x: object = None) -> object:
    return x


@task
def kind(x: object) -> str:
    """A future handed in unresolved reads as "future" (a future is its task run, a subclass)."""
    return "future" if isinstance(x, HeadraceFuture) else type(x).__name__


def test_allow_failure_as_an_argument_passes_the_exception() -> None:
    """Prefect 2.14: the task runs and receives ValueError('boom'), nested ones too."""

    @flow
    def f() -> tuple[object, object, object]:
        failed = bad.submit()
        return (
            ok.submit(allow_failure(failed)).result(),
            ok(allow_failure(failed)),
            ok.submit([allow_failure(failed)]).result(),
        )

    submitted, called, nested = f()
    assert isinstance(submitted, Boom) and isinstance(called, Boom)
    assert isinstance(nested, list) and isinstance(nested[0], Boom)


def test_allow_failure_in_wait_for() -> None:
    """Prefect 2.14: Completed with 1; without allow_failure the run is NotReady (PENDING)."""

    @flow
    def f() -> tuple[str, object, str, str]:
        failed = bad.submit()
        allowed = ok.submit(1, wait_for=[allow_failure(failed)])
        blocked = ok.submit(2, wait_for=[failed])
        state = blocked.wait()
        return allowed.wait().name, allowed.result(), state.name, state.type.value

    assert f() == ("Completed", 1, "NotReady", "PENDING")


def test_allow_failure_still_waits_for_the_upstream_run() -> None:
    import time

    @task
    def slow_fail() -> None:
        time.sleep(0.2)
        raise Boom("late")

    @flow
    def f() -> object:
        return ok.submit(allow_failure(slow_fail.submit())).result()

    assert isinstance(f(), Boom)


def test_quote_passes_futures_unresolved() -> None:
    """Prefect 2.14: quote(f) gives the future itself, quote([f]) a list holding it, an
    unquoted [f] the list of results; mapping over quote([1, 2]) maps its items."""

    @flow
    def f() -> tuple[str, str, object, list[str]]:
        future = ok.submit(3)
        listed = ok.submit(quote([future])).result()
        mapped = [m.result() for m in kind.map(quote([1, 2]))]
        return kind(quote(future)), kind.fn(listed[0]), ok([future]), mapped

    assert f() == ("future", "future", [3], ["int", "int"])


def test_tags_blocks_add_to_task_and_flow_run_tags() -> None:
    """Prefect 2.14: the task run has ['a', 'ctx1', 'ctx2', 'outer'], the flow run ['outer']."""

    @task(tags=["a"])
    def tagged() -> tuple[list[str], list[str]]:
        context = get_run_context()
        assert isinstance(context, TaskRunContext)
        return runtime.task_run.tags, sorted(context.task_run.tags)

    @flow
    def f() -> tuple[object, list[str]]:
        with tags("ctx1"), tags("ctx2") as now:
            assert now == {"ctx1", "ctx2", "outer"}
            inside = tagged()
        return inside, runtime.flow_run.tags

    with tags("outer"):
        inside, flow_tags = f()
    assert inside == (["a", "ctx1", "ctx2", "outer"], ["a", "ctx1", "ctx2", "outer"])
    assert flow_tags == ["outer"]


def test_tags_of_submitted_runs_are_those_where_they_were_submitted() -> None:
    @task
    def mine() -> list[str]:
        return runtime.task_run.tags

    @flow
    def f() -> list[str]:
        with tags("batch"):
            future = mine.submit()
        return future.result()

    assert f() == ["batch"]


def test_run_count_scheduled_start_time_and_run_context() -> None:
    """Prefect 2.14: run_count 1 then 2 under a retry; scheduled_start_time a timezone-aware
    datetime; get_run_context() outside a run raises MissingContextError with this text."""
    seen: list[int] = []

    @flow(retries=2)
    def f() -> dt.datetime:
        seen.append(runtime.flow_run.run_count)
        context = get_run_context()
        assert isinstance(context, FlowRunContext)
        assert context.flow_run.name == runtime.flow_run.name
        if runtime.flow_run.run_count < 2:
            raise Boom("again")
        return runtime.flow_run.scheduled_start_time  # type: ignore[no-any-return]

    started = f()
    assert seen == [1, 2]
    assert started.tzinfo is not None
    assert abs((dt.datetime.now(dt.UTC) - started).total_seconds()) < 60
    with pytest.raises(MissingContextError, match="No run context available"):
        get_run_context()
    from headrace import get_run_logger

    with pytest.raises(MissingContextError):  # Prefect 2.14: MissingContextError too
        get_run_logger()
    assert runtime.flow_run.run_count == 0 and runtime.task_run.tags == []


def test_the_run_context_task_run_counts_attempts() -> None:
    """Prefect 2.14 (observed): `get_run_context().task_run.run_count` is 1, then 2 on the
    retry, as `runtime.task_run.run_count` is."""
    seen: list[int] = []

    @task(retries=1)
    def flaky() -> int:
        context = get_run_context()
        assert isinstance(context, TaskRunContext)
        seen.append(context.task_run.run_count)
        if len(seen) == 1:
            raise Boom("again")
        return runtime.task_run.run_count

    @flow
    def f() -> int:
        return flaky()

    assert f() == 2
    assert seen == [1, 2]


def test_scheduled_start_time_is_the_instant_the_operator_tells_the_pod(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A scheduled FlowRun's pod is told its schedule's instant: the flow sees that, not the
    moment its pod happened to start; a subflow still sees its own start."""
    monkeypatch.setenv("HEADRACE_SCHEDULED_START_TIME", "2026-03-01T03:00:00+00:00")

    @flow
    def child() -> dt.datetime:
        return runtime.flow_run.scheduled_start_time  # type: ignore[no-any-return]

    @flow
    def nightly() -> tuple[dt.datetime, dt.datetime]:
        return runtime.flow_run.scheduled_start_time, child()

    mine, childs = nightly()
    assert mine == dt.datetime(2026, 3, 1, 3, 0, tzinfo=dt.UTC)
    assert abs((dt.datetime.now(dt.UTC) - childs).total_seconds()) < 60


def test_context_classes_say_whether_code_runs_in_a_flow_or_a_task() -> None:
    """Prefect 2.14 (observed): `FlowRunContext.get()` is None outside a flow run and the flow
    run's context inside it, its tasks included; `TaskRunContext.get()` only inside a task.
    The run objects carry the fields flows read most: state names and the parent's id."""

    @task
    def inside() -> tuple[object, ...]:
        task_context = TaskRunContext.get()
        flow_context = FlowRunContext.get()
        assert task_context is not None and flow_context is not None
        task_run = task_context.task_run
        return (
            task_run.flow_run_id == flow_context.flow_run.id,
            task_run.state_name,
            task_run.state_type.value,
        )

    @flow(version="7")
    def outer() -> tuple[object, ...]:
        context = FlowRunContext.get()
        assert context is not None and TaskRunContext.get() is None
        run = context.flow_run
        return (run.state_name, run.flow_version, run.parent_task_run_id, inside())

    assert FlowRunContext.get() is None and TaskRunContext.get() is None
    assert outer() == ("Running", "7", None, (True, "Running", "RUNNING"))
