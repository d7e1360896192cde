"""What a pod says about its attempt: one pure function from pod status to run state.

A clean exit reports the engine's own verdict (read from the termination message); anything
the engine could not report itself (OOM, eviction, image errors, a kill nobody asked for)
is Crashed, with the reason Kubernetes gives.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from headrace.controller.podspec import CONTAINER
from headrace.timestamps import parse_time

# Waiting reasons that mean the container will never start without someone fixing the spec.
START_FAILED = frozenset({"InvalidImageName", "ErrImageNeverPull"})
# Waiting reasons the kubelet retries, which may pass (a registry hiccup, a runtime timeout
# under load, a Secret created late): an attempt ends on them only after a grace period.
START_ERRORS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "StartError",
    }
)

EXIT_FAILED = 1
EXIT_TERMINATED = 143  # SIGTERM: the engine recorded the stop and exited
EXIT_KILLED = 137  # SIGKILL


@dataclass
class Outcome:
    state: str
    message: str = ""
    exit_code: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    report: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None  # a condition reason more precise than the state

    @property
    def final(self) -> bool:
        return self.state in {"Completed", "Failed", "Crashed", "Cancelled", "TimedOut"}


def lost_pod(message: str) -> Outcome:
    """An attempt whose pod is gone without an exit: Crashed, with reason PodLost (what
    health checks show as lost), and retried like any crash."""
    return Outcome("Crashed", message, reason="PodLost")


def _container_status(pod: dict[str, Any]) -> dict[str, Any]:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == CONTAINER:
            return status  # type: ignore[no-any-return]
    return {}


def engine_report(terminated: dict[str, Any]) -> dict[str, Any]:
    """The engine's JSON termination message, or {} if it left none (or logs instead)."""
    text = terminated.get("message") or ""
    try:
        report = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return {}
    return report if isinstance(report, dict) else {}


MESSAGE_LIMIT = 1024
_CONTROL = dict.fromkeys(c for c in range(32) if c not in (9, 10))


def bounded(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """Text from a flow, fit for a status, an Event or a log line: no control characters,
    at most `limit` characters (the head, which names the error, is kept)."""
    text = text.strip().translate(_CONTROL)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _tail(text: str, limit: int = 300) -> str:
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


# How long past its grace period a deleted pod may stay without its node reporting its end.
NODE_SILENCE_SECONDS = 30.0


def pod_outcome(
    pod: dict[str, Any] | None,
    stopping: str | None,
    fallback: Callable[[], dict[str, Any]] | None = None,
    now: float | None = None,
    start_grace: float = 0.0,
) -> Outcome:
    """The attempt's state from its pod; `stopping` is the state the operator asked it to end in.

    `fallback` supplies the engine's report when the pod carries none (a runtime without
    termination messages): it reads the run record. `now` (Unix time) lets a stop end when
    no node will ever report on the pod, and a start error wait `start_grace` seconds from
    the pod's creation before it ends the attempt.
    """
    if pod is None:
        if stopping:
            return Outcome(stopping, f"the run was stopped ({stopping})")
        return lost_pod("the attempt's pod disappeared before it finished")
    if stopping and (ended := _stopped_without_a_node(pod, stopping, now)) is not None:
        return ended
    status = pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    container = _container_status(pod)
    state = container.get("state") or {}
    if status.get("reason") == "Evicted":
        return Outcome("Crashed", f"pod evicted: {status.get('message', '')}".strip())
    if status.get("reason") == "DeadlineExceeded":
        return Outcome("TimedOut", "pod exceeded its activeDeadlineSeconds")
    terminated = state.get("terminated")
    if terminated is None and container.get("lastState", {}).get("terminated"):
        terminated = container["lastState"]["terminated"]
    if terminated is not None:
        return _terminated(terminated, stopping, fallback)
    waiting = state.get("waiting") or {}
    reason = waiting.get("reason")
    if reason in START_FAILED or reason in START_ERRORS:
        said = f"{reason}: {waiting.get('message', '')}".strip(": ")
        meta = pod.get("metadata") or {}
        made = parse_time(meta.get("creationTimestamp")) if reason in START_ERRORS else None
        if now is not None and made is not None and now < made + start_grace:
            return Outcome(
                "Pending",
                f"{said} (the kubelet retries; the attempt crashes if its pod has not "
                f"started {start_grace:.0f} s after it was made)",
                reason="StartError",
            )
        return Outcome("Crashed", said)
    if phase == "Failed":
        return Outcome("Crashed", status.get("message") or "pod failed without a container status")
    if phase == "Succeeded":
        return Outcome("Completed")
    if state.get("running"):
        return Outcome("Running", started_at=state["running"].get("startedAt"))
    return Outcome("Pending", "waiting for the flow pod to start")


def _stopped_without_a_node(
    pod: dict[str, Any], stopping: str, now: float | None
) -> Outcome | None:
    """A pod asked to stop whose container never started (never scheduled, image never
    pulled) has nothing to wait for; nor has one whose node stays silent past its grace."""
    meta = pod.get("metadata") or {}
    deleted = parse_time(meta.get("deletionTimestamp"))
    if deleted is None:
        return None
    container = _container_status(pod).get("state") or {}
    if not container.get("running") and not container.get("terminated"):
        return Outcome(stopping, f"stopped ({stopping}) before the flow container started")
    # deletionTimestamp is when the grace period ends (SIGKILL is due).
    if now is not None and now > deleted + NODE_SILENCE_SECONDS:
        return Outcome(stopping, f"stopped ({stopping}); the node never reported the end")
    return None


def _terminated(
    terminated: dict[str, Any],
    stopping: str | None,
    fallback: Callable[[], dict[str, Any]] | None,
) -> Outcome:
    code = terminated.get("exitCode")
    reason = terminated.get("reason") or ""
    report = engine_report(terminated)
    if not report and fallback is not None:
        report = fallback()
    times = {"started_at": terminated.get("startedAt"), "finished_at": terminated.get("finishedAt")}
    engine_message = report.get("message") or ""
    if reason == "OOMKilled":
        return Outcome(
            "Crashed",
            "the flow container ran out of memory (OOMKilled)",
            code,
            report=report,
            **times,
        )
    if code == 0:
        return Outcome("Completed", engine_message, code, report=report, **times)
    if (stopping and code in (EXIT_TERMINATED, EXIT_KILLED)) or (
        stopping and terminated.get("signal")
    ):
        how = "after SIGTERM" if code == EXIT_TERMINATED else "by SIGKILL after its grace period"
        return Outcome(stopping, f"stopped {how}", code, report=report, **times)
    if code == EXIT_FAILED and report.get("state") in {"Failed", "TimedOut"}:
        return Outcome(report["state"], engine_message, code, report=report, **times)
    if (code is not None and code > 128) or terminated.get("signal"):
        signal = terminated.get("signal") or (code - 128 if code else None)
        return Outcome(
            "Crashed",
            f"the engine process was killed (signal {signal})",
            code,
            report=report,
            **times,
        )
    detail = engine_message or _tail(terminated.get("message") or "") or reason or "no message"
    return Outcome(
        "Crashed", f"the engine exited with code {code}: {detail}", code, report=report, **times
    )
