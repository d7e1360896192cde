"""`task_run_name` and `flow_run_name`, templates and callables.

Mirrors Prefect 2.14.21 as observed: a callable flow_run_name runs in the new run's context
(top-level `top-3`, subflow `child-7` from `runtime.flow_run.flow_name` and `.parameters`),
a task_run_name template gives `add-1-2`, a callable one reads `runtime.task_run.parameters`.
"""

from __future__ import annotations

import asyncio

from headrace import flow, runtime, task


def namer() -> str:
    return f"{runtime.flow_run.flow_name}-{runtime.flow_run.parameters.get('n')}"


@task(task_run_name="add-{x}-{y}")
def add(x: int, y: int) -> str:
    return str(runtime.task_run.name)


@task(task_run_name=lambda: f"callable-{runtime.task_run.parameters['x']}")
def named_callable(x: int) -> str:
    return str(runtime.task_run.name)


@flow(flow_run_name=namer)
def child(n: int) -> str:
    return str(runtime.flow_run.name)


@flow(flow_run_name=namer)
def top(n: int = 3) -> list[str]:
    return [
        str(runtime.flow_run.name),
        child(7),
        add(1, 2),
        add.submit(3, 4).result(),
        named_callable(9),
        named_callable.map([1, 2])[1].result(),
    ]


def test_names_from_templates_and_callables() -> None:
    assert top() == ["top-3", "child-7", "add-1-2", "add-3-4", "callable-9", "callable-2"]


def test_task_run_name_template_sees_resolved_upstream_results() -> None:
    @task
    def one() -> int:
        return 1

    @flow
    def f() -> str:
        return add.submit(one.submit(), 5).result()

    assert f() == "add-1-5"


def test_flow_run_name_template_and_async_flows() -> None:
    @flow(flow_run_name="tmpl-{n}")
    def tmpl(n: int) -> str:
        return str(runtime.flow_run.name)

    @flow(flow_run_name=namer)
    async def asynchronous(n: int) -> str:
        return str(runtime.flow_run.name)

    assert tmpl(5) == "tmpl-5"
    assert asyncio.run(asynchronous(4)) == "asynchronous-4"
