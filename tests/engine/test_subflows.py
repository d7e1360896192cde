"""Subflows in every sync/async combination, and how they are linked in the run record."""

from __future__ import annotations

import asyncio

import pytest

from headrace import flow, task


@task
def inc(x: int) -> int:
    return x + 1


@flow
def sync_child(x: int) -> int:
    return inc(x) * 10


@flow
async def async_child(x: int) -> int:
    await asyncio.sleep(0)
    return inc(x) * 100


def test_sync_subflow_in_sync_flow() -> None:
    @flow
    def parent() -> int:
        return sync_child(1) + 1

    assert parent() == 21


def test_async_subflow_in_sync_flow_returns_its_result_directly() -> None:
    @flow
    def parent() -> int:
        value = async_child(1)
        assert not asyncio.iscoroutine(value)
        return value

    assert parent() == 200


def test_async_subflow_in_async_flow() -> None:
    @flow
    async def parent() -> int:
        return await async_child(2)

    assert asyncio.run(parent()) == 300


def test_sync_subflow_in_async_flow() -> None:
    @flow
    async def parent() -> int:
        return sync_child(3)

    assert asyncio.run(parent()) == 40


def test_subflow_state_and_exception_reach_the_parent() -> None:
    class Boom(Exception):
        pass

    @flow
    def failing_child() -> None:
        raise Boom("child failed")

    @flow
    def parent() -> str:
        state = failing_child(return_state=True)
        assert state.is_failed()
        with pytest.raises(Boom, match="child failed"):
            failing_child()
        return "survived"

    assert parent() == "survived"


def test_subflow_takes_futures_as_parameters(load_record) -> None:
    @flow
    def parent() -> int:
        first = inc.submit(1)
        return sync_child(first) + async_child(x=inc.submit(first))

    assert parent() == 30 + 400
    record = load_record()
    links = [run for run in record.task_runs.values() if "subflow_run_id" in run]
    assert len(links) == 2
    assert all(len(link["upstream"]) == 1 for link in links)
    child = record.flow_runs[links[0]["subflow_run_id"]]
    assert child["parameters"] == {"x": 2}


def test_async_subflow_takes_futures_as_parameters() -> None:
    @flow
    async def parent() -> int:
        return await async_child(inc.submit(1))

    assert asyncio.run(parent()) == 300


def test_subflow_with_a_failed_upstream_does_not_run() -> None:
    from headrace import UpstreamTaskError

    ran = []

    @task
    def fail() -> int:
        raise ValueError("no")

    @flow
    def child(x: int) -> None:
        ran.append(x)

    @flow
    def parent() -> None:
        with pytest.raises(UpstreamTaskError, match="fail-0"):
            child(fail.submit())

    assert parent(return_state=True).is_failed()
    assert ran == []


def test_subflows_are_linked_in_the_run_record(load_record) -> None:
    @flow(name="child")
    def child(x: int) -> int:
        return inc(x)

    @flow(name="parent")
    def parent() -> int:
        return child(1) + child(2)

    assert parent() == 5
    record = load_record()
    root = record.root
    assert root["flow_name"] == "parent" and root["state"]["name"] == "Completed"
    children = [run for run in record.flow_runs.values() if run["flow_name"] == "child"]
    assert len(children) == 2
    for run in children:
        assert run["parent_flow_run_id"] == root["id"]
        link = record.task_runs[run["parent_task_run_id"]]
        assert link["subflow_run_id"] == run["id"]
        assert link["flow_run_id"] == root["id"]
        assert link["state"]["name"] == "Completed"
        # the child's own task runs belong to the child flow run
        inner = [t for t in record.task_runs.values() if t["flow_run_id"] == run["id"]]
        assert [t["task_key"] for t in inner] == ["inc"]
    assert sorted(run["parameters"]["x"] for run in children) == [1, 2]


def test_a_subflow_gets_its_own_copy_of_its_arguments_as_in_prefect() -> None:
    """Prefect 2.14 (observed): a subflow that changes a list it was given leaves its
    caller's as it was; a top-level flow gets the caller's own (test_parameters)."""

    @flow
    def grows(items, table: dict):  # type: ignore[no-untyped-def]
        items.append(9)
        table["added"] = True
        return len(items)

    @flow
    def parent() -> tuple[int, list[int], dict[str, bool]]:
        items: list[int] = [1]
        table: dict[str, bool] = {}
        return grows(items, table), items, table

    assert parent() == (2, [1], {})
