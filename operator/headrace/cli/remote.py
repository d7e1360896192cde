"""`headrace run --deployment NAME`: create a FlowRun on the cluster and follow it to its end."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console

from headrace.cli.output import dump
from headrace.crd.models import GROUP, VERSION
from headrace.deployments import build_flow_run
from headrace.states import FINAL_STATES


def run_deployment(
    deployment: str,
    parameters: dict[str, Any],
    namespace: str | None,
    wait: bool,
    form: str | None = None,
) -> int:
    """Create the FlowRun and follow it (progress on stderr); with `form`, print the FlowRun
    as it ended (or as created, without `wait`) on stdout."""
    from kubernetes import client

    from headrace.sources import connect

    console = Console(stderr=True)
    api_client, namespace = connect(namespace)
    api = client.CustomObjectsApi(api_client)
    body = build_flow_run(deployment, parameters)
    created: dict[str, Any] = api.create_namespaced_custom_object(  # type: ignore[assignment]
        GROUP, VERSION, namespace, "flowruns", body
    )
    name = created["metadata"]["name"]
    console.print(f"flowrun.{GROUP}/{name} created in {namespace}", soft_wrap=True)
    if not wait:
        if form:
            print(dump(created, form))
        return 0
    shown: tuple[Any, ...] = ()
    status: dict[str, Any] = {}
    found: dict[str, Any] = created
    while status.get("state") not in FINAL_STATES:
        time.sleep(0.5)
        found = api.get_namespaced_custom_object(  # type: ignore[assignment]
            GROUP, VERSION, namespace, "flowruns", name
        )
        status = found.get("status") or {}
        progress = status.get("progress") or {}
        line = (
            status.get("state"),
            status.get("message"),
            tuple(sorted((progress.get("counts") or {}).items())),
        )
        if line != shown and line[0]:
            counts = " ".join(f"{k} {v}" for k, v in line[2])
            console.print(f"{line[0]:<10} {line[1] or ''} {counts}".rstrip(), soft_wrap=True)
            shown = line
    if form:
        print(dump(found, form))
    elif status.get("resultLocation"):
        console.print(f"result     {status['resultLocation']}", soft_wrap=True)
    if status.get("recordLocation") and not form:
        console.print(f"record     {status['recordLocation']}", soft_wrap=True)
    return 0 if status.get("state") == "Completed" else 1
