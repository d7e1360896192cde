"""How often the operator may write a live run's status when nothing urgent changed."""

from __future__ import annotations

from typing import Any, cast

from headrace.controller.flowruns import (
    FIRST_STATUS_DELAY,
    WAITABLE_WRITES_PER_SECOND,
    FlowRunReconciler,
)
from headrace.controller.kube import Kube
from headrace.settings import Settings


def reconciler() -> FlowRunReconciler:
    # No request is made here: only the reconciler's bookkeeping of status writes is used.
    return FlowRunReconciler(cast(Kube, None), Settings(progress_interval=2.0))


def run(name: str) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name}, "status": {}}


def test_a_new_runs_first_status_waits_a_moment_after_its_pod_is_made() -> None:
    owner = reconciler()
    assert owner.until_due("ns", "a") == 0.0  # never seen (e.g. after a restart): write now
    owner.pod_made("ns", "a")
    assert 0.9 * FIRST_STATUS_DELAY < owner.until_due("ns", "a") <= FIRST_STATUS_DELAY
    owner.written("ns", "a", final=True)  # its end: nothing more waits
    assert owner.until_due("ns", "a") == 0.0


def test_few_live_runs_refresh_at_the_progress_interval() -> None:
    owner = reconciler()
    for index in range(10):
        owner.written("ns", f"run-{index}", final=False)
    assert owner.write_interval() == 2.0
    assert 1.9 < owner.until_due("ns", "run-0") <= 2.0


def test_many_live_runs_share_a_budget_of_status_writes() -> None:
    owner = reconciler()
    live = 1000
    for index in range(live):
        owner.written("ns", f"run-{index}", final=False)
    interval = owner.write_interval()
    assert interval == live / WAITABLE_WRITES_PER_SECOND  # 20 s each: 50 writes a second
    owner.written("ns", "run-0", final=False)
    assert owner.until_due("ns", "run-0") > 0.95 * interval
    for index in range(live):  # deleted, or ended: they no longer count
        owner.forget(run(f"run-{index}"))
    assert owner.write_interval() == 2.0
