"""`headrace list` and `-o json|yaml` against FlowRuns on the real API server (no operator:
the statuses are written here as the operator would)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from kubernetes import client
from operator_harness import GROUP, VERSION, FlowRuns

from cluster.fixtures import Cluster
from cluster.helpers import headrace_cli

pytestmark = pytest.mark.cluster


def set_status(cluster: Cluster, namespace: str, name: str, status: dict[str, Any]) -> None:
    client.CustomObjectsApi(cluster.api_client).patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "flowruns", name, {"status": status}
    )


def test_list_shows_the_namespaces_flowruns(
    crds: Cluster, namespace: str, idle_flowruns: FlowRuns
) -> None:
    idle_flowruns.run_of("etl", "etl-done")
    idle_flowruns.run_of("etl", "etl-waiting")
    set_status(
        crds,
        namespace,
        "etl-done",
        {
            "state": "Completed",
            "deployment": "etl",
            "attempt": 1,
            "startTime": "2026-01-01T00:00:00Z",
            "completionTime": "2026-01-01T00:01:30Z",
            "progress": {"total": 4, "counts": {"Completed": 3, "Running": 1}, "running": []},
        },
    )
    result = headrace_cli("list", "-n", namespace, kubeconfig=crds.kubeconfig)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()}
    assert rows["NAME"] == ["NAME", "DEPLOYMENT", "STATE", "ATTEMPT", "AGE", "DURATION", "TASKS"]
    assert rows["etl-done"][1:4] == ["etl", "Completed", "1"]
    assert rows["etl-done"][5:] == ["90s", "3/4"]
    assert rows["etl-waiting"][1:3] == ["etl", "Pending"]

    every = headrace_cli("list", "-A", kubeconfig=crds.kubeconfig)
    assert every.returncode == 0, every.stderr
    assert every.stdout.split()[0] == "NAMESPACE"
    assert any(line.split()[:2] == [namespace, "etl-done"] for line in every.stdout.splitlines())

    listed = json.loads(
        headrace_cli("list", "-n", namespace, "-o", "json", kubeconfig=crds.kubeconfig).stdout
    )
    assert listed["kind"] == "List"
    assert {item["metadata"]["name"] for item in listed["items"]} == {"etl-done", "etl-waiting"}
    done = next(item for item in listed["items"] if item["metadata"]["name"] == "etl-done")
    assert done["kind"] == "FlowRun" and done["status"]["state"] == "Completed"


def test_run_of_a_deployment_prints_the_flowrun_it_made(
    crds: Cluster, namespace: str, idle_flowruns: FlowRuns
) -> None:
    result = headrace_cli(
        "run",
        "--deployment",
        "etl",
        "-n",
        namespace,
        "-p",
        "day=2026-01-01",
        "--no-wait",
        "-o",
        "yaml",
        kubeconfig=crds.kubeconfig,
    )
    assert result.returncode == 0, result.stderr
    made = yaml.safe_load(result.stdout)
    assert made["kind"] == "FlowRun" and made["metadata"]["name"].startswith("etl-")
    assert made["spec"]["parameters"] == {"day": "2026-01-01"}
    assert idle_flowruns.names() == [made["metadata"]["name"]]


def test_no_flowruns_is_said(crds: Cluster, namespace: str) -> None:
    result = headrace_cli("list", "--cluster", "-n", namespace, kubeconfig=crds.kubeconfig)
    assert (result.returncode, result.stdout) == (0, f"No FlowRuns in namespace {namespace}.\n")
