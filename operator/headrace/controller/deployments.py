"""Reconciling a Deployment: create its scheduled FlowRuns, keep its history, report counts.

Scheduled runs get names from their scheduled time, and `status.lastScheduleTime` records the
newest time handled, so after an operator restart each due time is created exactly once
(an existing name is simply found again) and missed times past the starting deadline are
reported, not run late.

History limits delete only the runs the schedule created (`created_by_schedule`): a FlowRun
someone applied, from git or by hand, is theirs, and deleting it would make a GitOps tool
re-create it and run the flow again.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from headrace.controller import metrics
from headrace.controller.concurrency import is_active
from headrace.controller.kube import Kube
from headrace.controller.parameters import ParameterError, parameter_validator
from headrace.controller.podspec import LABEL_DEPLOYMENT, label_value
from headrace.controller.schedules import InvalidSchedule, Timetable, run_name
from headrace.crd.models import GROUP, VERSION
from headrace.settings import Settings
from headrace.states import FINAL_STATES
from headrace.timestamps import iso, parse_time

logger = logging.getLogger("headrace.operator")

SCHEDULED_TIME = f"{GROUP}/scheduled-time"
CREATED_BY = f"{GROUP}/created-by"
# Argo CD: a scheduled run is not in git, yet the app is not OutOfSync for it, nor is it pruned.
ARGOCD_ANNOTATIONS = {
    "argocd.argoproj.io/compare-options": "IgnoreExtraneous",
    "argocd.argoproj.io/sync-options": "Prune=false",
}


def runs_of(kube: Kube, namespace: str, deployment: str) -> list[dict[str, Any]]:
    """The Deployment's FlowRuns, from the operator's cache."""

    def of_it(run: dict[str, Any]) -> bool:
        ref = (run.get("spec") or {}).get("deploymentRef") or {}
        return ref.get("name") == deployment and not run["metadata"].get("deletionTimestamp")

    return kube.flowruns.select(namespace, of_it)


def created_by_schedule(run: dict[str, Any], deployment_uid: str) -> bool:
    """Whether the Deployment's schedule made this run: it says so (the label, or the
    scheduled-time annotation runs made before the label carry) and this very Deployment
    owns it. Only such runs are ever deleted by history limits."""
    meta = run["metadata"]
    said = (meta.get("labels") or {}).get(CREATED_BY) == "schedule" or SCHEDULED_TIME in (
        meta.get("annotations") or {}
    )
    owned = any(
        ref.get("kind") == "Deployment" and ref.get("uid") == deployment_uid
        for ref in meta.get("ownerReferences") or []
    )
    return said and owned


def _when(value: str | None) -> dt.datetime | None:
    stamp = parse_time(value)
    return dt.datetime.fromtimestamp(stamp, dt.UTC) if stamp is not None else None


class DeploymentReconciler:
    def __init__(self, kube: Kube, config: Settings) -> None:
        self.kube = kube
        self.config = config

    @metrics.reconciled("deployment")
    def reconcile(self, namespace: str, name: str) -> float | None:
        """One pass; seconds until the next look (the next schedule time or a refresh)."""
        deployment = self.kube.deployments.get(namespace, name)
        if deployment is None:  # its daemon may start before its watch event is stored
            deployment = self.kube.get_custom("deployments", namespace, name)
            if deployment is not None:
                self.kube.deployments.put(deployment)
        if deployment is None or deployment["metadata"].get("deletionTimestamp"):
            return None
        spec = deployment["spec"]
        status = dict(deployment.get("status") or {})
        patch: dict[str, Any] = {}
        wait = self.config.progress_interval
        runs = runs_of(self.kube, namespace, name)

        try:
            timetable = Timetable.from_spec(spec.get("schedule"))
            problem = timetable.validate() if timetable else None
        except InvalidSchedule as invalid:
            timetable, problem = None, str(invalid)
        ready_reason, ready_message = "NoSchedule", "runs are created by hand or by CLI"
        schema_problem = _schema_problem(name, spec.get("parameterSchema"))
        if schema_problem:
            # Its runs would all fail: say so once, here, and create none on schedule.
            problem = schema_problem
            ready_reason, ready_message = "InvalidParameterSchema", schema_problem
        elif problem:
            ready_reason, ready_message = "InvalidSchedule", problem
        elif timetable is not None:
            now = dt.datetime.now(dt.UTC)
            created = _when(deployment["metadata"].get("creationTimestamp")) or now
            last = _when(status.get("lastScheduleTime")) or created
            if spec.get("suspend"):
                ready_reason, ready_message = "Suspended", "the schedule is suspended"
            else:
                due = timetable.due(created, last, now)
                for moment in due:
                    self._start_scheduled(deployment, timetable, moment, now, runs)
                if due:
                    patch["lastScheduleTime"] = iso(due[-1].timestamp())
                ready_reason, ready_message = "Scheduled", "creating runs on schedule"
            following = timetable.next_after(created, max(now, last))
            patch["nextScheduleTime"] = iso(following.timestamp())
            wait = min(wait, max(0.05, (following - dt.datetime.now(dt.UTC)).total_seconds()))
            runs = runs_of(self.kube, namespace, name) if patch.get("lastScheduleTime") else runs

        self._trim_history(namespace, spec, deployment["metadata"]["uid"], runs)
        counts: dict[str, int] = {}
        for run in runs:
            state = (run.get("status") or {}).get("state") or "Scheduled"
            counts[state] = counts.get(state, 0) + 1
        # A merge patch keeps keys it does not name: a state no run is in any more is nulled.
        gone = dict.fromkeys(set(status.get("runs") or {}) - set(counts))
        patch["runs"] = {**gone, **counts}
        generation = deployment["metadata"].get("generation")
        patch["observedGeneration"] = generation
        ready = "False" if problem else "True"
        stalled = "True" if problem else "False"
        # Ready for Argo CD and `kubectl wait`; Stalled for kstatus (Flux's `wait: true`),
        # which counts an invalid Deployment as failed rather than still in progress.
        patch["conditions"] = [
            {
                "type": kind,
                "status": value,
                "reason": ready_reason,
                "message": ready_message,
                "observedGeneration": generation,
                "lastTransitionTime": _transition(status, kind, value),
            }
            for kind, value in (("Ready", ready), ("Stalled", stalled))
        ]
        self.kube.patch_status("deployments", namespace, name, patch)
        return wait

    def _start_scheduled(
        self,
        deployment: dict[str, Any],
        timetable: Timetable,
        moment: dt.datetime,
        now: dt.datetime,
        runs: list[dict[str, Any]],
    ) -> None:
        meta = deployment["metadata"]
        name = run_name(meta["name"], moment)
        if timetable.too_late(moment, now):
            self.kube.event(
                deployment,
                "Warning",
                "MissedSchedule",
                f"run {name} for {moment.isoformat()} is past its starting deadline "
                f"({timetable.schedule.starting_deadline_seconds}s); not started",
            )
            return
        spec = deployment["spec"]
        if spec.get("concurrencyPolicy") == "Forbid":
            limit = spec.get("concurrencyLimit") or 1
            if sum(1 for run in runs if is_active(run)) >= limit:
                self.kube.event(
                    deployment,
                    "Normal",
                    "ScheduleSkipped",
                    f"run {name} skipped: {limit} running and concurrencyPolicy is Forbid",
                )
                return
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "FlowRun",
            "metadata": {
                "name": name,
                "namespace": meta["namespace"],
                # Not the Deployment's own labels: they may carry a GitOps tool's tracking
                # label, which would make the tool count the run as its own.
                "labels": {LABEL_DEPLOYMENT: label_value(meta["name"]), CREATED_BY: "schedule"},
                "annotations": {SCHEDULED_TIME: moment.isoformat(), **ARGOCD_ANNOTATIONS},
                # The controller reference, as a CronJob's on its Jobs: the run shows under
                # its Deployment (kubectl describe, Argo CD's tree) and is garbage collected
                # with it. No blockOwnerDeletion: deleting a Deployment never waits for runs.
                "ownerReferences": [
                    {
                        "apiVersion": f"{GROUP}/{VERSION}",
                        "kind": "Deployment",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": {"deploymentRef": {"name": meta["name"]}},
        }
        if self.kube.create_custom("flowruns", meta["namespace"], body):
            self.kube.event(deployment, "Normal", "Scheduled", f"created FlowRun {name}")
            logger.info("Deployment %s/%s: created %s", meta["namespace"], meta["name"], name)

    def _trim_history(
        self, namespace: str, spec: dict[str, Any], uid: str, runs: list[dict[str, Any]]
    ) -> None:
        """Delete the oldest ended scheduled runs beyond the history limits; runs anyone else
        applied are never deleted (nor counted against the limits)."""
        limits = {
            True: spec.get("successfulRunsHistoryLimit"),
            False: spec.get("failedRunsHistoryLimit"),
        }
        for succeeded, limit in limits.items():
            if limit is None:
                continue
            ended = [
                run
                for run in runs
                if created_by_schedule(run, uid)
                and (run.get("status") or {}).get("state") in FINAL_STATES
                and ((run["status"]["state"] == "Completed") is succeeded)
            ]
            ended.sort(key=lambda run: run["status"].get("completionTime") or "", reverse=True)
            for run in ended[limit:]:
                self.kube.delete_custom("flowruns", namespace, run["metadata"]["name"])
                runs.remove(run)


def _schema_problem(deployment: str, schema: dict[str, Any] | None) -> str | None:
    if not schema:
        return None
    try:
        parameter_validator(deployment, schema)
    except ParameterError as error:
        return str(error)
    return None


def _transition(status: dict[str, Any], kind: str, value: str) -> str:
    for condition in status.get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == value:
            return str(condition.get("lastTransitionTime"))
    return iso(time.time())
