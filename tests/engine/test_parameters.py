"""Flow parameters: binding, pydantic validation and coercion, **kwargs flows."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

from headrace import ParameterValidationError, flow, task
from headrace.exceptions import (
    HeadraceError,
    ParameterBindError,
    ParameterTypeError,
    PrefectException,
)


def test_parameters_are_coerced_to_their_annotations() -> None:
    @flow
    def f(x: int, ratio: float = 0.5, names: list[str] | None = None) -> tuple:
        return x, ratio, names

    assert f("3") == (3, 0.5, None)
    assert f(x="4", ratio="2", names=("a",)) == (4, 2.0, ["a"])


def test_numbers_for_a_str_become_text_as_under_pydantic_v1() -> None:
    # A FlowRun's parameters come from YAML: `version: 1.0` is a float there. Prefect 2
    # (pydantic v1) gave the flow "1.0"; pydantic v2 alone refuses it.
    @flow
    def f(version: str, tags: list[str], labels: dict[str, str]) -> tuple:
        return version, tags, labels

    assert f(1.0, [1, 2], {"a": 3}) == ("1.0", ["1", "2"], {"a": "3"})


def test_a_union_takes_its_first_member_that_fits_as_under_pydantic_v1() -> None:
    @flow
    def f(x: int | str, y: str | int, z: int | None = None) -> tuple:
        return x, y, z

    assert f("5", 5, "7") == (5, "5", 7)
    assert f("five", 5) == ("five", "5", None)


def test_a_float_with_a_fraction_for_an_int_is_refused_not_cut() -> None:
    # pydantic v1 gave 3 for 3.7, silently; v2's error is kept (documented).
    @flow
    def f(count: int) -> int:
        return count

    assert f(3.0) == 3
    with pytest.raises(ParameterTypeError, match=r"'count'.*fractional"):
        f(3.7)


def test_invalid_parameter_raises_naming_the_parameter(load_record) -> None:
    @flow
    def f(count: int, label: str = "x") -> int:
        return count

    with pytest.raises(ParameterTypeError, match="'count'") as caught:
        f("three")
    assert "three" in str(caught.value)
    assert isinstance(caught.value, ParameterValidationError)
    assert isinstance(caught.value, ValueError)
    record = load_record()
    assert record.root["state"]["name"] == "Failed"


def test_invalid_parameter_with_return_state_gives_a_failed_state() -> None:
    @flow
    def f(count: int) -> int:
        return count

    state = f("nope", return_state=True)
    assert state.is_failed()
    with pytest.raises(ParameterValidationError):
        state.result()


class Config(BaseModel):
    size: int


def test_nested_model_errors_name_the_field() -> None:
    @flow
    def f(config: Config) -> int:
        return config.size

    assert f({"size": "5"}) == 5
    with pytest.raises(ParameterValidationError, match=r"config\.size"):
        f({"size": "big"})


def test_missing_or_unknown_arguments_are_type_errors_as_in_prefect() -> None:
    @flow
    def f(x: int) -> int:
        return x

    with pytest.raises(ParameterBindError, match=r"'f' cannot take .*missing a required"):
        f()
    with pytest.raises(TypeError, match=r"cannot take .*unexpected keyword argument 'y'"):
        f(1, y=2)
    with pytest.raises(ParameterValidationError, match="too many positional"):
        f(1, 2)


@task
def one(x: int) -> int:
    return x


def test_task_arguments_that_do_not_fit_raise_parameter_bind_error() -> None:
    @flow
    def f(how: str) -> None:
        if how == "call":
            one(1, 2)
        elif how == "submit":
            one.submit(y=1)
        else:
            one.map([1], [2])

    for how in ("call", "submit", "map"):
        with pytest.raises(ParameterBindError, match="function 'one' cannot take"):
            f(how)


def test_prefect_exception_catches_headrace_errors() -> None:
    @flow
    def f(x: int) -> int:
        return x

    with pytest.raises(PrefectException):
        f("not a number")
    assert PrefectException is HeadraceError


def test_validation_can_be_turned_off() -> None:
    @flow(validate_parameters=False)
    def f(x: int) -> object:
        return x

    assert f("3") == "3"


def test_kwargs_flow_receives_its_keywords(load_record) -> None:
    @flow
    def f(a: int, **options: object) -> dict[str, object]:
        return {"a": a, **options}

    assert f(1, b=2, c="three") == {"a": 1, "b": 2, "c": "three"}
    params = load_record().root["parameters"]
    assert params["a"] == 1
    assert params["options"] == {"b": 2, "c": "three"}


def test_async_flow_parameters_are_validated_too() -> None:
    @flow
    async def f(x: int) -> int:
        return x * 2

    assert asyncio.run(f("21")) == 42
    with pytest.raises(ParameterValidationError, match="'x'"):
        asyncio.run(f("many"))


def test_parameters_are_recorded(load_record) -> None:
    @flow
    def f(x: int, tags: list[str]) -> None:
        pass

    f("7", ["a", "b"])
    assert load_record().root["parameters"] == {"x": 7, "tags": ["a", "b"]}


def test_a_bare_container_parameter_is_the_callers_own_object() -> None:
    """Prefect 2.14 (observed): a flow annotated `x: list` or `x: dict` gets the caller's
    object, so changes show to the caller; `list[int]` gets a validated copy there too."""

    @flow
    def f(items: list, table: dict, numbers: list[int], pair: list) -> None:  # type: ignore[type-arg]
        items.append(9)
        table["k"] = 1
        numbers.append(9)
        pair.append(9)

    items: list[int] = [1]
    table: dict[str, int] = {}
    numbers = [1]
    f(items, table, numbers, (1, 2))  # type: ignore[arg-type]
    assert items == [1, 9] and table == {"k": 1}
    assert numbers == [1]
