"""Which build of the task-run hot path is installed: the image ships it compiled with mypyc
(pyproject.toml's hook lists the modules), a source install runs it as pure Python. Users and
benchmarks need to know which one they run or measure."""

from __future__ import annotations

from importlib.machinery import EXTENSION_SUFFIXES

from headrace.engine import task_run


def is_compiled() -> bool:
    return (task_run.__file__ or "").endswith(tuple(EXTENSION_SUFFIXES))


def engine_build() -> str:
    """The build's name, as `headrace --version` prints it."""
    return "compiled with mypyc" if is_compiled() else "pure Python"
