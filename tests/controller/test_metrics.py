"""Operator metrics: what one run's steps add up to, and bounded API labels."""

from __future__ import annotations

import platform
from typing import Any

from prometheus_client import REGISTRY

import headrace
from headrace.controller import metrics


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def run(name: str, deployment: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"deploymentRef": {"name": deployment}} if deployment else {}
    return {
        "metadata": {"namespace": "metrics-ns", "name": name, "creationTimestamp": None},
        "spec": spec,
    }


def test_a_run_is_in_flight_then_counted_once_with_its_duration() -> None:
    body = run("m1", deployment="nightly")
    finished = ("headrace_flowruns_finished_total", {"namespace": "metrics-ns"})
    before = sample(finished[0], state="Completed", deployment="nightly", **finished[1])
    durations = sample("headrace_flowrun_duration_seconds_count", state="Completed")
    running = sample("headrace_flowruns_in_flight", state="Running")

    metrics.step_committed(body, {}, {"state": "Running", "startTime": "2026-01-01T00:00:00Z"})
    assert sample("headrace_flowruns_in_flight", state="Running") == running + 1
    status = {"state": "Running", "startTime": "2026-01-01T00:00:00Z"}
    patch = {"state": "Completed", "completionTime": "2026-01-01T00:00:42Z"}
    metrics.step_committed(body, status, patch)
    metrics.step_committed(body, {**status, **patch}, {})  # a later look: not counted again

    assert sample("headrace_flowruns_in_flight", state="Running") == running
    assert sample(finished[0], state="Completed", deployment="nightly", **finished[1]) == before + 1
    assert sample("headrace_flowrun_duration_seconds_count", state="Completed") == durations + 1
    assert sample("headrace_flowrun_duration_seconds_bucket", state="Completed", le="60.0") >= 1


def test_reconcile_errors_are_counted_and_reraised() -> None:
    class Boom:
        @metrics.reconciled("deployment")
        def reconcile(self, namespace: str, name: str) -> float | None:
            raise ValueError("no")

    labels = {"controller": "deployment", "error": "ValueError"}
    before = sample("headrace_reconcile_errors_total", **labels)
    steps = sample("headrace_reconcile_duration_seconds_count", controller="deployment")
    try:
        Boom().reconcile("ns", "x")
    except ValueError:
        pass
    else:
        raise AssertionError("the error must reach kopf, which retries")
    assert sample("headrace_reconcile_errors_total", **labels) == before + 1
    assert sample("headrace_reconcile_duration_seconds_count", controller="deployment") == steps + 1
    assert sample("headrace_reconcile_errors_total", controller="flowrun", error="ValueError") == 0


def test_build_info_names_the_running_version() -> None:
    info = {"version": headrace.__version__, "python_version": platform.python_version()}
    assert sample("headrace_build_info", **info) == 1


def test_api_resources_never_carry_object_names() -> None:
    base = "https://127.0.0.1:6443"
    assert metrics._resource(f"{base}/api/v1/namespaces/a/pods/run-1") == "pods"
    assert metrics._resource(f"{base}/api/v1/namespaces/a/events") == "events"
    flowrun = f"{base}/apis/headrace.dev/v1alpha1/namespaces/a/flowruns/r/status"
    assert metrics._resource(flowrun) == "flowruns/status"
