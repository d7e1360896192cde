"""Run loggers: lines land in the run record with their run, and a clear error outside runs."""

from __future__ import annotations

import asyncio
import logging

import pytest

from headrace import flow, get_run_logger, task


def test_get_run_logger_outside_a_run_is_a_clear_error() -> None:
    with pytest.raises(
        RuntimeError, match=r"get_run_logger\(\) was called outside a flow or task run"
    ):
        get_run_logger()


def test_run_logger_lines_are_kept_with_their_run(load_record) -> None:
    @task
    def sync_task(i: int) -> None:
        get_run_logger().info("sync task %d", i)

    @task
    async def async_task() -> None:
        get_run_logger().warning("async task")

    @flow
    def f() -> None:
        logger = get_run_logger()
        logger.info("flow start")
        sync_task(0)
        sync_task.submit(1).wait()
        async_task()
        logger.debug("hidden at INFO")
        try:
            raise KeyError("oops")
        except KeyError:
            logger.exception("handled")

    f()
    record = load_record()
    root_id = record.root["id"]
    by_message = {log["message"].splitlines()[0]: log for log in record.logs}
    assert by_message["flow start"]["flow_run_id"] == root_id
    assert "task_run_id" not in by_message["flow start"]
    assert by_message["sync task 0"]["task_run_name"] == "sync_task-0"
    assert by_message["sync task 1"]["task_run_name"] == "sync_task-1"
    assert by_message["async task"]["task_run_name"] == "async_task-0"
    assert by_message["async task"]["level"] == "WARNING"
    assert "hidden at INFO" not in by_message
    assert "KeyError: 'oops'" in by_message["handled"]["message"]
    assert by_message["handled"]["level"] == "ERROR"
    assert any(m.startswith("Beginning flow run") for m in by_message)
    assert any(m.startswith("Finished in state") for m in by_message)


def test_logs_of_an_async_flow_and_its_subflow(load_record) -> None:
    @flow
    async def child() -> None:
        get_run_logger().info("from the child")

    @flow
    async def parent() -> None:
        get_run_logger().info("from the parent")
        await child()

    asyncio.run(parent())
    record = load_record()
    (child_run,) = [run for run in record.flow_runs.values() if run["parent_task_run_id"]]
    owners = {log["message"]: log["flow_run_id"] for log in record.logs}
    assert owners["from the parent"] == record.root["id"]
    assert owners["from the child"] == child_run["id"]


def test_ordinary_loggers_are_not_captured(load_record) -> None:
    @flow
    def f() -> None:
        logging.getLogger("some.library").warning("library line")
        get_run_logger().info("run line")

    f()
    messages = [log["message"] for log in load_record().logs]
    assert "run line" in messages
    assert "library line" not in messages
