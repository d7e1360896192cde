"""Wiring: watch events fill the caches and queue reconciles; decisions live elsewhere.

Every FlowRun and pod event (from the operator's informers, controller/informer.py) updates
its copy in the cache (controller/cache.py) and puts the run's key in the work queue
(controller/workqueue.py), whose workers reconcile it from the cache. A reconcile that wants
another look (deadline, retry, progress) queues itself again with a delay, so no run has a
thread, a task or a poll of its own. kopf runs the lifecycle, watches the Deployments and
keeps a daemon for each one's schedule: they are few.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable
from typing import Any

import kopf

from headrace.controller import metrics
from headrace.controller.cache import key_of
from headrace.controller.deployments import DeploymentReconciler
from headrace.controller.flowruns import FlowRunReconciler
from headrace.controller.informer import Informer
from headrace.controller.kube import Conflict, Kube
from headrace.controller.podspec import LABEL_RUN
from headrace.controller.problems import ProblemLog
from headrace.controller.workqueue import WorkQueue
from headrace.crd.models import GROUP, VERSION
from headrace.settings import Settings
from headrace.states import FINAL_STATES

logger = logging.getLogger("headrace.operator")

problems = ProblemLog(logger)
_reconciler: FlowRunReconciler | None = None
_deployments: DeploymentReconciler | None = None
_queue: WorkQueue | None = None


def reconciler() -> FlowRunReconciler:
    global _reconciler
    if _reconciler is None:
        config = Settings.from_environ()
        _reconciler = FlowRunReconciler(Kube(max_in_flight=config.max_api_requests), config)
    return _reconciler


def new_run_workers(workers: int) -> int:
    """Workers that only make new runs' pods, besides the `workers` that reconcile any run
    (see controller/workqueue.py): half as many, at least one."""
    return max(1, workers // 2)


def queue() -> WorkQueue:
    global _queue
    if _queue is None:
        flowruns = reconciler()

        def reconcile(key: Hashable) -> float | None:
            assert isinstance(key, tuple)
            return flowruns.reconcile(str(key[0]), str(key[1]))

        def failed(key: Hashable, error: Exception) -> None:
            if not isinstance(error, Conflict):  # the cache has the newer copy: just again
                problems.problem("reconciling a FlowRun", error)

        workers = flowruns.config.max_reconciles
        _queue = WorkQueue(
            reconcile,
            workers,
            failed,
            on_wait=metrics.queue_waited,
            first_workers=new_run_workers(workers),
        )
        _queue.start()
    return _queue


def deployments() -> DeploymentReconciler:
    global _deployments
    if _deployments is None:
        flowruns = reconciler()
        _deployments = DeploymentReconciler(flowruns.kube, flowruns.config)
    return _deployments


# The namespaces the operator watches (empty: all), set by `headrace operator`.
watched_namespaces: list[str] = []


# FlowRuns and pods, watched by the operator's own informers (controller/informer.py).
_informers: list[Informer] = []


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    kube = reconciler().kube
    kube.prime_deployments(watched_namespaces)
    scopes: list[str | None] = list(watched_namespaces) or [None]
    _informers[:] = [
        kube.informer(plural, namespace, changed, problems, LABEL_RUN)
        for namespace in scopes
        for plural, changed in (("flowruns", flowrun_changed), ("pods", pod_changed))
    ]
    for informer in _informers:
        informer.prime()
    for run in kube.flowruns:  # every run gets a first look, as after any restart
        queue().add(key_of(run))
    for informer in _informers:
        informer.start()
    settings.posting.enabled = False  # we post our own Events, with our own reasons
    settings.persistence.finalizer = f"{GROUP}/operator"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.watching.server_timeout = 60
    settings.execution.max_workers = 16


# Called as the operator starts to stop: leader election lets its Lease go here, so the
# successor starts at once rather than when kopf has finished closing its watches.
on_stop: list[Callable[[], None]] = []


@kopf.on.cleanup()
def stop_queue(**_: Any) -> None:
    for informer in _informers:
        informer.stop()
    if _queue is not None:
        _queue.stop()
    if _reconciler is not None:
        _reconciler.kube.events.flush(timeout=5)  # the last runs' Events, told before exiting
    for callback in on_stop:
        callback()


def flowrun_changed(kind: str, run: dict[str, Any]) -> None:
    store = reconciler().kube.flowruns
    if kind == "DELETED":
        store.remove(run)
        reconciler().forget(run)
    elif not store.put(run):
        return  # older than what our own write already told us
    new = not (run.get("status") or {}).get("state")
    if new:
        reconciler().seen_new(*key_of(run))
    queue().add(key_of(run), first=new)  # a new run's pod goes before others' progress


@kopf.on.event(GROUP, VERSION, "deployments")
async def on_deployment_event(type: str, body: kopf.Body, **_: Any) -> None:
    store = reconciler().kube.deployments
    if type == "DELETED":
        store.remove(dict(body))
    else:
        store.put(dict(body))


def _awaited(kube: Kube, meta: dict[str, Any]) -> bool:
    """Whether an unfinished FlowRun owns the pod (it may not have read the outcome yet)."""
    namespace = meta.get("namespace") or ""
    for owner in meta.get("ownerReferences") or []:
        run = kube.flowruns.get(namespace, owner.get("name", ""))
        if run is not None and run["metadata"].get("uid") == owner.get("uid"):
            return (run.get("status") or {}).get("state") not in FINAL_STATES
    return False


def pod_changed(kind: str, pod: dict[str, Any]) -> None:
    kube = reconciler().kube
    meta = pod["metadata"]
    if kind == "DELETED":
        # Its last copy holds the exit code: kept while a run still waits for that.
        kube.pods.remove(pod, keep_last=_awaited(kube, meta))
    else:
        kube.pods.put(pod)
    namespace = meta.get("namespace") or ""
    for owner in meta.get("ownerReferences") or []:
        if owner.get("kind") == "FlowRun" and owner.get("apiVersion", "").startswith(GROUP):
            queue().add((namespace, owner["name"]))


async def _keep_reconciling(
    stopped: kopf.DaemonStopped,
    reconcile: Callable[[str, str], float | None],
    kind: str,
    namespace: str | None,
    name: str,
) -> None:
    """Reconcile, sleep as long as the object asks (capped), repeat until it is done."""
    interval = reconciler().config.progress_interval
    while namespace is not None and not stopped:
        try:
            wait = await asyncio.to_thread(reconcile, namespace, name)
        except Exception as error:
            problems.problem(f"reconciling a {kind}", error)
            wait = 2.0
        if wait is None:
            return
        await stopped.wait(min(wait, interval))


@kopf.daemon(GROUP, VERSION, "deployments", cancellation_timeout=5)
async def run_schedule(
    stopped: kopf.DaemonStopped, namespace: str | None, name: str, **_: Any
) -> None:
    """Create scheduled runs on time, trim history and refresh the Deployment's counts."""
    await _keep_reconciling(stopped, deployments().reconcile, "Deployment", namespace, name)
