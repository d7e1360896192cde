"""Times as Kubernetes and Headrace write them (RFC 3339, UTC, `Z`), and as Unix time: the one
parser and formatter of the operator, the CLI and the settings."""

from __future__ import annotations

import datetime as dt

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # metav1.MicroTime's form; any RFC 3339 time parses


def parse_time(value: str | None) -> float | None:
    """An ISO 8601 / RFC 3339 time (`Z` or an offset) as Unix time; None for none. ValueError
    if it is not a time."""
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def iso(timestamp: float) -> str:
    """Unix time as RFC 3339 in UTC, to the microsecond."""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime(_FORMAT)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime(_FORMAT)
