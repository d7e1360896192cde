"""Checked by mypy in test_typing.py, never run: the types users see, as Prefect 2 gives them.

`task()` gives R, `.submit()` HeadraceFuture[R], `return_state=True` State[R], `.map()` a list
of futures; the plain call checks arguments against the function's parameters.
"""

from typing import reveal_type

from headrace import flow, task
from headrace.futures import HeadraceFuture
from headrace.states import State


@task
def double(x: int) -> int:
    return 2 * x


@flow
def total(n: int) -> int:
    return n


@flow
async def atotal(n: int) -> int:
    return n


async def callers() -> None:
    reveal_type(total(1))  # flow: int
    reveal_type(total(1, return_state=True))  # flow: State[int]
    reveal_type(await atotal(1))  # async flow: int
    reveal_type(await atotal(1, return_state=True))  # async flow: State[int]
    total("one")  # misuse: flow parameter type


@flow
def pipeline() -> None:
    reveal_type(double(1))  # R: int
    reveal_type(double.submit(1))  # HeadraceFuture[int]
    reveal_type(double.submit(1).result())  # Any: result() is a coroutine in an async flow
    reveal_type(double(1, return_state=True))  # State[int]
    reveal_type(double.submit(1, return_state=True))  # State[int]
    reveal_type(double.map([1, 2]))  # list[HeadraceFuture[int]]
    reveal_type(double.map([1, 2], return_state=True))  # list[State[int]]
    reveal_type(double(1, wait_for=[double.submit(2)]))  # int
    future: HeadraceFuture[int] = double.submit(1)
    state: State[int] = double(1, return_state=True)
    reveal_type(state.result())  # int
    reveal_type(future)
    double("one")  # misuse: a str for an int
    double(1, 2)  # misuse: too many arguments
    wrong: HeadraceFuture[str] = double.submit(1)  # noqa: F841 - misuse: the wrong result type
