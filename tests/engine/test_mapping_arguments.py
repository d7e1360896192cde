"""Which arguments `Task.map` maps over.

Mirrors Prefect 2.14.21 as observed: a list default is passed whole, `**kwargs` values are
mapped, a dict is mapped over its keys.
"""

from __future__ import annotations

from typing import Any

from headrace import flow, task, unmapped


@task
def with_default(x: int, y: list[int] = [10, 20]) -> tuple[int, list[int]]:  # noqa: B006
    return x, y


@task
def with_kwargs(x: int, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    return x, kwargs


@task
def echo(d: object) -> object:
    return d


def test_a_default_is_not_mapped() -> None:
    @flow
    def f() -> list[object]:
        return [m.result() for m in with_default.map([1, 2])]

    assert f() == [(1, [10, 20]), (2, [10, 20])]


def test_a_passed_list_is_mapped_but_not_an_unmapped_one() -> None:
    @flow
    def f() -> list[object]:
        return [m.result() for m in with_default.map([1, 2], [3, 4])] + [
            m.result() for m in with_default.map([1], unmapped([5]))
        ]

    assert f() == [(1, 3), (2, 4), (1, [5])]


def test_kwargs_values_are_mapped() -> None:
    @flow
    def f() -> list[object]:
        return [m.result() for m in with_kwargs.map([1, 2], z=[3, 4], w=unmapped("k"))]

    assert f() == [(1, {"z": 3, "w": "k"}), (2, {"z": 4, "w": "k"})]


def test_a_dict_is_mapped_over_its_keys_and_a_string_is_not_mapped() -> None:
    @flow
    def f() -> tuple[list[object], list[object]]:
        keys = [m.result() for m in echo.map({"a": 1, "b": 2})]
        return keys, [m.result() for m in with_kwargs.map([1, 2], s="ab")]

    keys, with_string = f()
    assert keys == ["a", "b"]
    assert with_string == [(1, {"s": "ab"}), (2, {"s": "ab"})]
