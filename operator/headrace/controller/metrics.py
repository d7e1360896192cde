"""Prometheus metrics of the operator, served on `--metrics-port` (default 9090 in the chart).

The reconcile calls a few hooks here (`reconciled`, `step_committed`, `pod_created`) and the
Kube client is wrapped by `instrument`; everything else stays out of the reconcile logic.
Labels are kept to bounded sets: states, namespaces, Deployment names, API resources.
"""

from __future__ import annotations

import functools
import platform
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from headrace import __version__
from headrace.states import FINAL_STATES
from headrace.timestamps import parse_time

RUNS_FINISHED = Counter(
    "headrace_flowruns_finished",
    "FlowRuns that reached a final state, by state, namespace and Deployment ('' for none).",
    ["state", "namespace", "deployment"],
)
RUNS_IN_FLIGHT = Gauge(
    "headrace_flowruns_in_flight",
    "Unfinished FlowRuns the operator is driving, by their current state.",
    ["state"],
)
RUN_DURATION = Histogram(
    "headrace_flowrun_duration_seconds",
    "Run time of finished FlowRuns (status.startTime to completionTime), by final state.",
    ["state"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600),
)
POD_START_LATENCY = Histogram(
    "headrace_flowrun_pod_creation_latency_seconds",
    "FlowRun creationTimestamp (whole seconds) to its first pod created by the operator.",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
RECONCILES = Histogram(
    "headrace_reconcile_duration_seconds",
    "Time of one reconcile step, by controller (flowrun, deployment).",
    ["controller"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
OWN_POD_LATENCY = Histogram(
    "headrace_flowrun_pod_creation_own_seconds",
    "The operator's own share of it: a new FlowRun's first watch event to its pod's creation "
    "answered (its queue, its reconcile and the create request).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
QUEUE_WAIT = Histogram(
    "headrace_workqueue_wait_seconds",
    "Time a FlowRun's key waited in the work queue once due, by kind: `new` (a run with no "
    "pod yet, which goes first) or `other`.",
    ["kind"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RECONCILE_ERRORS = Counter(
    "headrace_reconcile_errors",
    "Reconcile steps that raised (they are retried), by controller and exception type.",
    ["controller", "error"],
)
BUILD_INFO = Gauge(
    "headrace_build_info",
    "Always 1; its labels say which operator runs: its version and Python's.",
    ["version", "python_version"],
)
BUILD_INFO.labels(__version__, platform.python_version()).set(1)
API_LATENCY = Histogram(
    "headrace_kube_api_request_duration_seconds",
    "Kubernetes API requests made by the reconcile (kopf's own watches are not included).",
    ["method", "resource"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
API_REQUESTS = Counter(
    "headrace_kube_api_requests",
    "Kubernetes API requests made by the reconcile, by method, resource and HTTP status code.",
    ["method", "resource", "code"],
)


_in_flight: dict[tuple[str, str], str] = {}
_in_flight_guard = threading.Lock()
_known_states: set[str] = set()


def _set_in_flight(key: tuple[str, str], state: str | None) -> None:
    """Track one run's current state (None: no longer in flight) and refresh the gauge."""
    with _in_flight_guard:
        if state is None:
            _in_flight.pop(key, None)
        else:
            _in_flight[key] = state
            _known_states.add(state)
        counts = dict.fromkeys(_known_states, 0)
        for current in _in_flight.values():
            counts[current] += 1
        for name, count in counts.items():
            RUNS_IN_FLIGHT.labels(name).set(count)


def serve(port: int, address: str = "0.0.0.0") -> None:
    """Start the /metrics HTTP server in a daemon thread."""
    start_http_server(port, addr=address)


Reconcile = TypeVar("Reconcile", bound=Callable[..., float | None])


def reconciled(controller: str) -> Callable[[Reconcile], Reconcile]:
    """Decorate a reconciler's `reconcile` (`controller`: flowrun or deployment): time it and
    count its errors; a FlowRun that needs no more looks leaves the in-flight gauge."""

    def decorate(method: Reconcile) -> Reconcile:
        @functools.wraps(method)
        def wrapper(
            self: Any, namespace: str, name: str, *args: Any, **kwargs: Any
        ) -> float | None:
            started = time.perf_counter()
            try:
                wait = method(self, namespace, name, *args, **kwargs)
            except Exception as error:
                RECONCILE_ERRORS.labels(controller, type(error).__name__).inc()
                raise
            finally:
                RECONCILES.labels(controller).observe(time.perf_counter() - started)
            if wait is None and controller == "flowrun":  # final or gone: nothing to drive
                _set_in_flight((namespace, name), None)
            return wait

        return wrapper  # type: ignore[return-value]

    return decorate


def step_committed(run: dict[str, Any], before: dict[str, Any], patch: dict[str, Any]) -> None:
    """After a reconcile step wrote `patch` over status `before`: states and final tallies."""
    meta = run["metadata"]
    key = (meta["namespace"], meta["name"])
    status = {**before, **patch}
    state = status.get("state")
    if state is None:
        return
    if state not in FINAL_STATES:
        _set_in_flight(key, state)
        return
    _set_in_flight(key, None)
    if before.get("state") in FINAL_STATES:
        return  # counted when it got there
    deployment = status.get("deployment") or (run["spec"].get("deploymentRef") or {}).get("name")
    RUNS_FINISHED.labels(state, key[0], deployment or "").inc()
    began, ended = parse_time(status.get("startTime")), parse_time(status.get("completionTime"))
    if began is not None and ended is not None:
        RUN_DURATION.labels(state).observe(max(0.0, ended - began))


def queue_waited(seconds: float, first: bool) -> None:
    QUEUE_WAIT.labels("new" if first else "other").observe(max(0.0, seconds))


def pod_created(run: dict[str, Any], attempt: int, seen: float | None = None) -> None:
    """The operator created the pod of `attempt`; the first one measures apply-to-pod latency
    (and from `seen`, the monotonic time of the run's first event, the operator's share)."""
    created = parse_time(run["metadata"].get("creationTimestamp"))
    if attempt == 1 and created is not None:
        POD_START_LATENCY.observe(max(0.0, time.time() - created))
    if attempt == 1 and seen is not None:
        OWN_POD_LATENCY.observe(max(0.0, time.monotonic() - seen))


def _resource(url: str) -> str:
    """`pods`, `flowruns/status`, `events`... from an API URL (never names: bounded labels)."""
    parts = [p for p in urlsplit(url).path.split("/") if p]
    if "namespaces" in parts:
        index = parts.index("namespaces")
        rest = parts[index + 2 :]
        if not rest:
            return "namespaces"
        return "/".join(rest[:1] + rest[2:3])
    return parts[-1] if parts else ""


def instrument(api_client: Any) -> None:
    """Time every request this ApiClient makes (by method and resource) and count status codes."""
    rest = api_client.rest_client  # every API call of the generated client ends here
    if getattr(rest, "_headrace_instrumented", False):
        return
    original = rest.request

    @functools.wraps(original)
    def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        resource = _resource(url)
        started = time.perf_counter()
        code = "error"
        try:
            response = original(method, url, *args, **kwargs)
            code = str(getattr(response, "status", "") or "")
            return response
        except Exception as error:
            code = str(getattr(error, "status", None) or "error")
            raise
        finally:
            API_LATENCY.labels(method, resource).observe(time.perf_counter() - started)
            API_REQUESTS.labels(method, resource, code).inc()

    rest.request = request
    rest._headrace_instrumented = True
