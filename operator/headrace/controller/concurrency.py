"""A Deployment's concurrency limit: which waiting FlowRuns may start, and what to do with the rest.

Pure decisions over the Deployment's FlowRuns, so they can be tested without a cluster and
re-made from scratch on every reconcile.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from headrace.states import FINAL_STATES


def is_active(run: dict[str, Any]) -> bool:
    """Holds a slot: it has a pod (an attempt) and has not ended."""
    status = run.get("status") or {}
    return bool(status.get("attempts")) and status.get("state") not in FINAL_STATES


def is_waiting(run: dict[str, Any]) -> bool:
    status = run.get("status") or {}
    return not status.get("attempts") and status.get("state") not in FINAL_STATES


def _age_key(run: dict[str, Any]) -> tuple[str, str]:
    meta = run["metadata"]
    return meta.get("creationTimestamp") or "", meta["name"]


@dataclass
class Admission:
    start: bool
    # One of: Admitted, WaitingForConcurrencySlot, ConcurrencyLimitForbid, Replacing
    reason: str
    message: str
    replace: list[str] = field(default_factory=list)  # runs to cancel (policy Replace)


def admit(
    name: str, runs: list[dict[str, Any]], limit: int | None, policy: str | None
) -> Admission:
    """May FlowRun `name` (not started yet) start, given its Deployment's other runs?"""
    policy = policy or "Queue"
    if limit is None or policy == "Allow":
        return Admission(True, "Admitted", "no concurrency limit applies")
    others = [run for run in runs if run["metadata"]["name"] != name]
    active = sorted((run for run in others if is_active(run)), key=_age_key)
    free = limit - len(active)
    if policy == "Queue":
        me = next((run for run in runs if run["metadata"]["name"] == name), None)
        ahead = [
            run
            for run in others
            if is_waiting(run) and me is not None and _age_key(run) < _age_key(me)
        ]
        if free > len(ahead):
            return Admission(True, "Admitted", f"slot {len(active) + 1} of {limit}")
        return Admission(
            False,
            "WaitingForConcurrencySlot",
            f"waiting for a concurrency slot: {len(active)} of {limit} running, "
            f"{len(ahead)} queued ahead",
        )
    if free > 0:
        return Admission(True, "Admitted", f"slot {len(active) + 1} of {limit}")
    if policy == "Forbid":
        return Admission(
            False,
            "ConcurrencyLimitForbid",
            f"not started: {len(active)} of {limit} runs are running and concurrencyPolicy "
            "is Forbid",
        )
    # Replace: end the oldest runs that hold slots, then start once they are gone.
    replace = [run["metadata"]["name"] for run in active[: len(active) - limit + 1]]
    return Admission(
        False, "Replacing", f"cancelling {', '.join(replace)} to take its slot", replace
    )
