"""Friendly generated run names, as Prefect users are used to (`brave-otter`)."""

from __future__ import annotations

import random

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
