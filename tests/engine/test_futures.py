"""Futures, `wait_for`, and Prefect-2 semantics for failed upstream runs."""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from typing import Any

import pydantic
import pytest

from headrace import HeadraceFuture, UpstreamTaskError, flow, task
from headrace.states import State


class Boom(Exception):
    pass


@task
def inc(x: int) -> int:
    return x + 1


@task
def fail(message: str = "boom") -> int:
    raise Boom(message)


def test_future_result_wait_and_state() -> None:
    gate = threading.Event()

    @task
    def gated() -> str:
        assert gate.wait(10)
        return "opened"

    @flow
    def f() -> None:
        future = gated.submit()
        assert isinstance(future, HeadraceFuture)
        assert not future.done()
        assert future.wait(timeout=0.05) is None  # not final yet
        assert future.state.name in {"Pending", "Running"}
        with pytest.raises(TimeoutError):
            future.result(timeout=0.05)
        gate.set()
        state = future.wait()
        assert state is future.state and state.is_completed()
        assert future.done()
        assert future.result() == "opened"

    f()


def test_future_of_a_failed_run_raises_its_exception() -> None:
    @flow
    def f() -> None:
        future = fail.submit("bad input")
        with pytest.raises(Boom, match="bad input"):
            future.result()
        assert isinstance(future.result(raise_on_failure=False), Boom)
        assert future.state.is_failed()

    f(return_state=True)


def test_futures_as_arguments_pass_their_results() -> None:
    @task
    def total(values: list[int], extra: dict[str, int]) -> int:
        return sum(values) + sum(extra.values())

    @flow
    def f() -> int:
        a = inc.submit(1)
        b = inc.submit(a)
        return total(values=[a, b, 10], extra={"k": inc.submit(b)})

    assert f() == 2 + 3 + 10 + 4


def test_failed_upstream_makes_downstream_not_ready_and_it_never_runs(load_record) -> None:
    ran = []

    @task
    def downstream(x: int) -> int:
        ran.append(x)
        return x

    @flow
    def f() -> None:
        bad = fail.submit()
        later = downstream.submit(bad)
        even_later = downstream.submit(later)
        assert later.wait().name == "NotReady"
        assert even_later.wait().name == "NotReady"
        with pytest.raises(UpstreamTaskError, match="fail-0"):
            later.result()

    state = f(return_state=True)
    assert ran == []
    assert state.is_failed()
    record = load_record()
    names = {run["name"]: run["state"]["name"] for run in record.task_runs.values()}
    assert names == {"fail-0": "Failed", "downstream-0": "NotReady", "downstream-1": "NotReady"}


def test_direct_call_with_a_failed_upstream_is_not_ready_too() -> None:
    ran = []

    @task
    def downstream(x: int) -> int:
        ran.append(x)
        return x

    @flow
    def f() -> None:
        with pytest.raises(UpstreamTaskError):
            downstream(fail.submit())

    assert f(return_state=True).is_failed()  # the failed submitted run fails the flow
    assert ran == []


def test_wait_for_orders_runs_without_passing_data() -> None:
    order = []

    @task
    def step(name: str, delay: float = 0.0) -> str:
        time.sleep(delay)
        order.append(name)
        return name

    @flow
    def f() -> None:
        first = step.submit("first", 0.2)
        second = step.submit("second", wait_for=[first])
        step("third", wait_for=second)

    f()
    assert order == ["first", "second", "third"]


def test_wait_for_a_failed_run_makes_the_waiter_not_ready() -> None:
    ran = []

    @task
    def after() -> None:
        ran.append(1)

    @flow
    def f() -> None:
        state = after.submit(wait_for=[fail.submit()], return_state=True)
        assert state.name == "NotReady"

    assert f(return_state=True).is_failed()
    assert ran == []


def test_flow_returning_none_with_a_failed_submitted_task_fails() -> None:
    @flow
    def f() -> None:
        inc.submit(1)
        fail.submit("left behind")

    state = f(return_state=True)
    assert state.is_failed()
    assert state.message == "1/2 states failed."  # Prefect 2.14's wording
    with pytest.raises(Boom, match="left behind"):
        f()


def test_flow_returning_none_is_failed_by_a_failed_direct_call_it_caught() -> None:
    @flow
    def caught() -> None:
        inc(1)
        state = fail("caught but still failed", return_state=True)
        assert state.is_failed()

    @flow
    def caught_then_returned() -> str:
        fail(return_state=True)
        return "value"

    state = caught(return_state=True)
    assert state.is_failed() and state.message == "1/2 states failed."
    with pytest.raises(Boom, match="caught but still failed"):
        state.result()
    assert caught_then_returned() == "value"


def test_flow_returning_a_value_is_not_failed_by_an_unrelated_failed_task() -> None:
    @flow
    def f() -> str:
        fail.submit()
        return "done"

    assert f() == "done"


def test_flow_returning_a_failed_future_fails() -> None:
    @flow
    def f() -> object:
        inc.submit(1)
        return fail.submit("returned")

    with pytest.raises(Boom, match="returned"):
        f()


def test_flow_exceptions_propagate_to_the_caller() -> None:
    @flow
    def f() -> None:
        raise Boom("from the flow body")

    with pytest.raises(Boom, match="from the flow body"):
        f()
    state = f(return_state=True)
    assert state.is_failed() and isinstance(state.result(raise_on_failure=False), Boom)


def test_flow_waits_for_unfinished_submitted_runs_before_it_ends() -> None:
    finished = []

    @task
    def slowish(i: int) -> None:
        time.sleep(0.1)
        finished.append(i)

    @flow
    def f() -> None:
        for i in range(5):
            slowish.submit(i)

    assert f(return_state=True).is_completed()
    assert sorted(finished) == [0, 1, 2, 3, 4]


def test_flow_returning_nested_futures_returns_their_states() -> None:
    """Prefect 2.14: returned futures become their final states, wherever they are nested;
    only a top-level list, tuple or set of states decides the flow's state (a dict does not)."""

    @flow
    def f() -> object:
        a = inc.submit(1)
        return {"a": a, "list": [inc.submit(a), (a, 5)]}

    value = f()
    assert isinstance(value, dict)
    assert value["a"].is_completed() and value["a"].result() == 2
    assert value["list"][0].result() == 3 and value["list"][1][1] == 5


@task
def slow_inc(x: int) -> int:
    time.sleep(0.05)  # still running when its downstream is submitted
    return x + 1


@task
def echo(value: object) -> object:
    return value


@dataclasses.dataclass
class Point:
    x: object
    y: int = 0
    seen: list[object] = dataclasses.field(default_factory=list)
    label: str = dataclasses.field(init=False, default="")

    def __post_init__(self) -> None:
        self.seen.append(self.x)


@dataclasses.dataclass
class Box:
    items: list[int]


@dataclasses.dataclass(frozen=True)
class Frozen:
    x: object


class Model(pydantic.BaseModel):
    x: object = pydantic.Field(alias="ex")
    y: int = 0
    _note: str = pydantic.PrivateAttr(default="")


def test_futures_inside_dataclasses_and_models_pass_their_results() -> None:
    """Prefect 2.14 (observed): fields are walked like a dict's values, and a new instance is
    made by the class itself, so `__post_init__` sees the result."""
    model = Model(ex=None, y=3)
    model._note = "kept"

    @flow
    def f() -> tuple[object, object, object]:
        point = Point(slow_inc.submit(1), y=2)
        point.label = "p"
        model.x = slow_inc.submit(10)
        return echo(point), echo.submit(Frozen(slow_inc.submit(20))).result(), echo(model)

    point, frozen, made = f()
    assert isinstance(point, Point) and (point.x, point.y, point.label) == (2, 2, "p")
    assert point.seen[-1] == 2  # made anew: __post_init__ ran with the result
    assert frozen == Frozen(21)
    assert isinstance(made, Model) and (made.x, made.y, made._note) == (11, 3, "kept")
    assert isinstance(model.x, HeadraceFuture)  # the caller's own object is left as it was


def test_a_record_is_made_anew_for_each_run_as_in_prefect() -> None:
    given = Point(1)

    @flow
    def f() -> object:
        return echo(given)

    made = f()
    assert isinstance(made, Point) and made is not given and made.x == 1
    assert made.seen == [1, 1]  # made by its class: __post_init__ ran again (Prefect 2 too)
    assert given.seen == [1]  # the caller's own record is untouched


def test_a_task_that_changes_its_inputs_does_not_change_its_callers() -> None:
    """Prefect 2.14 (observed): each task run gets its own lists, dicts, sets, tuples and
    records at every depth, upstream results and defaults included; other objects and the
    containers Prefect does not walk into are shared."""

    @task
    def grow(value: Any) -> int:
        if isinstance(value, list):
            value.append(9)
            return len(value)
        if isinstance(value, dict):
            value["inner"].append(9)
            return len(value["inner"])
        value.items.append(9)  # a Box, or a plain object
        return len(value.items)

    @task
    def made() -> list[int]:
        return [1]

    @task
    def with_default(x: int, seen: list[int] = []) -> list[int]:  # noqa: B006
        seen.append(x)
        return seen

    class Plain:
        def __init__(self) -> None:
            self.items: list[int] = []

    @flow
    def f() -> dict[str, object]:
        shared, inner, box, plain = [1], [1], Box([1]), Plain()
        counts = [grow(shared), grow.submit(shared).result()]
        counts += [future.result() for future in grow.map([shared, shared])]
        grow({"inner": inner})
        grow((box,)[0])
        upstream = made.submit()
        counts += [grow(upstream), grow(upstream)]
        grow(plain), grow(plain)
        keyed: collections.defaultdict[str, list[int]] = collections.defaultdict(list)
        grow({"inner": keyed["a"]})
        return {
            "counts": counts,
            "caller's": (shared, inner, box.items, upstream.result()),
            "defaults": (with_default(1), with_default(2)),
            "plain": plain.items,
            "tuple": echo((shared,))[0] is shared,
        }

    got = f()
    assert got["counts"] == [2, 2, 2, 2, 2, 2]
    assert got["caller's"] == ([1], [1], [1], [1])
    assert got["defaults"] == ([1], [2])
    assert got["plain"] == [9, 9]  # not a container: shared, as in Prefect
    assert got["tuple"] is False


@dataclasses.dataclass
class Scaled:
    x: int
    scale: dataclasses.InitVar[int]

    def __post_init__(self, scale: int) -> None:
        self.x *= scale


def test_a_record_its_class_cannot_make_again_is_passed_as_it_is() -> None:
    # Its fields alone cannot make it (the InitVar): Prefect 2.14 fails the run; Headrace
    # gives the task the caller's record.
    given = Scaled(2, 3)

    @flow
    def f() -> object:
        return echo(given)

    assert f() is given and given.x == 6


def test_a_model_made_anew_keeps_which_fields_its_caller_set() -> None:
    # Prefect 2.14 (observed): `m.dict(exclude_unset=True)` in the task is `{'a': 1}`.
    @task
    def dumped(model: Model) -> dict[str, object]:
        return model.model_dump(exclude_unset=True)

    @flow
    def f() -> tuple[dict[str, object], dict[str, object]]:
        return dumped(Model(ex=1)), dumped(Model(ex=slow_inc.submit(1)))

    assert f() == ({"x": 1}, {"x": 2})


def test_containers_prefect_does_not_walk_are_shared_unless_a_future_is_inside() -> None:
    @task
    def add_key(counts: collections.defaultdict[str, int]) -> int:
        counts["added"] += 1
        return len(counts)

    @flow
    def f() -> tuple[int, dict[str, int]]:
        counts: collections.defaultdict[str, int] = collections.defaultdict(int)
        return add_key(counts), dict(counts)

    assert f() == (1, {"added": 1})


def test_dict_subclasses_keep_their_kind_and_futures_as_keys_resolve() -> None:
    @flow
    def f() -> tuple[object, object]:
        counts: collections.defaultdict[str, object] = collections.defaultdict(list)
        counts["a"] = slow_inc.submit(1)
        return echo(counts), echo({slow_inc.submit(5): "six"})

    counts, keyed = f()
    assert isinstance(counts, collections.defaultdict) and counts["a"] == 2
    assert counts["missing"] == []  # its default factory came along
    assert keyed == {6: "six"}


def test_flow_returning_a_dataclass_with_futures_returns_their_states() -> None:
    @flow
    def f() -> Point:
        return Point(inc.submit(1))

    point = f()
    assert isinstance(point, Point) and isinstance(point.x, State)
    assert point.x.result() == 2


@dataclasses.dataclass(eq=False)
class Node:
    value: object
    children: list[Node] = dataclasses.field(default_factory=list)
    parent: Node | None = None


def test_arguments_that_hold_themselves_are_walked_once() -> None:
    """Cycles (a tree with parent links, a list inside itself) end the walk instead of
    looping; the futures in them still resolve."""
    root = Node("root")
    root.children.append(Node(None, parent=root))
    looped: list[object] = [1]
    looped.append(looped)
    outcome: list[object] = []

    @flow
    def f() -> object:
        root.children[0].value = slow_inc.submit(1)
        return echo(root), echo([slow_inc.submit(2), looped])

    worker = threading.Thread(target=lambda: outcome.append(f()), daemon=True)
    worker.start()
    worker.join(30)
    assert outcome, "the flow did not finish: the walk looped"
    (got_root, (three, got_looped)) = outcome[0]  # type: ignore[misc]
    assert got_root.children[0].value == 2  # a new tree, whose parent link is the old root
    assert three == 3 and got_looped is not looped  # the run's own copy
    assert got_looped[0] == 1 and got_looped[1] is looped  # met again inside itself: kept
