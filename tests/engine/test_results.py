"""Persisted results: serializers, storage URLs, loading by URI, very deep nesting."""

from __future__ import annotations

import asyncio
import datetime
import json
import sys
import time
import uuid
from pathlib import Path

import pytest

from headrace import flow, task
from headrace.results import load_result
from headrace.results.store import read_header


class Point:
    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


def run_and_get_state(tsk, *args):
    box = []

    @flow
    def f() -> None:
        box.append(tsk(*args, return_state=True))

    f(return_state=True)  # a failed task fails the flow too; the test wants the task's state
    return box[0]


@pytest.mark.parametrize(
    ("serializer", "value", "expected_format"),
    [
        ("json", {"a": [1, 2.5, "x", None, True]}, "json"),
        ("pickle", {"a": (1, 2), "when": datetime.date(2024, 1, 2)}, "pickle"),
        ("auto", {"plain": [1, 2, 3]}, "json"),
        ("auto", {"tuple": (1, 2)}, "pickle"),  # a tuple would come back a list from JSON
        ("auto", Point(1, 2), "pickle"),
    ],
)
def test_file_storage_round_trip(
    tmp_path: Path, serializer: str, value: object, expected_format: str
) -> None:
    storage = (tmp_path / "store").as_uri()

    @task(persist_result=True, result_storage=storage, result_serializer=serializer)
    def produce(v: object) -> object:
        return v

    state = run_and_get_state(produce, value)
    assert state.result_uri is not None and state.result_uri.startswith(storage)
    assert Path(state.result_uri.removeprefix("file://")).exists()
    assert load_result(state.result_uri) == value
    assert read_header(state.result_uri)["serializer"] == expected_format
    if expected_format == "json":
        body = Path(state.result_uri.removeprefix("file://")).read_bytes().split(b"\n", 1)[1]
        assert json.loads(body) == value


def test_json_serializer_rejects_what_json_cannot_hold() -> None:
    @task(persist_result=True, result_serializer="json")
    def produce() -> object:
        return Point(1, 2)

    state = run_and_get_state(produce)
    assert state.is_failed()
    assert "persisting the result failed" in state.message


def test_unknown_serializer_is_a_clear_error() -> None:
    @task(persist_result=True, result_serializer="yaml")
    def produce() -> int:
        return 1

    @flow
    def f() -> int:
        return produce()

    with pytest.raises(ValueError, match="result_serializer='yaml' is not known"):
        f()


def test_results_are_not_persisted_unless_asked() -> None:
    @task
    def produce() -> int:
        return 1

    state = run_and_get_state(produce)
    assert state.result_uri is None
    assert state.result() == 1


def test_persist_results_env_default(monkeypatch, headrace_home: Path) -> None:
    monkeypatch.setenv("HEADRACE_PERSIST_RESULTS", "1")

    @task
    def produce() -> int:
        return 5

    state = run_and_get_state(produce)
    assert state.result_uri is not None
    assert state.result_uri.startswith((headrace_home / "results").as_uri())
    assert load_result(state.result_uri) == 5


def test_flow_level_persist_and_storage_apply_to_its_tasks(tmp_path: Path) -> None:
    storage = (tmp_path / "flow-store").as_uri()
    states = []

    @task
    def produce() -> list[int]:
        return [1, 2]

    @flow(persist_result=True, result_storage=storage)
    def f() -> list[int]:
        states.append(produce(return_state=True))
        return produce()

    state = f(return_state=True)
    assert states[0].result_uri.startswith(storage)
    assert state.result_uri.startswith(storage)  # the flow's own result too
    assert load_result(state.result_uri) == [1, 2]


def test_memory_fsspec_storage() -> None:
    storage = f"memory://headrace-test-{uuid.uuid4().hex}"

    @task(persist_result=True, result_storage=storage)
    def produce() -> dict[str, int]:
        return {"in": 1}

    @flow(result_storage=storage)
    def f() -> object:
        return produce(return_state=True).result_uri

    uri = f()
    assert uri.startswith("memory://")
    assert load_result(uri) == {"in": 1}


def test_async_task_results_persist() -> None:
    @task(persist_result=True)
    async def produce() -> str:
        await asyncio.sleep(0)
        return "async value"

    @flow
    async def f() -> object:
        state = await produce(return_state=True)
        return state.result_uri

    uri = asyncio.run(f())
    assert load_result(uri) == "async value"


# -- nesting far deeper than the recursion limit -------------------------------------------

DEPTH = 20_000


def deep_list(depth: int = DEPTH) -> list:
    root: list = []
    node = root
    for _ in range(depth - 1):
        child: list = []
        node.append(child)
        node = child
    node.append("bottom")
    return root


def depth_of(value: list) -> int:
    depth = 0
    while isinstance(value, list):
        depth += 1
        value = value[0]
    assert value == "bottom"
    return depth


@pytest.fixture
def deep() -> list:
    assert sys.getrecursionlimit() < DEPTH
    return deep_list()


def test_deep_flow_parameter(deep: list, load_record) -> None:
    @flow
    def f(value: list) -> int:
        return depth_of(value)

    assert f(deep) == DEPTH
    record = load_record()  # the record holds the parameter and stays readable
    assert record.root["state"]["name"] == "Completed"
    assert depth_of(record.root["parameters"]["value"]) == DEPTH


def test_deep_task_input(deep: list) -> None:
    @task
    def measure(value: list) -> int:
        return depth_of(value)

    @task
    def passthrough(value: list) -> list:
        return value

    @flow
    def f() -> list[int]:
        upstream = passthrough.submit(deep)
        return [measure(deep), measure.submit(upstream).result(), measure([upstream])]

    assert f() == [DEPTH, DEPTH, DEPTH + 1]


@pytest.mark.parametrize("serializer", ["auto", "json", "pickle"])
def test_deep_persisted_result(deep: list, serializer: str) -> None:
    @task(persist_result=True, result_serializer=serializer)
    def produce() -> list:
        return deep

    state = run_and_get_state(produce)
    assert state.is_completed(), state
    assert depth_of(load_result(state.result_uri)) == DEPTH


def test_deep_flow_result(deep: list) -> None:
    @flow(persist_result=True)
    def f() -> list:
        return deep

    state = f(return_state=True)
    assert state.result_uri is not None
    assert depth_of(load_result(state.result_uri)) == DEPTH


def test_result_storage_key_names_the_result_file(headrace_home: Path) -> None:
    """Mirrors Prefect 2.14.21 as observed: `out-{parameters[x]}-{flow_run.flow_name}.json`
    with persist_result=True wrote `out-3-f.json` under result storage; without
    persist_result nothing was written."""

    @task(
        persist_result=True,
        result_storage_key="out-{parameters[x]}-{flow_run.flow_name}.json",
        result_serializer="json",
    )
    def doubled(x: int) -> int:
        return x * 2

    @task(result_storage_key="np-{parameters[x]}.json")
    def unpersisted(x: int) -> int:
        return x

    @flow
    def f() -> tuple[str | None, str | None]:
        kept = doubled(3, return_state=True)
        dropped = unpersisted(3, return_state=True)
        return kept.result_uri, dropped.result_uri

    kept, dropped = f()
    assert kept is not None and kept.endswith("/out-3-f.json")
    assert dropped is None
    assert list(headrace_home.rglob("out-3-f.json")) and not list(headrace_home.rglob("np-*"))


def test_cache_result_in_memory_false_keeps_results_only_in_storage() -> None:
    """Mirrors Prefect 2.14.21 as observed: with cache_result_in_memory=False on a task and a
    flow, each state's data is a persisted reference (no value in memory), and result() still
    gives 5 and 7, read back from storage."""

    @task(cache_result_in_memory=False)
    def five() -> int:
        return 5

    @flow(cache_result_in_memory=False)
    def f() -> int:
        state = five(return_state=True)
        assert not state.has_data() and state.result_uri is not None
        assert state.result() == 5 and five() == 5
        return 7

    state = f(return_state=True)
    assert not state.has_data() and state.result_uri is not None
    assert state.result() == 7


class Unreadable:
    """Writes a result no process can load: its name is no known serializer's."""

    name = "unreadable"
    extension = "bin"

    def dumps(self, value: object) -> bytes:
        return b"x"

    def loads(self, data: bytes) -> object:
        raise AssertionError("never called: the name is looked up first")


def test_an_upstream_result_that_cannot_be_loaded_crashes_the_run_that_needs_it() -> None:
    """Not a hang: the downstream run is freed on the worker that ran its upstream one, whose
    result is only in storage and fails to load there."""

    @task(persist_result=True, cache_result_in_memory=False, result_serializer=Unreadable())
    def slow_up() -> int:
        time.sleep(0.3)  # the downstream run is submitted, and waits, meanwhile
        return 1

    @task
    def down(x: int) -> int:
        return x

    @flow(timeout_seconds=20)
    def f() -> tuple[str, str]:
        state = down.submit(slow_up.submit()).wait()
        return state.name, state.message

    name, message = f()
    assert name == "Crashed"
    assert "resolving inputs failed" in message
    assert "'unreadable' is not known" in message


def test_cache_result_in_memory_false_refuses_persist_result_false() -> None:
    with pytest.raises(ValueError, match="only in result storage"):
        task(cache_result_in_memory=False, persist_result=False)(lambda: 1)
