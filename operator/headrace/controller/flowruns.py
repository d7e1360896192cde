"""Reconciling one FlowRun: level-triggered, from its status and its pod, never from memory.

Every call reads the FlowRun and the current attempt's pod and moves the run one step on:
create the pod, report it running, stop it at its deadline or on cancel, retry or finish.
The pod name is fixed by the attempt number, so a restarted operator adopts the pod it finds
instead of making a second one, and the deadline lives in the status.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from headrace.controller import metrics
from headrace.controller.concurrency import admit
from headrace.controller.conditions import run_conditions
from headrace.controller.daskspec import (
    DASK_CLUSTER_LABEL,
    build_dask_scheduler_pod,
    build_dask_service,
    build_dask_worker_pod,
    build_daskcluster,
    build_daskworkergroup,
    dask_names,
    scheduler_address,
)
from headrace.controller.deployments import SCHEDULED_TIME, runs_of
from headrace.controller.kube import Kube, api_message, retry_after
from headrace.controller.outcome import Outcome, bounded, lost_pod, pod_outcome
from headrace.controller.parameters import ParameterError, check_parameters
from headrace.controller.podspec import (
    OUTCOME_FINALIZER,
    RunPlan,
    build_pod,
    owns,
    pod_deadline,
    pod_local,
    pod_name,
    storage_urls,
)
from headrace.controller.storage import NotReadYet, StorageReads
from headrace.crd.models import DaskSpec, FlowSpec
from headrace.records.reader import record_url
from headrace.records.untrusted import engine_report, read_summary
from headrace.retries import exponential_backoff, nth_delay
from headrace.settings import Settings
from headrace.states import FINAL_STATES
from headrace.timestamps import iso, now_iso, parse_time

logger = logging.getLogger("headrace.operator")

PLURAL = "flowruns"
# A new run's first status is written this long after its pod is made, unless the pod ends
# sooner (then its end is the first and only write). Like the Job controller's batch period:
# under a burst, runs that end at once cost one status write, not two, and the pods of the
# runs applied after them wait less for the API server.
FIRST_STATUS_DELAY = 1.0
# Status writes that can wait (Running, progress) per second, over all live runs: with more
# live runs than this many per progress interval, each run's interval grows, so a thousand
# long runs do not cost the API server 500 writes a second. Ends, retries and problems are
# written at once whatever the budget.
WAITABLE_WRITES_PER_SECOND = 50.0
EVENT_STATES = FINAL_STATES | {"Retrying"}
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


# Retry backoff doubles per attempt (retries.exponential_backoff), but never waits longer.
MAX_RETRY_DELAY_SECONDS = 86400


class PlanError(Exception):
    """The run cannot be planned (e.g. its Deployment is missing); the message says why."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


def _scheduled_time(meta: dict[str, Any]) -> str | None:
    """When the run was scheduled: its schedule's annotation, if it is a time (anyone who may
    create a FlowRun may write it, and it goes into the pod), else its creation."""
    said = (meta.get("annotations") or {}).get(SCHEDULED_TIME)
    try:
        if said and len(said) <= 64 and parse_time(said) is not None:
            return str(said)
    except ValueError:
        pass
    created: str | None = meta.get("creationTimestamp")
    return created


def _duration(start: str | None, end: str | None) -> str | None:
    began, ended = parse_time(start), parse_time(end)
    if began is None or ended is None:
        return None
    return f"{max(0.0, ended - began):.1f}s"


class FlowRunReconciler:
    def __init__(self, kube: Kube, config: Settings) -> None:
        self.kube = kube
        self.config = config
        self.storage = StorageReads(config.readable_prefixes, config.storage_read_timeout)
        # When the next status write that can wait is due (monotonic), per live run.
        self._due: dict[tuple[str, str], float] = {}
        # When each new run's first watch event came (monotonic), until its pod is made.
        self._seen: dict[tuple[str, str], float] = {}
        self._timing_lock = threading.Lock()  # guards _due and _seen

    @metrics.reconciled("flowrun")
    def reconcile(self, namespace: str, name: str) -> float | None:
        """One step, from the cache; seconds until the run wants another look (None: final).

        The work queue runs at most one step per run at a time, on as many workers as
        HEADRACE_MAX_RECONCILES allows.
        """
        run = self.kube.flowruns.get(namespace, name)
        if run is None or run["metadata"].get("deletionTimestamp"):
            self._release_pods(namespace, name, None)  # its DELETED event forgets the rest
            return None
        if (run.get("status") or {}).get("state") in FINAL_STATES:
            self._release_pods(namespace, name, run["metadata"]["uid"])
            self._acknowledge(run)
            return None
        ref = run["spec"].get("deploymentRef")
        if ref and not (run.get("status") or {}).get("attempts"):
            # Not started yet: admission against the Deployment's limit is decided one run
            # at a time, so two runs never take the same last slot.
            with _lock(f"deployment:{namespace}/{ref['name']}"):
                return _Step(self, run).advance()
        return _Step(self, run).advance()

    def _acknowledge(self, run: dict[str, Any]) -> None:
        """An ended run is final: a later spec change (only cancel and timeoutSeconds may
        change) does nothing, and the status says it was seen, so `observedGeneration`
        stays true and health checks do not wait for a run that will never come."""
        generation = run["metadata"].get("generation")
        if generation is None or (run.get("status") or {}).get("observedGeneration") == generation:
            return
        meta = run["metadata"]
        # The cache keeps only the essentials of an ended run: read its conditions afresh.
        fresh = self.kube.get_custom(PLURAL, meta["namespace"], meta["name"])
        if fresh is None:
            return
        meta, status = fresh["metadata"], fresh.get("status") or {}
        generation = meta.get("generation")
        if status.get("observedGeneration") == generation:
            self.kube.flowruns.put(fresh)
            return
        conditions = [
            {**condition, "observedGeneration": generation}
            for condition in status.get("conditions") or []
        ]
        patch = {"observedGeneration": generation, "conditions": conditions}
        self.kube.patch_status(
            PLURAL, meta["namespace"], meta["name"], patch, meta.get("resourceVersion")
        )

    def forget(self, run: dict[str, Any]) -> None:
        """A deleted run, ended or not: nothing of it is read again."""
        url = (run.get("status") or {}).get("recordLocation")
        if url:
            self.storage.forget(url)
        meta = run["metadata"]
        self.written(meta.get("namespace") or "", meta["name"], final=True)
        self.take_seen(meta.get("namespace") or "", meta["name"])

    def written(self, namespace: str, name: str, final: bool) -> None:
        """A status write for the run: the next progress-only write waits an interval."""
        self._defer(namespace, name, None if final else self.write_interval())

    def write_interval(self) -> float:
        """Seconds between a run's waitable status writes: the progress interval, longer
        when the live runs would write more than WAITABLE_WRITES_PER_SECOND together."""
        return max(self.config.progress_interval, len(self._due) / WAITABLE_WRITES_PER_SECOND)

    def seen_new(self, namespace: str, name: str) -> None:
        """A new run's first watch event (for the operator's share of apply-to-pod)."""
        with self._timing_lock:
            if len(self._seen) < 100_000:  # bounded even if runs vanish before their pod
                self._seen.setdefault((namespace, name), time.monotonic())

    def take_seen(self, namespace: str, name: str) -> float | None:
        with self._timing_lock:
            return self._seen.pop((namespace, name), None)

    def pod_made(self, namespace: str, name: str) -> None:
        """The run's first pod was just made: its first status write waits a little."""
        self._defer(namespace, name, FIRST_STATUS_DELAY)

    def _defer(self, namespace: str, name: str, seconds: float | None) -> None:
        with self._timing_lock:
            if seconds is None:
                self._due.pop((namespace, name), None)
            else:
                self._due[(namespace, name)] = time.monotonic() + seconds

    def progress_due(self, namespace: str, name: str) -> bool:
        return self.until_due(namespace, name) <= 0

    def until_due(self, namespace: str, name: str) -> float:
        """Seconds until the run's next status write that can wait is due (0: now)."""
        with self._timing_lock:
            due = self._due.get((namespace, name))
        return 0.0 if due is None else max(0.0, due - time.monotonic())

    def _release_pods(self, namespace: str, name: str, keep_uid: str | None) -> None:
        """Drop our finalizer from the pods of a FlowRun that is gone or final: nothing is
        left to learn from them. `keep_uid` spares a live run's pods being deleted for it."""

        def releasable(pod: dict[str, Any]) -> bool:
            meta = pod["metadata"]
            if OUTCOME_FINALIZER not in (meta.get("finalizers") or []):
                return False
            refs = meta.get("ownerReferences") or []
            mine = [r for r in refs if r.get("kind") == "FlowRun" and r.get("name") == name]
            return bool(mine) and (keep_uid is None or not owns(keep_uid, pod))

        for pod in self.kube.pods.select(namespace, releasable):
            self.kube.remove_finalizer(pod, OUTCOME_FINALIZER)

    def resolve(self, run: dict[str, Any], deployment: dict[str, Any] | None) -> dict[str, Any]:
        """The run's effective spec: the FlowRun over its Deployment.

        It is kept in `status.resolved` from the first attempt on, so every retry runs what the
        first attempt ran, even if the Deployment changes or is deleted meanwhile.
        """
        spec = run["spec"]
        resolved: dict[str, Any] = {
            "flow": spec.get("flow"),
            "parameters": dict(spec.get("parameters") or {}),
            "retries": spec.get("retries"),
            "retryDelaySeconds": spec.get("retryDelaySeconds"),
            "resultStorage": spec.get("resultStorage"),
            "resultStorageSecret": spec.get("resultStorageSecret"),
            "taskRunner": spec.get("taskRunner"),
        }
        ref = spec.get("deploymentRef")
        if ref:
            if deployment is None:
                namespace = run["metadata"]["namespace"]
                raise PlanError(f"Deployment {ref['name']!r} not found in namespace {namespace!r}")
            dspec = deployment["spec"]
            resolved["flow"] = {
                "image": dspec["image"],
                "entrypoint": dspec["entrypoint"],
                "pod": dspec.get("pod"),
            }
            resolved["parameters"] = {**(dspec.get("parameters") or {}), **resolved["parameters"]}
            try:
                check_parameters(ref["name"], dspec.get("parameterSchema"), resolved["parameters"])
            except ParameterError as error:
                raise PlanError(str(error), error.reason) from None
            for key in ("retries", "resultStorage", "resultStorageSecret", "taskRunner"):
                if resolved[key] is None:
                    resolved[key] = dspec.get(key)
            resolved["deployment"] = ref["name"]
            resolved["deploymentVersion"] = dspec.get("version")
            resolved["timeoutSeconds"] = dspec.get("timeoutSeconds")
        if not resolved["flow"]:
            raise PlanError("spec names neither deploymentRef nor flow")
        return {key: value for key, value in resolved.items() if value is not None}

    def plan(
        self, run: dict[str, Any], resolved: dict[str, Any], attempt: int, deadline: float | None
    ) -> RunPlan:
        meta = run["metadata"]
        storage = resolved.get("resultStorage")
        secret = resolved.get("resultStorageSecret")
        dask = None
        dask_spec = (resolved.get("taskRunner") or {}).get("dask")
        if dask_spec is not None:
            try:
                dask = DaskSpec.model_validate(dask_spec)
            except ValidationError as error:
                problems = "; ".join(
                    f"spec.taskRunner.dask.{'.'.join(str(part) for part in item['loc'])}: "
                    f"{item['msg']}"
                    for item in error.errors()
                )
                raise PlanError(f"invalid {problems}", "InvalidSpec") from None
        return RunPlan(
            namespace=meta["namespace"],
            run_name=meta["name"],
            run_uid=meta["uid"],
            attempt=attempt,
            flow=FlowSpec.model_validate(resolved["flow"]),
            parameters=resolved.get("parameters") or {},
            result_storage=storage or self.config.default_result_storage,
            storage_secret=secret or (None if storage else self.config.default_storage_secret),
            deadline=deadline,
            deployment=resolved.get("deployment"),
            deployment_version=resolved.get("deploymentVersion"),
            scheduled_time=_scheduled_time(meta),
            dask=dask,
        )

    def settings_of(
        self, run: dict[str, Any], resolved: dict[str, Any]
    ) -> tuple[int | None, int, int]:
        """timeoutSeconds (the FlowRun's own, which may change while it runs, else its
        Deployment's), retries and retry delay."""
        timeout = run["spec"].get("timeoutSeconds")
        if timeout is None:
            timeout = resolved.get("timeoutSeconds")
        delay = resolved.get("retryDelaySeconds")
        return (
            timeout,
            resolved.get("retries") or 0,
            self.config.retry_delay_seconds if delay is None else delay,
        )


class _Step:
    """The state of one reconcile pass, and the status patch it builds."""

    def __init__(self, owner: FlowRunReconciler, run: dict[str, Any]) -> None:
        self.owner = owner
        self.kube = owner.kube
        self.run = run
        self.meta = run["metadata"]
        self.namespace = self.meta["namespace"]
        self.name = self.meta["name"]
        self.status: dict[str, Any] = dict(run.get("status") or {})
        self.patch: dict[str, Any] = {}
        self.reason: str | None = None  # a condition reason more precise than the state
        ref = run["spec"].get("deploymentRef")
        self.deployment = self.kube.deployments.get(self.namespace, ref["name"]) if ref else None

    # -- helpers ---------------------------------------------------------------------------
    def get(self, key: str) -> Any:
        return self.patch.get(key, self.status.get(key))

    def set_state(self, state: str, message: str, reason: str | None = None) -> None:
        message = bounded(message)  # it may quote engine output: never more than a screenful
        self.reason = reason
        if state != self.status.get("state"):
            # An Event for what a person wants told (how it ended, a retry); the steps in
            # between are in the status, and cost no API request each.
            if state in EVENT_STATES:
                kind = "Warning" if state in {"Failed", "Crashed", "TimedOut"} else "Normal"
                self.kube.event(self.run, kind, state, message or state)
            logger.info("FlowRun %s/%s is %s: %s", self.namespace, self.name, state, message)
        self.patch["state"] = state
        self.patch["message"] = message

    def attempts(self) -> list[dict[str, Any]]:
        if "attempts" not in self.patch:
            self.patch["attempts"] = [dict(a) for a in self.status.get("attempts") or []]
        attempts: list[dict[str, Any]] = self.patch["attempts"]
        return attempts

    def changed(self) -> bool:
        """Whether the patch changes anything (`attempts` is in it as soon as it is read)."""
        return any(k != "attempts" or v != self.status.get(k) for k, v in self.patch.items())

    def current_attempt(self) -> dict[str, Any] | None:
        number = self.get("attempt")
        for attempt in self.attempts():
            if attempt["number"] == number:
                return attempt
        return None

    def commit(self) -> None:
        if "attempts" in self.patch and self.patch["attempts"] == self.status.get("attempts"):
            del self.patch["attempts"]  # read, not changed
        if not self.patch:
            return
        state = self.get("state") or "Scheduled"
        self.patch["observedGeneration"] = self.meta.get("generation")
        record = self.get("recordLocation") or ""
        self.patch["conditions"] = run_conditions(
            state,
            self.get("message") or "",
            self.meta.get("generation"),
            self.status.get("conditions"),
            self.reason,
            record.rsplit("/runs/", 1)[0] if record and pod_local(record) else None,
        )
        self.kube.patch_status(
            PLURAL, self.namespace, self.name, self.patch, self.meta.get("resourceVersion")
        )
        self.owner.written(self.namespace, self.name, self.get("state") in FINAL_STATES)

    # -- the step --------------------------------------------------------------------------
    def advance(self) -> float | None:
        try:
            wait = self._advance()
        except Exception:
            self.commit()
            raise
        self.commit()
        metrics.step_committed(self.run, self.status, self.patch)
        return wait

    def resolved(self) -> dict[str, Any]:
        """The run's effective spec as fixed at its first attempt (see `resolve`)."""
        kept: dict[str, Any] | None = self.get("resolved")
        if kept is not None:
            return kept
        try:  # a run started before the operator kept it: resolve it now, if it still can
            return self.owner.resolve(self.run, self.deployment)
        except PlanError:
            return {}

    def _advance(self) -> float | None:
        owner = self.owner
        if self.get("state") is None:
            self.patch.update(
                attempt=1, state="Scheduled", message="accepted; creating the flow pod"
            )
            ref = self.run["spec"].get("deploymentRef")
            if ref:
                self.patch["deployment"] = ref["name"]
        attempt_no: int = self.get("attempt") or 1
        stopping = self.get("stopping")
        now = time.time()

        if self.run["spec"].get("cancel") and not stopping:
            stopping = self._stop("Cancelled", "cancel requested")

        next_at = parse_time(self.get("nextAttemptTime"))
        if next_at is not None and not stopping:
            if now < next_at:
                return next_at - now
            self.patch["nextAttemptTime"] = None

        attempt = self.current_attempt()
        current_pod = self.pod_name(attempt_no)
        # A pod deleted before we recorded its outcome: its last copy still has the exit code.
        live = self.kube.pods.get(self.namespace, current_pod)
        pod = live or self.kube.pods.last_seen(self.namespace, current_pod)
        if pod is not None and not owns(self.meta["uid"], pod):
            self._name_taken(current_pod)
            return None
        starting = attempt is None and not stopping and attempt_no == 1
        ref = self.run["spec"].get("deploymentRef")
        if starting and ref and self.deployment is None:
            # GitOps tools may apply the FlowRun before its Deployment: wait for it, visibly.
            message = f"waiting for Deployment {ref['name']!r}: not found in {self.namespace!r}"
            if self.get("message") != message:
                self.set_state("Scheduled", message, "DeploymentNotFound")
            else:
                self.reason = "DeploymentNotFound"
            return owner.config.progress_interval * 2
        if starting and self.deployment is not None and self._held_back():
            final = self.get("state") in FINAL_STATES
            return None if final else owner.config.progress_interval
        if attempt is None and not stopping:
            ended, wait, pod = self._start(attempt_no, now, pod)
            if ended:
                return wait
            live = self.kube.pods.get(self.namespace, current_pod)  # made just now, perhaps
            attempt = self.current_attempt()

        timeout, retries, retry_delay = owner.settings_of(self.run, self.resolved())
        if not stopping and attempt is not None:
            self._apply_timeout(attempt, timeout)
        deadline = parse_time(self.get("deadline"))
        if deadline is not None and now >= deadline and not stopping:
            stopping = self._stop("TimedOut", f"timeoutSeconds={timeout} passed")

        record = self.get("recordLocation")
        storage = owner.storage
        try:
            outcome = pod_outcome(
                pod,
                stopping,
                (lambda: storage.report(record, engine_report)) if record else None,
                now,
                owner.config.start_error_grace_seconds,
            )
        except NotReadYet:
            return 0.5  # the engine's report is being read from storage, off this slot
        if live is None and pod is not None and not stopping and not outcome.final:
            # Gone (its finalizer forced off) while its last copy says it still ran: no
            # exit will ever be reported, so the run would stay Running forever.
            outcome = lost_pod("the attempt's pod was deleted before it finished")
        if outcome.final and pod is not None:
            self.kube.remove_finalizer(pod, OUTCOME_FINALIZER)  # its outcome is now recorded
        if stopping and not outcome.final:
            return 1.0  # the pod is terminating: SIGTERM sent, SIGKILL after grace
        if not outcome.final and not stopping and not self.status and self._limit() is None:
            # Nothing written yet, the pod made less than FIRST_STATUS_DELAY ago: its end,
            # if it comes that soon, will be the first write (the next step builds it again).
            wait = self._until_due(now)
            if wait > 0:
                self.patch.clear()
                return wait
        if not outcome.final:
            return self._running(outcome, now)
        return self._ended(outcome, attempt_no, retries, retry_delay)

    def _start(
        self, attempt_no: int, now: float, pod: dict[str, Any] | None
    ) -> tuple[bool, float | None, dict[str, Any] | None]:
        """Make the attempt's pod, or adopt the one the cache already has, and record the
        attempt: (True, wait, _) when this step ends here, (False, _, pod) to read the pod on.

        A pod just made is recorded by a later step, FIRST_STATUS_DELAY after it was made,
        not by this one, unless a concurrency limit counts recorded attempts: under a burst,
        every new run's pod is made before any run's status is written, and a pod that has
        ended by then costs one status write, not two.
        """
        owner = self.owner
        # The deadline counts from the attempt's pod creation; the engine gets the same
        # instant, so on SIGTERM it knows whether it is being timed out or cancelled.
        try:
            resolved = self.get("resolved") or owner.resolve(self.run, self.deployment)
            timeout = owner.settings_of(self.run, resolved)[0]
            deadline = pod_deadline(pod) if pod is not None else None
            if deadline is None and timeout is not None:
                deadline = now + timeout
            plan = owner.plan(self.run, resolved, attempt_no, deadline)
            if pod is None and plan.dask is not None:
                address = self._dask_cluster(plan)
                if address is None:  # made just now, or its scheduler is not running yet
                    final = self.get("state") in FINAL_STATES
                    return True, None if final else 1.0, None
                plan = replace(plan, dask_address=address)
            body = build_pod(plan, owner.config) if pod is None else None
        except PlanError as error:
            self._fail(str(error), error.reason)
            return True, None, None
        except (ValueError, TypeError, RecursionError) as error:
            self._fail(f"cannot make the flow pod: {error}", "InvalidPod")
            return True, None, None
        started = pod["metadata"].get("creationTimestamp") if pod is not None else None
        if body is not None:
            try:
                pod, created = self.kube.create_pod(self.namespace, body)
            except ApiException as error:
                return True, self._pod_refused(error), None
            except (ValueError, TypeError, RecursionError) as error:
                # The client refused the pod before sending it: it cannot get better.
                self._fail(f"the flow pod is invalid: {error}", "InvalidPod")
                return True, None, None
            if not owns(self.meta["uid"], pod):
                self._name_taken(pod["metadata"]["name"])
                return True, None, None
            if created:
                seen = owner.take_seen(self.namespace, self.name)
                metrics.pod_created(self.run, attempt_no, seen)
                if self._limit() is None and not self.status:
                    self.patch.clear()  # recorded by a later step (see above)
                    self.owner.pod_made(self.namespace, self.name)
                    return True, FIRST_STATUS_DELAY, None
        assert pod is not None
        self.patch["resolved"] = resolved
        self.attempts().append(
            {
                "number": attempt_no,
                "podName": pod["metadata"]["name"],
                "state": "Pending",
                "startTime": started or now_iso(),
            }
        )
        _, records = storage_urls(plan.result_storage)
        self.patch["recordLocation"] = record_url(self.meta["uid"], records)
        self.patch["deadline"] = iso(deadline) if deadline is not None else None
        self.set_state(
            "Pending", f"attempt {attempt_no}: waiting for pod {pod['metadata']['name']}"
        )
        return False, None, pod

    # -- the run's Dask cluster (spec.taskRunner.dask) ---------------------------------------
    def _dask_cluster(self, plan: RunPlan) -> str | None:
        """Make what is missing of the run's Dask cluster; its scheduler's address once that
        runs (then the flow pod can be made), else None, with the wait in the status."""
        if self.owner.config.dask_clusters == "dask-kubernetes":
            return self._daskcluster(plan)
        dask = plan.dask
        assert dask is not None
        config = self.owner.config
        names = dask_names(plan.run_name, plan.run_uid, dask.workers)
        status = {"cluster": names.cluster, "dashboardService": names.service}
        scheduler = self.kube.pods.get(self.namespace, names.scheduler)
        if scheduler is None:
            scheduler, _ = self.kube.create_pod(
                self.namespace, build_dask_scheduler_pod(plan, dask, config)
            )
            self.kube.create_service(self.namespace, build_dask_service(plan, dask))
        if not owns(self.meta["uid"], scheduler):
            self._name_taken(names.scheduler)
            return None
        phase = (scheduler.get("status") or {}).get("phase")
        if phase in ("Failed", "Succeeded"):
            self._fail(
                f"the Dask scheduler pod {names.scheduler} ended ({phase}) before the flow "
                "started; is dask installed in the image (headrace[dask])?",
                "DaskClusterFailed",
            )
            return None
        address = scheduler_address(scheduler)
        if address is None:
            self.patch["dask"] = {**status, "state": "Starting"}
            message = f"starting the run's Dask cluster: waiting for pod {names.scheduler}"
            if self.get("message") != message:
                self.set_state("Pending", message)
            return None
        for index, name in enumerate(names.workers):
            if self.kube.pods.get(self.namespace, name) is None:
                self.kube.create_pod(
                    self.namespace, build_dask_worker_pod(plan, dask, index, address, config)
                )
        self.patch["dask"] = {
            **status,
            "scheduler": address,
            "workers": list(names.workers),
            "state": "Running",
        }
        return address

    def _daskcluster(self, plan: RunPlan) -> str | None:
        """The same with the dask-kubernetes operator: a DaskCluster (scheduler and Service),
        then, once its scheduler pod has an address, a DaskWorkerGroup pointed there."""
        dask = plan.dask
        assert dask is not None
        config = self.owner.config
        names = dask_names(plan.run_name, plan.run_uid, dask.workers)
        status = {
            "cluster": names.cluster,
            "dashboardService": f"{names.cluster}-scheduler",  # dask-kubernetes' name for it
            "kind": "DaskCluster",
        }
        try:
            if (self.get("dask") or {}).get("cluster") != names.cluster:
                self.kube.create_dask_resource(
                    "daskclusters", self.namespace, build_daskcluster(plan, dask, config)
                )
        except ApiException as error:
            if error.status not in (400, 404, 422):
                raise
            if error.status == 404:
                detail = (
                    "this cluster has no DaskCluster resource: install the dask-kubernetes "
                    "operator, or run the operator with HEADRACE_DASK_CLUSTERS=pods"
                )
            else:
                detail = f"the DaskCluster is invalid: {api_message(error)}"
            self._fail(detail, "DaskClusterFailed")
            return None
        selector = f"{DASK_CLUSTER_LABEL}={names.cluster},dask.org/component=scheduler"
        running = [
            address
            for pod in self.kube.list_pods(self.namespace, selector)
            if (address := scheduler_address(pod)) is not None
        ]
        if not running:
            self.patch["dask"] = {**status, "state": "Starting"}
            message = f"starting the run's Dask cluster: waiting for DaskCluster {names.cluster}"
            if self.get("message") != message:
                self.set_state("Pending", message)
            return None
        address = running[0]
        self.kube.create_dask_resource(
            "daskworkergroups",
            self.namespace,
            build_daskworkergroup(plan, dask, address, config),
        )
        self.patch["dask"] = {
            **status,
            "scheduler": address,
            "workerGroup": f"{names.cluster}-workers",
            "state": "Running",
        }
        return address

    def _delete_dask(self) -> None:
        """Delete the run's Dask pods and Service: its task runs end with it (the FlowRun's
        deletion would too, through their owner references)."""
        dask = self.get("dask")
        if not dask or dask.get("state") == "Deleted":
            return
        cluster = dask["cluster"]
        if dask.get("kind") == "DaskCluster":
            if dask.get("workerGroup"):
                self.kube.delete_dask_resource(
                    "daskworkergroups", self.namespace, dask["workerGroup"]
                )
            self.kube.delete_dask_resource("daskclusters", self.namespace, cluster)
            self.patch["dask"] = {**dask, "state": "Deleted"}
            return
        for name in [*(dask.get("workers") or []), f"{cluster}-scheduler"]:
            pod = self.kube.pods.get(self.namespace, name)
            if pod is None or owns(self.meta["uid"], pod):
                self.kube.delete_pod(self.namespace, name, 0)
        if dask.get("dashboardService"):
            self.kube.delete_service(self.namespace, dask["dashboardService"])
        self.patch["dask"] = {**dask, "state": "Deleted"}

    def _limit(self) -> int | None:
        """The Deployment's concurrencyLimit over this run, if any."""
        if self.deployment is None:
            return None
        limit: int | None = self.deployment["spec"].get("concurrencyLimit")
        return limit

    def _apply_timeout(self, attempt: dict[str, Any], timeout: int | None) -> None:
        """A timeoutSeconds changed while the attempt runs moves its deadline."""
        began = parse_time(attempt.get("startTime"))
        if began is None:
            return
        wanted = began + timeout if timeout is not None else None
        current = parse_time(self.get("deadline"))
        if wanted is None or current is None:
            if wanted != current:
                self.patch["deadline"] = iso(wanted) if wanted is not None else None
        elif abs(wanted - current) > 1.0:  # the first deadline was set a moment before
            self.patch["deadline"] = iso(wanted)

    def pod_name(self, attempt: int) -> str:
        return pod_name(self.name, self.meta["uid"], attempt)

    def _fail(self, message: str, reason: str | None = None) -> None:
        """End the run Failed before any pod of this attempt exists."""
        self.set_state("Failed", message, reason)
        self.patch["completionTime"] = now_iso()
        self._delete_dask()

    def _name_taken(self, name: str) -> None:
        """A pod of our name that we do not own: never adopt it, nor read its outcome."""
        self._fail(
            f"pod {name} exists but is not owned by this FlowRun; delete that pod, then "
            "re-create the FlowRun",
            "PodNameTaken",
        )

    def _pod_refused(self, error: ApiException) -> float | None:
        """The API server refused the pod: say why in the status, never hang silently.

        An invalid pod (400/422: e.g. a bad resource quantity) cannot get better, so the run
        fails; anything else (a ServiceAccount or quota not there yet) is retried.
        """
        busy = retry_after(error)
        if busy is not None:
            # Back-pressure (429 under a burst), not a problem of the run: ask again when the
            # server says, with no warning in the status or Events (and nothing written yet).
            if not self.status:
                self.patch.clear()
            return busy
        detail = api_message(error)
        if error.status in (400, 422):
            self._fail(f"the flow pod is invalid: {detail}", "InvalidPod")
            return None
        message = f"cannot create the flow pod yet (retrying): {detail}"
        if self.get("message") != message:
            self.kube.event(self.run, "Warning", "PodCreationFailed", message)
            self.set_state("Pending", message, "PodCreationFailed")
        else:
            self.reason = "PodCreationFailed"
        return self.owner.config.progress_interval * 2

    def _held_back(self, fresh: bool = False) -> bool:
        """Whether the Deployment's concurrency limit keeps this run from starting now."""
        assert self.deployment is not None
        limit, policy = self._limit(), self.deployment["spec"].get("concurrencyPolicy")
        if limit is None:
            return False
        runs = runs_of(self.kube, self.namespace, self.deployment["metadata"]["name"])
        admission = admit(self.name, runs, limit, policy)
        if admission.start:
            return False
        if admission.reason == "ConcurrencyLimitForbid" and not fresh:
            # Cancelling is final: decide it on the Deployment as it is now, not on the
            # watch's copy, which may not have the policy changed a moment before this run.
            name = self.deployment["metadata"]["name"]
            latest = self.kube.get_custom("deployments", self.namespace, name)
            if latest is not None:
                self.kube.deployments.put(latest)
                self.deployment = latest
                return self._held_back(fresh=True)
        if admission.reason == "ConcurrencyLimitForbid":
            self.set_state("Cancelled", admission.message, admission.reason)
            self.patch["completionTime"] = now_iso()
            return True
        for victim in admission.replace:
            self.kube.patch_custom(PLURAL, self.namespace, victim, {"spec": {"cancel": True}})
            self.kube.event(
                self.run, "Normal", "Replacing", f"cancelling {victim} to take its slot"
            )
        if self.get("message") != admission.message or self.get("state") != "Scheduled":
            self.set_state("Scheduled", admission.message, admission.reason)
        else:
            self.reason = admission.reason
        return True

    def _stop(self, state: str, why: str) -> str:
        """Ask the pod to end: SIGTERM now, SIGKILL after its grace period. A Dask cluster
        goes once the pod has ended (`_ended`): gone first, the flow would see its task runs
        fail and could end Failed before it reads the SIGTERM."""
        self.patch["stopping"] = state
        name = self.pod_name(self.get("attempt") or 1)
        pod = self.kube.pods.get(self.namespace, name)
        if pod is not None and owns(self.meta["uid"], pod):
            grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
            self.kube.delete_pod(self.namespace, name, grace)
            self.kube.event(self.run, "Normal", "Stopping", f"{why}: sending SIGTERM to pod {name}")
        self.patch["message"] = f"{why}; stopping the flow pod"
        return state

    def _until_due(self, now: float) -> float:
        """Seconds until the run's next waitable status write, but no later than its deadline
        (0: write now)."""
        wait = self.owner.until_due(self.namespace, self.name)
        deadline = parse_time(self.get("deadline"))
        if wait > 0 and deadline is not None:
            return max(0.05, min(wait, deadline - now))
        return wait

    def _running(self, outcome: Outcome, now: float) -> float:
        interval = self.owner.write_interval()  # the next progress read, too
        deadline = parse_time(self.get("deadline"))
        if outcome.state == "Running" and self.get("state") == "Pending" and not self.changed():
            # Pending was written less than an interval ago: Running waits for the next
            # interval, like progress, and a short run goes from Pending straight to its end
            # (one status write fewer per run; the start time is the pod's, not this write's).
            wait = self._until_due(now)
            if wait > 0:
                return wait
        if outcome.state == "Running":
            if self.get("startTime") is None:
                self.patch["startTime"] = outcome.started_at or now_iso()
            message = f"attempt {self.get('attempt') or 1} running"
            if self.get("state") != "Running" or self.status.get("message") != message:
                self.set_state("Running", message)
            attempt = self.current_attempt()
            if attempt is not None and attempt.get("state") != "Running":
                attempt["state"] = "Running"
            self._progress()
        elif outcome.state != self.get("state") or (
            (outcome.state != "Pending" or outcome.reason)
            and outcome.message != self.get("message")
        ):
            # (A pod still starting keeps the message that named it, unless it has a problem.)
            self.set_state(outcome.state, outcome.message, outcome.reason)
        if deadline is not None:
            return max(0.05, min(interval, deadline - now))
        return interval

    def _progress(self) -> None:
        url = self.get("recordLocation")
        if not url:
            return
        summary = self.owner.storage.summary(url, read_summary)
        if isinstance(summary, dict):
            progress = {
                "total": summary.get("total", 0),
                "counts": summary.get("counts", {}),
                "running": summary.get("running", [])[:20],
            }
            # Progress rides along with other changes; alone, it is written at most once a
            # progress interval, however many watch events bring the run back here.
            due = self.owner.progress_due(self.namespace, self.name)
            if progress != self.status.get("progress") and (self.changed() or due):
                self.patch["progress"] = progress

    def _ended(
        self, outcome: Outcome, attempt_no: int, retries: int, retry_delay: int
    ) -> float | None:
        attempt = self.current_attempt()
        if attempt is not None:
            attempt.update(
                state=outcome.state,
                message=bounded(outcome.message),
                finishTime=outcome.finished_at or now_iso(),
                exitCode=outcome.exit_code,
            )
        report = outcome.report
        counts = report.get("counts")
        if isinstance(counts, dict):
            self.patch["progress"] = {
                "total": sum(counts.values()),
                "counts": counts,
                "running": [],
            }
        if report.get("record"):
            self.patch["recordLocation"] = report["record"]
        retryable = outcome.state in {"Failed", "Crashed"} and not self.get("stopping")
        if retryable and attempt_no <= retries:
            backoff = exponential_backoff(retry_delay)(retries)
            delay = nth_delay(backoff, attempt_no, cap=MAX_RETRY_DELAY_SECONDS)
            self.patch.update(
                attempt=attempt_no + 1,
                nextAttemptTime=iso(time.time() + delay),
                startTime=None,
                deadline=None,
            )
            self.set_state(
                "Retrying",
                f"attempt {attempt_no} {outcome.state}: {outcome.message}; retrying in {delay:g}s",
            )
            return delay
        for url in {self.status.get("recordLocation"), self.patch.get("recordLocation")}:
            if url:
                self.owner.storage.forget(url)
        self.kube.pods.forget(self.namespace, self.pod_name(attempt_no))
        self._delete_dask()
        completion = now_iso()
        self.patch["completionTime"] = completion
        self.patch["duration"] = _duration(self.get("startTime"), completion)
        if outcome.state == "Completed" and report.get("result"):
            self.patch["resultLocation"] = report["result"]
        self.set_state(outcome.state, outcome.message, outcome.reason)
        return None
