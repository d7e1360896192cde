"""Friendly generated run names, as Prefect users are used to (`brave-otter`)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

_ADJECTIVES = (
    "amber",
    "brave",
    "calm",
    "daring",
    "eager",
    "fancy",
    "gentle",
    "hasty",
    "icy",
    "jolly",
    "keen",
    "lively",
    "merry",
    "nimble",
    "olive",
    "proud",
    "quick",
    "rapid",
    "silent",
    "tidy",
    "upbeat",
    "vivid",
    "witty",
    "young",
    "zesty",
)
_NOUNS = (
    "alder",
    "beaver",
    "brook",
    "cedar",
    "crane",
    "delta",
    "eddy",
    "falcon",
    "ferry",
    "heron",
    "kestrel",
    "lark",
    "mill",
    "otter",
    "pike",
    "rapids",
    "reed",
    "salmon",
    "sluice",
    "stream",
    "swift",
    "trout",
    "weir",
    "willow",
    "wren",
)


def generate_name() -> str:
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}"


def custom_name(naming: str | Callable[[], str], parameters: dict[str, Any]) -> str:
    """A `flow_run_name`/`task_run_name`: a template filled from the parameters, or a callable
    called in the new run's context (so it may read `headrace.runtime`), as in Prefect 2."""
    if callable(naming):
        name = naming()
        if not isinstance(name, str):
            raise TypeError(f"a run name callable must return a str, got {name!r}")
        return name
    try:
        return naming.format(**parameters)
    except (KeyError, IndexError) as missing:
        raise ValueError(
            f"run name template {naming!r} names {missing}, which is not a parameter"
        ) from None
