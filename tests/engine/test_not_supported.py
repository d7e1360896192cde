"""Prefect 2 options and names Headrace lacks fail naming the difference, never silently.

The option and name lists are Prefect 2.14.21's (`inspect.signature(prefect.task)` etc.);
`retry_condition_fn` is supported and mirrors Prefect 2.14 as observed: called with
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
