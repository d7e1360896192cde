"""Run recursive C routines (json, pickle) on data nested deeper than the recursion limit.

The C encoders count their own recursion against `sys.getrecursionlimit()`, so a parameter
nested 10,000 levels deep raises RecursionError on an ordinary thread. Such calls are retried
on a helper thread with a large stack and a raised limit, which keeps the common case free.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_DEEP_STACK_BYTES = 512 * 1024 * 1024
_DEEP_RECURSION_LIMIT = 1_000_000
_deep_lock = threading.Lock()


def call_deep(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call `fn`; if it overflows the recursion limit, call it again where it cannot."""
    try:
        return fn(*args, **kwargs)
    except RecursionError:
        pass
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append((True, fn(*args, **kwargs)))
        except BaseException as error:  # handed back to the caller below
            outcome.append((False, error))

    with _deep_lock:
        old_limit = sys.getrecursionlimit()
        old_stack = threading.stack_size()
        threading.stack_size(_DEEP_STACK_BYTES)
        try:
            sys.setrecursionlimit(_DEEP_RECURSION_LIMIT)
            worker = threading.Thread(target=target, name="headrace-deep", daemon=True)
            worker.start()
        finally:
            threading.stack_size(old_stack)
        worker.join()
        sys.setrecursionlimit(old_limit)
    ok, value = outcome[0]
    if ok:
        return value  # type: ignore[no-any-return]
    raise value
