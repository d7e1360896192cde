"""kopf wiring: which events lead to a reconcile. All decisions live in `flowruns.py`.

FlowRun events and pod events trigger a reconcile at once; a daemon per unfinished FlowRun
wakes at its deadline, its retry time and every progress interval, so timeouts do not
depend on an event arriving.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import kopf

from headrace.controller import config as config_module
from headrace.controller.deployments import DeploymentReconciler
from headrace.controller.flowruns import FlowRunReconciler
from headrace.controller.kube import Kube
from headrace.controller.podspec import LABEL_RUN
from headrace.controller.problems import ProblemLog
from headrace.crd.models import FINAL_STATES, GROUP, VERSION

logger = logging.getLogger("headrace.operator")

problems = ProblemLog(logger)
_reconciler: FlowRunReconciler | None = None
_deployments: DeploymentReconciler | None = None


def reconciler() -> FlowRunReconciler:
    global _reconciler
    if _reconciler is None:
        config = config_module.load()
        _reconciler = FlowRunReconciler(Kube(max_in_flight=config.max_api_requests), config)
    return _reconciler


def deployments() -> DeploymentReconciler:
    global _deployments
    if _deployments is None:
        flowruns = reconciler()
        _deployments = DeploymentReconciler(flowruns.kube, flowruns.config)
    return _deployments


def _unfinished(status: kopf.Status, **_: Any) -> bool:
    return status.get("state") not in FINAL_STATES


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.enabled = False  # we post our own Events, with our own reasons
    settings.persistence.finalizer = f"{GROUP}/operator"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.watching.server_timeout = 60
    settings.execution.max_workers = 16


@kopf.on.event(GROUP, VERSION, "flowruns")
def on_flowrun_event(
    type: str, namespace: str | None, name: str, status: kopf.Status, **_: Any
) -> None:
    if type == "DELETED" or namespace is None or not _unfinished(status):
        return
    try:
        reconciler().reconcile(namespace, name)
    except Exception as error:  # the daemon looks again soon
        problems.problem("reconciling a FlowRun", error)


@kopf.on.event("", "v1", "pods", labels={LABEL_RUN: kopf.PRESENT})
def on_pod_event(
    type: str, body: kopf.Body, meta: kopf.Meta, namespace: str | None, **_: Any
) -> None:
    if namespace is None:
        return
    # A pod being deleted holds its exit code until our finalizer is removed: hand it over.
    last_seen = dict(body) if type == "DELETED" or meta.get("deletionTimestamp") else None
    for owner in meta.get("ownerReferences") or []:
        if owner.get("kind") == "FlowRun" and owner.get("apiVersion", "").startswith(GROUP):
            try:
                reconciler().reconcile(namespace, owner["name"], last_seen)
            except Exception as error:  # the run's daemon looks again soon
                problems.problem("reconciling a FlowRun after a pod event", error)


async def _keep_reconciling(
    stopped: kopf.DaemonStopped,
    reconcile: Callable[[str, str], float | None],
    kind: str,
    namespace: str | None,
    name: str,
) -> None:
    """Reconcile, sleep as long as the object asks (capped), repeat until it is done."""
    interval = reconciler().config.progress_interval_seconds
    while namespace is not None and not stopped:
        try:
            wait = await asyncio.to_thread(reconcile, namespace, name)
        except Exception as error:
            problems.problem(f"reconciling a {kind}", error)
            wait = 2.0
        if wait is None:
            return
        await stopped.wait(min(wait, interval))


@kopf.daemon(GROUP, VERSION, "flowruns", when=_unfinished, cancellation_timeout=5)
async def watch_deadline(
    stopped: kopf.DaemonStopped, namespace: str | None, name: str, **_: Any
) -> None:
    """Wake at the run's deadline, its retry time and every progress interval."""
    await _keep_reconciling(stopped, reconciler().reconcile, "FlowRun", namespace, name)


@kopf.daemon(GROUP, VERSION, "deployments", cancellation_timeout=5)
async def run_schedule(
    stopped: kopf.DaemonStopped, namespace: str | None, name: str, **_: Any
) -> None:
    """Create scheduled runs on time, trim history and refresh the Deployment's counts."""
    await _keep_reconciling(stopped, deployments().reconcile, "Deployment", namespace, name)
