"""`headrace.runtime`: what running code can ask about its flow run, task run and deployment."""

from __future__ import annotations

import asyncio

import pytest

from headrace import flow, runtime, task


def test_runtime_is_empty_outside_runs() -> None:
    assert runtime.flow_run.id is None
    assert runtime.flow_run.name is None
    assert runtime.flow_run.parameters == {}
    assert runtime.task_run.id is None
    assert runtime.task_run.name is None
    assert runtime.task_run.run_count == 0
    assert runtime.deployment.name is None
    assert runtime.deployment.version is None
    with pytest.raises(AttributeError):
        runtime.flow_run.colour  # noqa: B018


def test_runtime_inside_flows_and_tasks(load_record) -> None:
    @task
    def inspect_task(label: str) -> dict[str, object]:
        return {
            "flow_run_id": runtime.flow_run.id,
            "flow_run_name": runtime.flow_run.name,
            "flow_parameters": runtime.flow_run.parameters,
            "task_run_id": runtime.task_run.id,
            "task_run_name": runtime.task_run.name,
            "task_parameters": runtime.task_run.parameters,
        }

    @flow(name="introspective", flow_run_name="run-{x}")
    def f(x: int) -> dict[str, object]:
        assert runtime.task_run.id is None  # no task run in the flow body
        return {
            "flow": {
                "id": runtime.flow_run.id,
                "name": runtime.flow_run.name,
                "flow_name": runtime.flow_run.flow_name,
                "parameters": runtime.flow_run.parameters,
            },
            "called": inspect_task("called"),
            "submitted": inspect_task.submit("submitted").result(),
        }

    seen = f(5)
    record = load_record()
    root = record.root
    assert seen["flow"] == {
        "id": root["id"],
        "name": "run-5",
        "flow_name": "introspective",
        "parameters": {"x": 5},
    }
    for key in ("called", "submitted"):
        info = seen[key]
        run = record.task_runs[info["task_run_id"]]
        assert info["task_run_name"] == run["name"]
        assert info["flow_run_id"] == root["id"]
        assert info["flow_run_name"] == "run-5"
        assert info["flow_parameters"] == {"x": 5}
        assert info["task_parameters"] == {"label": key}
    assert seen["called"]["task_run_name"] == "inspect_task-0"
    assert seen["submitted"]["task_run_name"] == "inspect_task-1"
    assert runtime.flow_run.id is None  # and empty again afterwards


def test_runtime_in_async_tasks_and_subflows() -> None:
    @task
    async def which() -> tuple[str, str]:
        return runtime.flow_run.id, runtime.task_run.name

    @flow
    async def child() -> tuple[str, str, str]:
        task_flow, task_name = await which()
        return runtime.flow_run.id, runtime.flow_run.parent_flow_run_id, task_flow, task_name

    @flow
    async def parent() -> tuple[str, tuple]:
        return runtime.flow_run.id, await child()

    parent_id, (child_id, child_parent, task_flow, task_name) = asyncio.run(parent())
    assert child_id != parent_id
    assert child_parent == parent_id
    assert task_flow == child_id
    assert task_name == "which-0"


def test_deployment_from_the_environment(monkeypatch, load_record) -> None:
    monkeypatch.setenv("HEADRACE_DEPLOYMENT_NAME", "etl-prod")
    monkeypatch.setenv("HEADRACE_DEPLOYMENT_VERSION", "2024.1")

    @task
    def where() -> tuple[str, str]:
        return runtime.deployment.name, runtime.deployment.version

    @flow
    def f() -> tuple:
        return (runtime.deployment.name, runtime.deployment.version), where()

    assert f() == (("etl-prod", "2024.1"), ("etl-prod", "2024.1"))
    assert load_record().root["deployment"] == {"name": "etl-prod", "version": "2024.1"}


def test_flow_run_name_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("HEADRACE_FLOW_RUN_NAME", "from-operator")

    @flow
    def child() -> str:
        return runtime.flow_run.name

    @flow
    def f() -> tuple[str, str]:
        return runtime.flow_run.name, child()

    top, sub = f()
    assert top == "from-operator"
    assert sub != "from-operator"  # only the top-level run takes it
