"""Artifacts (Prefect 2's `prefect.artifacts`): kept in the run record with the run that made
them, readable back by the record's readers; bad input refused naming the fix."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable

import pytest

from headrace import flow, task
from headrace.artifacts import (
    MAX_BYTES,
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from headrace.exceptions import MissingContextError
from headrace.records import untrusted
from headrace.records.reader import RunRecord


def test_artifacts_of_flows_and_tasks_are_kept_in_the_record_with_their_run(
    load_record: Callable[..., RunRecord],
) -> None:
    @task
    def measure(i: int) -> uuid.UUID:
        return create_table_artifact(
            [{"i": i, "score": float("nan")}], key="scores", description=f"run {i}"
        )

    @flow
    def report() -> list[uuid.UUID]:
        made = [create_markdown_artifact("# Done\nall *good*", key="summary")]
        made.append(create_link_artifact("https://example.com/report", link_text="report"))
        return made + [future.result() for future in measure.map([1, 2])]

    ids = report()
    assert all(isinstance(made, uuid.UUID) for made in ids)
    record = load_record()
    assert [a["id"] for a in record.artifacts] == [str(made) for made in ids]
    summary, link, first, second = record.artifacts
    assert (summary["type"], summary["key"], summary["data"]) == (
        "markdown",
        "summary",
        "# Done\nall *good*",
    )
    assert summary["flow_run_id"] == record.root["id"] and "task_run_id" not in summary
    assert (link["type"], link["data"], link["link_text"]) == (
        "link",
        "https://example.com/report",
        "report",
    )
    runs = {run["name"]: run["id"] for run in record.task_runs.values()}
    assert (first["task_run_id"], first["task_run_name"]) == (runs["measure-0"], "measure-0")
    assert second["description"] == "run 2"
    assert json.loads(second["data"]) == [{"i": 2, "score": None}]  # NaN empty, as in Prefect
    # The operator and the UI read records as untrusted input: the lines pass their checks.
    assert untrusted.load(record.url).artifacts == record.artifacts


def test_in_an_async_flow_they_are_awaited_as_in_prefect(
    load_record: Callable[..., RunRecord],
) -> None:
    @task
    async def note() -> uuid.UUID:
        return await create_markdown_artifact("from an async task")

    @flow
    async def f() -> list[uuid.UUID]:
        return [await create_markdown_artifact("from the flow"), await note()]

    made = asyncio.run(f())
    assert [a["id"] for a in load_record().artifacts] == [str(m) for m in made]


def test_table_forms_are_columns_or_rows_and_others_are_refused() -> None:
    @flow
    def f() -> None:
        create_table_artifact({"a": [1, 2], "b": ["x", "y"]})
        create_table_artifact([[1, 2], [3, 4]])
        with pytest.raises(TypeError, match="table must be a dict of lists"):
            create_table_artifact({"a": 1})  # type: ignore[dict-item]
        with pytest.raises(TypeError, match="table must be"):
            create_table_artifact("a,b")  # type: ignore[arg-type]

    f()


def test_bad_keys_and_oversized_artifacts_are_refused_naming_the_fix(
    load_record: Callable[..., RunRecord],
) -> None:
    @flow
    def f() -> None:
        with pytest.raises(ValueError, match="lowercase letters, numbers and dashes"):
            create_markdown_artifact("x", key="Daily_Report")
        with pytest.raises(ValueError, match="over the limit"):
            create_markdown_artifact("x" * (MAX_BYTES + 1))
        with pytest.raises(ValueError, match="over the limit"):
            create_markdown_artifact("x", description="d" * MAX_BYTES)
        with pytest.raises(TypeError, match="description must be a str"):
            create_markdown_artifact("x", description=5)  # type: ignore[arg-type]
        create_markdown_artifact("fits", key="daily-report-2")

    f()
    assert [a["key"] for a in load_record().artifacts] == ["daily-report-2"]


def test_outside_a_run_is_a_clear_error() -> None:
    # Prefect 2.14 posts one with no run to its API server; Headrace has only run records.
    with pytest.raises(MissingContextError, match=r"create_link_artifact\(\) was called outside"):
        create_link_artifact("https://example.com")


def test_a_sync_flow_called_where_a_loop_runs_gets_ids(
    load_record: Callable[..., RunRecord],
) -> None:
    # A notebook runs an event loop in its main thread: a sync flow there is still sync code.
    @flow
    def f() -> uuid.UUID:
        return create_markdown_artifact("from a notebook")

    async def cell() -> uuid.UUID:
        return f()

    made = asyncio.run(cell())
    assert isinstance(made, uuid.UUID)
    assert load_record().artifacts[0]["id"] == str(made)
