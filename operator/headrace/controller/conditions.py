"""Status conditions in kstatus style, so `kubectl wait` and Flux/Argo CD read run health."""

from __future__ import annotations

from typing import Any

from headrace.states import FINAL_STATES
from headrace.timestamps import now_iso


def _condition(
    kind: str, status: str, reason: str, message: str, generation: int | None
) -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
    }


POD_LOCAL_STORAGE = (
    "results and the run record are written inside the flow pod ({url}) and are lost with "
    "it; set spec.resultStorage (or the chart's config.defaultResultStorage) to object "
    "storage such as s3://bucket/headrace"
)


def run_conditions(
    state: str,
    message: str,
    generation: int | None,
    previous: list[dict[str, Any]] | None,
    reason: str | None = None,
    pod_local_storage: str | None = None,
) -> list[dict[str, Any]]:
    """Ready, Succeeded, Reconciling and Stalled for a FlowRun in `state`, and ResultsKept
    (False) when it writes to `pod_local_storage`, a URL inside the pod.

    Succeeded is Unknown until the run ends, then True or False: what
    `kubectl wait --for=condition=Succeeded` needs. Ready is True only for a Completed run.
    """
    final = state in FINAL_STATES
    ok = state == "Completed"
    why = reason or state
    conditions = [
        _condition("Ready", "True" if ok else "False", why, message, generation),
        _condition(
            "Succeeded",
            ("True" if ok else "False") if final else "Unknown",
            why,
            message,
            generation,
        ),
        _condition("Reconciling", "False" if final else "True", why, message, generation),
        _condition("Stalled", "True" if final and not ok else "False", why, message, generation),
    ]
    if pod_local_storage:
        note = POD_LOCAL_STORAGE.format(url=pod_local_storage)
        conditions.append(_condition("ResultsKept", "False", "PodLocalStorage", note, generation))
    before = {c["type"]: c for c in previous or []}
    stamp = now_iso()
    for condition in conditions:
        old = before.get(condition["type"])
        unchanged = old is not None and old.get("status") == condition["status"]
        condition["lastTransitionTime"] = (
            old.get("lastTransitionTime") if unchanged and old else stamp
        )
    return conditions
