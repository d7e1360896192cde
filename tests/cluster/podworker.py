"""One thread per pod: run its containers and report status like a kubelet would.

Lifecycle: Pending (init containers run one by one) -> Running -> Succeeded/Failed,
with restartPolicy Never/OnFailure/Always, activeDeadlineSeconds, and graceful
deletion (SIGTERM to each container's main process, SIGKILL to its process group
after the grace period, then the kubelet's final ``gracePeriodSeconds=0`` delete
with a UID precondition). The thread lives as long as its processes, which keeps
their parent-death signal meaningful.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from cluster.containers import (
    ConfigError,
    ContainerRun,
    StartError,
    base_env,
    expand,
    now,
    resolve_env,
)
from cluster.rawapi import RawApi, status_code

JSON = dict[str, Any]
log = logging.getLogger("kubelet.pod")
POD_IP = "127.0.0.1"
MAX_BACKOFF = 10.0


class PodWorker(threading.Thread):
    """Owns the processes and the status of one pod (identified by UID)."""

    def __init__(
        self,
        api: RawApi,
        pod: JSON,
        state_dir: Path,
        api_host: str,
        api_port: int,
        shutdown: threading.Event,
    ) -> None:
        meta = pod["metadata"]
        super().__init__(name=f"pod-{meta['namespace']}/{meta['name']}", daemon=True)
        self.api = api
        self.pod = pod
        self.uid: str = meta["uid"]
        self.namespace: str = meta["namespace"]
        self.pod_name: str = meta["name"]
        self.dir = state_dir / "pods" / f"{self.namespace}_{self.pod_name}_{self.uid}"
        self.api_host, self.api_port = api_host, api_port
        self.shutdown = shutdown
        self.wake = threading.Event()
        self.gone = False  # the API object no longer exists
        self.lock = threading.Lock()
        spec = pod["spec"]
        self.init_containers = [
            ContainerRun(c, self.dir / "logs" / c["name"]) for c in spec.get("initContainers") or []
        ]
        self.containers = [
            ContainerRun(c, self.dir / "logs" / c["name"]) for c in spec["containers"]
        ]
        self.phase = "Pending"
        self.reason: str | None = None
        self.message: str | None = None
        self.start_time = now()
        self.started_mono = time.monotonic()
        self.initialized = False
        self.conditions: dict[str, JSON] = {}
        self._last_reported: JSON | None = None

    # -- inputs from the watcher ----------------------------------------------------

    def update(self, pod: JSON) -> None:
        with self.lock:
            self.pod = pod
        self.wake.set()

    def mark_gone(self) -> None:
        self.gone = True
        self.wake.set()

    def container(self, name: str) -> ContainerRun | None:
        for run in (*self.init_containers, *self.containers):
            if run.name == name:
                return run
        return None

    @property
    def restart_policy(self) -> str:
        return str(self.pod["spec"].get("restartPolicy", "Always"))

    def _deleting(self) -> bool:
        with self.lock:
            return bool(self.pod["metadata"].get("deletionTimestamp"))

    def _grace_period(self) -> float:
        with self.lock:
            meta, spec = self.pod["metadata"], self.pod["spec"]
            grace = meta.get("deletionGracePeriodSeconds")
            if grace is None:
                grace = spec.get("terminationGracePeriodSeconds", 30)
        return float(grace)

    def _deadline_exceeded(self) -> bool:
        deadline = self.pod["spec"].get("activeDeadlineSeconds")
        return deadline is not None and time.monotonic() - self.started_mono >= float(deadline)

    def _interrupted(self) -> bool:
        return self.gone or self.shutdown.is_set() or self._deleting()

    # -- main loop --------------------------------------------------------------------

    def run(self) -> None:
        try:
            self._run()
        except Exception:
            log.error("pod worker %s crashed:\n%s", self.name, traceback.format_exc())
        finally:
            self.kill_all()
            for run in self._all_runs():
                run.closed = True

    def _run(self) -> None:
        self._report()
        if self._run_init_containers() and not self._interrupted():
            self.initialized = True
            self._run_containers()
        if self.gone or self.shutdown.is_set():
            return
        if not self._deleting() and self.phase not in ("Succeeded", "Failed"):
            self._handle_deadline()
        # Terminal (or being deleted): wait for the deletion to finalize it.
        while not (self.gone or self.shutdown.is_set()):
            if self._deleting():
                self._terminate(self._grace_period())
                self._finalize_deletion()
                return
            self.wake.wait(1.0)
            self.wake.clear()

    def _run_init_containers(self) -> bool:
        """Run init containers in order; False if the pod failed or was interrupted."""
        for run in self.init_containers:
            self._start(run)
            while True:
                if self._interrupted() or self._deadline_exceeded():
                    return False
                if run.restart_at is not None and time.monotonic() >= run.restart_at:
                    self._start(run)
                self._poll(run, restartable=False)
                if run.terminated and run.restart_at is None:
                    if run.exit_code == 0:
                        break
                    if self.restart_policy == "Never":
                        self._finish("Failed")
                        return False
                    self._schedule_restart(run)
                self._report()
                self.wake.wait(0.2)
                self.wake.clear()
        return True

    def _run_containers(self) -> None:
        for run in self.containers:
            self._start(run)
        self._report()
        while not self._interrupted():
            if self._deadline_exceeded():
                return
            now_mono = time.monotonic()
            for run in self.containers:
                if run.restart_at is not None and now_mono >= run.restart_at:
                    self._start(run)
                self._poll(run, restartable=True)
            if all(run.terminated and run.restart_at is None for run in self.containers):
                failed = any(run.exit_code != 0 for run in self.containers)
                self._finish("Failed" if failed else "Succeeded")
                return
            self._report()
            self.wake.wait(0.2)
            self.wake.clear()

    def _handle_deadline(self) -> None:
        if not self._deadline_exceeded():
            return
        self._terminate(float(self.pod["spec"].get("terminationGracePeriodSeconds", 30)))
        self.reason = "DeadlineExceeded"
        self.message = "Pod was active on the node longer than the specified deadline"
        self._finish("Failed")

    # -- containers ---------------------------------------------------------------------

    def _start(self, run: ContainerRun) -> None:
        run.prepare_start()
        try:
            env = resolve_env(
                self.pod, run.spec, base_env(self.pod, self.api_host, self.api_port), self._read
            )
        except ConfigError as exc:
            run.state = {"waiting": {"reason": "CreateContainerConfigError", "message": str(exc)}}
            run.restart_at = time.monotonic() + 1.0  # retry like the kubelet does
            return
        env = run.map_termination(env)
        argv = [expand(arg, env) for arg in (run.spec.get("command") or [])]
        if argv:
            argv += [expand(arg, env) for arg in (run.spec.get("args") or [])]
        cwd = Path(run.spec.get("workingDir") or self.dir / "root")
        try:
            run.start(argv, env, cwd)
            log.info(
                "started %s/%s container %s: %s", self.namespace, self.pod_name, run.name, argv
            )
        except StartError as exc:
            log.info("container %s of %s failed to start: %s", run.name, self.name, exc)
            run.fail_to_start(str(exc))

    def _poll(self, run: ContainerRun, restartable: bool) -> None:
        exited = run.poll()
        if exited:
            log.info("%s container %s exited: %s", self.name, run.name, run.state["terminated"])
        if run.terminated and run.restart_at is None and restartable:
            policy = self.restart_policy
            if policy == "Always" or (policy == "OnFailure" and run.exit_code != 0):
                self._schedule_restart(run)

    def _schedule_restart(self, run: ContainerRun) -> None:
        run.schedule_restart(min(MAX_BACKOFF, 0.5 * 2**run.restart_count))

    def _read(self, kind: str, name: str) -> JSON | None:
        plural = {"Secret": "secrets", "ConfigMap": "configmaps"}[kind]
        try:
            return self.api.get(f"/api/v1/namespaces/{self.namespace}/{plural}/{name}")
        except Exception as exc:
            if status_code(exc) == 404:
                return None
            raise

    def _all_runs(self) -> list[ContainerRun]:
        return [*self.init_containers, *self.containers]

    def _terminate(self, grace: float) -> None:
        """SIGTERM main processes, wait up to ``grace`` seconds, then SIGKILL groups."""
        runs = [run for run in self._all_runs() if run.running]
        for run in runs:
            run.signal(signal.SIGTERM, group=False)
        deadline = time.monotonic() + grace
        while any(run.popen and run.popen.poll() is None for run in runs):
            # A later delete may shorten the grace period; a force delete removes it.
            if self.gone or self.shutdown.is_set():
                break
            if self._deleting():
                deadline = min(deadline, self._deletion_started() + self._grace_period())
            if time.monotonic() >= deadline:
                break
            self.wake.wait(0.1)
            self.wake.clear()
        for run in runs:
            run.signal(signal.SIGKILL, group=True)
            if run.popen is not None:
                run.popen.wait()
            run.poll()
        for run in self._all_runs():
            run.restart_at = None  # nothing restarts once the pod is terminating

    def _deletion_started(self) -> float:
        if not hasattr(self, "_deletion_seen"):
            self._deletion_seen = time.monotonic()
        return self._deletion_seen

    def kill_all(self) -> None:
        """SIGKILL every process group of this pod (kubelet shutdown, crashes)."""
        for run in self._all_runs():
            run.signal(signal.SIGKILL, group=True)

    def _finish(self, phase: str) -> None:
        self.phase = phase
        self._report()

    def _finalize_deletion(self) -> None:
        # Containers that never ran, or did not exit 0, make a deleted pod Failed.
        failed = any(run.exit_code != 0 for run in self.containers)
        if self.phase not in ("Succeeded", "Failed"):
            self.phase = "Failed" if failed else "Succeeded"
        self._report()
        body = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": self.uid},
        }
        try:
            self.api.delete(f"/api/v1/namespaces/{self.namespace}/pods/{self.pod_name}", body)
            log.info("pod %s deleted", self.name)
        except Exception as exc:
            if status_code(exc) not in (404, 409):
                log.warning("final delete of %s failed: %s", self.name, exc)

    # -- status -------------------------------------------------------------------------

    def _condition(self, kind: str, ok: bool, reason: str | None = None) -> JSON:
        status = "True" if ok else "False"
        previous = self.conditions.get(kind)
        if previous is None or previous["status"] != status:
            previous = {"type": kind, "status": status, "lastTransitionTime": now()}
            if reason:
                previous["reason"] = reason
            self.conditions[kind] = previous
        return dict(previous, lastProbeTime=None)

    def _status(self) -> JSON:
        terminal = self.phase in ("Succeeded", "Failed")
        running = [run.running for run in self.containers]
        if not terminal and self.initialized and (any(running) or self.phase == "Running"):
            self.phase = "Running"  # stays Running while containers restart
        ready = not terminal and self.initialized and all(running)
        not_ready_reason = "PodCompleted" if terminal else "ContainersNotReady"
        conditions = [
            self._condition("PodReadyToStartContainers", not terminal),
            self._condition("Initialized", self.initialized or terminal),
            self._condition("Ready", ready, None if ready else not_ready_reason),
            self._condition("ContainersReady", ready, None if ready else not_ready_reason),
            self._condition("PodScheduled", True),
        ]
        status: JSON = {
            "phase": self.phase,
            "conditions": conditions,
            "hostIP": POD_IP,
            "hostIPs": [{"ip": POD_IP}],
            "podIP": POD_IP,
            "podIPs": [{"ip": POD_IP}],
            "startTime": self.start_time,
            "reason": self.reason,
            "message": self.message,
            "containerStatuses": [run.status(ready) for run in self.containers],
        }
        if self.init_containers:
            status["initContainerStatuses"] = [run.status(False) for run in self.init_containers]
        return status

    def _report(self) -> None:
        """Merge-patch the pod status if it changed (UID guards against a namesake)."""
        status = self._status()
        if status == self._last_reported or self.gone:
            return
        body = {"metadata": {"uid": self.uid}, "status": status}
        try:
            self.api.merge_patch(
                f"/api/v1/namespaces/{self.namespace}/pods/{self.pod_name}/status", body
            )
            self._last_reported = status
        except Exception as exc:
            code = status_code(exc)
            if code in (404, 409):  # deleted, or replaced by a pod with another UID
                self.gone = True
            else:
                log.warning("status update of %s failed: %s", self.name, exc)
