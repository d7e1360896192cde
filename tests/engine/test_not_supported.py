"""Prefect 2 names Headrace lacks fail naming the difference, never silently; every option of
Prefect 2.14.21's `@task`/`@flow` (`inspect.signature(prefect.task)` etc.) is accepted.

`retry_condition_fn` mirrors Prefect 2.14 as observed: called with
keywords task=, task_run=, state=; with retries=3 the "retry me" run made 4 attempts and the
"final" one 1.
"""

from __future__ import annotations

import pytest

import headrace
from headrace import flow, task
from headrace.exceptions import NotSupported


def body() -> int:
    return 1


def test_viz_return_value_is_accepted_and_kept() -> None:
    assert task(viz_return_value=3)(body).viz_return_value == 3


def test_unknown_options_are_still_type_errors() -> None:
    with pytest.raises(TypeError, match="retires"):
        task(retires=2)(body)
    with pytest.raises(TypeError, match="unknown options"):
        task(body).with_options(retires=2)


@pytest.mark.parametrize(
    "method", ["serve", "deploy", "to_deployment", "visualize", "serialize_parameters"]
)
def test_prefect_flow_methods_are_refused_with_a_reason(method: str) -> None:
    with pytest.raises(NotSupported, match=rf"Flow\.{method} is Prefect 2's"):
        getattr(flow(body), method)


@pytest.mark.parametrize("name", ["get_client", "pause_flow_run", "serve", "deploy"])
def test_prefect_top_level_names_are_refused_with_a_reason(name: str) -> None:
    with pytest.raises(NotSupported, match=rf"headrace\.{name} is Prefect 2's"):
        getattr(headrace, name)


def test_retry_condition_fn_stops_retries_when_it_says_no() -> None:
    attempts: list[str] = []

    @task(retries=3, retry_condition_fn=lambda task, task_run, state: "retry" in state.message)
    def fails(kind: str) -> None:
        attempts.append(kind)
        raise ValueError(kind)

    @flow
    def f() -> None:
        fails("retry me", return_state=True)
        fails("final", return_state=True)

    assert f(return_state=True).message == "2/2 states failed."
    assert attempts.count("retry me") == 4 and attempts.count("final") == 1


# The options of Prefect 2.14.21's decorators, from inspect.signature(prefect.task / flow).
PREFECT_TASK_OPTIONS = [
    "name", "description", "tags", "version", "cache_key_fn", "cache_expiration",
    "task_run_name", "retries", "retry_delay_seconds", "retry_jitter_factor", "persist_result",
    "result_storage", "result_storage_key", "result_serializer", "cache_result_in_memory",
    "timeout_seconds", "log_prints", "refresh_cache", "on_completion", "on_failure",
    "retry_condition_fn", "viz_return_value",
]  # fmt: skip
PREFECT_FLOW_OPTIONS = [
    "name", "version", "flow_run_name", "retries", "retry_delay_seconds", "task_runner",
    "description", "timeout_seconds", "validate_parameters", "persist_result", "result_storage",
    "result_serializer", "cache_result_in_memory", "log_prints", "on_completion", "on_failure",
    "on_cancellation", "on_crashed",
]  # fmt: skip


def test_every_prefect_decorator_option_is_accepted() -> None:
    import inspect

    from headrace import Flow, Task

    task_params = inspect.signature(Task.__init__).parameters
    flow_params = inspect.signature(Flow.__init__).parameters
    assert [o for o in PREFECT_TASK_OPTIONS if o not in task_params] == []
    assert [o for o in PREFECT_FLOW_OPTIONS if o not in flow_params] == []
    copied = task(body).with_options(**{"retries": 2, "cache_result_in_memory": True})
    assert copied.retries == 2
