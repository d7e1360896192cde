"""Wrappers that change how the engine treats a task argument, as Prefect 2's do.

`unmapped(x)`: every mapped run gets `x` whole. `allow_failure(f)`: wait for `f` but run even
if it failed, receiving its exception as the value. `quote(x)`: pass `x` as it is, futures
inside it unresolved and not waited for.
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class BaseAnnotation(Generic[T]):
    """A wrapped argument; `unquote()` gives the value back."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def unquote(self) -> T:
        return self.value

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and bool(self.value == other.value)

    def __hash__(self) -> int:
        return hash((type(self), id(self.value)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.value!r})"


class unmapped(BaseAnnotation[T]):
    """An argument of `Task.map` that every mapped run receives whole."""

    __slots__ = ()


class allow_failure(BaseAnnotation[T]):
    """An upstream future (or a structure holding some) whose failure does not stop the run."""

    __slots__ = ()


class quote(BaseAnnotation[T]):
    """A value passed to the task as it is: futures inside are neither resolved nor awaited."""

    __slots__ = ()
