"""The one retry rule: how long to wait after a failed attempt, for task runs, flow runs and
the operator's FlowRun attempts alike.

Prefect 2.14's: `retry_delay_seconds` is a number, a list used in order (its last delay
repeating), or a callable of the number of retries that gives the list (`exponential_backoff`);
`retry_jitter_factor` spreads the retries of many runs apart. A FlowRun's retries wait
`exponential_backoff(retryDelaySeconds)`, capped.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

MAX_DELAYS = 50  # Prefect 2's limit on a task's list of retry delays

Delays = float | Sequence[float]


def retry_count(retries: int | None) -> int:
    """A task's or flow's `retries`: None is none, as Prefect 2's default; below 0 is refused."""
    count = retries or 0
    if count < 0:
        raise ValueError(f"retries must be 0 or more, got {count}")
    return count


def exponential_backoff(backoff_factor: float) -> Callable[[int], list[float]]:
    """Prefect 2's `prefect.tasks.exponential_backoff`: waits of factor * 2**n, n from 0."""

    def delays(retries: int) -> list[float]:
        return [backoff_factor * 2**n for n in range(min(retries, MAX_DELAYS))]

    return delays


def resolve_delays(delays: Delays | Callable[[int], Sequence[float]], retries: int) -> Delays:
    """The delays a task keeps: a callable is called with its retries, once, as in Prefect 2."""
    resolved = delays(retries) if callable(delays) else delays
    if isinstance(resolved, Sequence) and len(resolved) > MAX_DELAYS:
        raise ValueError(f"retry_delay_seconds takes at most {MAX_DELAYS} delays")
    return resolved


def nth_delay(delays: Delays, attempt: int, cap: float | None = None) -> float:
    """The wait after failed attempt `attempt` (from 1): a list is used in order, its last
    delay repeating; never more than `cap`."""
    if isinstance(delays, Sequence):
        delay = float(delays[min(attempt - 1, len(delays) - 1)]) if delays else 0.0
    else:
        delay = float(delays or 0)
    return delay if cap is None else min(delay, cap)


def jittered(delay: float, factor: float | None) -> float:
    """`delay` spread by `factor` ("thundering herd"): at most delay * (1 + factor) as in
    Prefect 2, drawn evenly so the mean stays the delay (Prefect's draw is a clamped
    exponential; see docs/prefect-compatibility.md)."""
    if not factor:
        return delay
    return random.uniform(max(0.0, delay * (1 - factor)), delay * (1 + factor))
