"""`headrace list`: runs as a table (or `-o json|yaml`): local runs from the run records under
HEADRACE_RECORD_STORAGE, or FlowRuns on the cluster of KUBECONFIG (`--cluster`, `-n`, `-A`)."""

from __future__ import annotations

import time
from typing import Any, cast

from headrace.cli.output import as_list, dump, table
from headrace.states import FINAL_NAMES
from headrace.timestamps import parse_time

_UNITS = ((86400, "d"), (3600, "h"), (60, "m"))


def age(seconds: float | None) -> str:
    """A span as kubectl shows ages: `45s`, `12m`, `3h`, `2d`; `-` when unknown."""
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    for size, unit in _UNITS:
        if seconds >= 2 * size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def tasks(counts: dict[str, int] | None, total: int | None) -> str:
    """`done/total`: task runs in a final state, of all."""
    if not counts:
        return "-"
    done = sum(count for name, count in counts.items() if name in FINAL_NAMES)
    return f"{done}/{total if total is not None else sum(counts.values())}"


def list_local(limit: int, form: str | None) -> int:
    from headrace.sources import local_runs

    runs = local_runs(limit)
    if form:
        print(dump(as_list(runs), form))
        return 0
    if not runs:
        print("No local runs.")
        return 0
    now = time.time()
    rows = [["ID", "NAME", "FLOW", "STATE", "STARTED", "DURATION", "TASKS"]]
    for run in runs:
        start, end = run.get("start"), run.get("end")
        rows.append(
            [
                str(run["id"])[:8],
                str(run.get("name") or "-"),
                str(run.get("flowName") or "-"),
                str(run.get("state")),
                age(now - start) if start else "-",
                age((end or now) - start) if start else "-",
                tasks(run.get("counts"), run.get("total")),
            ]
        )
    print(table(rows))
    return 0


def list_cluster(namespace: str | None, every: bool, form: str | None) -> int:
    from kubernetes import client

    from headrace.crd.models import GROUP, VERSION
    from headrace.sources import connect

    api_client, namespace = connect(namespace)
    api = client.CustomObjectsApi(api_client)
    if every:
        found = api.list_cluster_custom_object(GROUP, VERSION, "flowruns")
    else:
        found = api.list_namespaced_custom_object(GROUP, VERSION, namespace, "flowruns")
    items: list[dict[str, Any]] = cast(dict[str, Any], found).get("items", [])
    items.sort(key=lambda obj: obj["metadata"].get("creationTimestamp") or "", reverse=True)
    if form:
        print(dump(as_list(items), form))
        return 0
    if not items:
        where = "any namespace" if every else f"namespace {namespace}"
        print(f"No FlowRuns in {where}.")
        return 0
    now = time.time()
    head = ["NAME", "DEPLOYMENT", "STATE", "ATTEMPT", "AGE", "DURATION", "TASKS"]
    rows = [["NAMESPACE", *head] if every else head]
    for obj in items:
        meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
        created = parse_time(meta.get("creationTimestamp"))
        started = parse_time(status.get("startTime"))
        ended = parse_time(status.get("completionTime"))
        progress = status.get("progress") or {}
        row = [
            meta["name"],
            status.get("deployment") or (spec.get("deploymentRef") or {}).get("name") or "-",
            status.get("state") or "Pending",
            str(status.get("attempt") or "-"),
            age(now - created) if created else "-",
            age((ended or now) - started) if started else "-",
            tasks(progress.get("counts"), progress.get("total")),
        ]
        rows.append([meta["namespace"], *row] if every else row)
    print(table(rows))
    return 0
