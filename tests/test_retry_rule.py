"""The one retry rule (headrace/retries.py) that task runs, flow runs and FlowRuns share."""

from __future__ import annotations

import pytest

from headrace.retries import exponential_backoff, jittered, nth_delay, resolve_delays


def test_a_list_is_used_in_order_its_last_delay_repeating() -> None:
    assert [nth_delay([1, 5], attempt) for attempt in (1, 2, 3)] == [1.0, 5.0, 5.0]
    assert nth_delay(2, 7) == 2.0
    assert nth_delay([], 1) == 0.0


def test_exponential_backoff_is_prefects() -> None:
    assert exponential_backoff(10)(3) == [10, 20, 40]
    assert len(exponential_backoff(1)(500)) == 50


def test_the_flowrun_backoff_doubles_and_is_capped() -> None:
    """What the operator waits before a FlowRun's next attempt (controller/flowruns.py)."""
    backoff = exponential_backoff(30)(100)
    assert [nth_delay(backoff, n, cap=86400) for n in (1, 2, 3)] == [30, 60, 120]
    assert nth_delay(backoff, 100, cap=86400) == 86400
    assert nth_delay(exponential_backoff(0)(100), 100, cap=86400) == 0


def test_a_callable_is_resolved_once_with_the_retries() -> None:
    assert resolve_delays(exponential_backoff(2), 3) == [2, 4, 8]
    assert resolve_delays(lambda retries: [retries], 4) == [4]
    with pytest.raises(ValueError, match="at most 50"):
        resolve_delays([1.0] * 51, 51)


def test_jitter_stays_within_the_factor() -> None:
    assert jittered(10, None) == 10
    draws = [jittered(10, 0.5) for _ in range(200)]
    assert min(draws) >= 5 and max(draws) <= 15 and len(set(draws)) > 1
