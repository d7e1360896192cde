"""Prefect 2's variables (`from headrace import variables; variables.get("name")`), read from
the environment: Prefect variable `name` is `HEADRACE_VARIABLE_<NAME>`, which a FlowRun sets in
`pod.env` (from a ConfigMap, say). As in Prefect, one that is not set gives the default, and
`get` gives a coroutine in async code.
"""

from __future__ import annotations

import os
import re
from typing import cast

from headrace.engine.context import given, wants_coroutine
from headrace.settings import variable_env_name

_NAME = re.compile(r"[a-z0-9_]+")  # Prefect's rule for variable names


def get(name: str, default: str | None = None, *, _sync: bool | None = None) -> str | None:
    """The variable's text, or `default` when it is not set (or `name` is not a variable
    name Prefect allows, which it could never find). `_sync=True`: the text even in async
    code, as Prefect 2.16 on."""
    if not isinstance(name, str):
        raise TypeError(f"a variable's name must be a str, not {type(name).__name__}")
    value = os.environ.get(variable_env_name(name), default) if _NAME.fullmatch(name) else default
    if wants_coroutine(_sync):  # Prefect's `get` is sync-compatible
        return cast("str | None", given(value))
    return value


__all__ = ["get"]
