"""`headrace graph`: a run's task runs by dependency stage, as text.

Each stage (all task runs of one task in one flow run) is one line with its counts per state,
subflows are nested under the stage that called them, and pending task runs are listed with
the upstream runs they still wait on: the same grouping the web UI draws.
"""

from __future__ import annotations

from headrace.records.reader import RunRecord, find_record
from headrace.ui.graph import render_text


def record_location(ref: str, namespace: str | None) -> str:
    """The record URL of `flowrun/NAME` (from its status), a local run id/name, or a path."""
    from headrace.sources import parse_ref

    name = parse_ref(ref)
    if name is None:
        return find_record(ref)
    from headrace.sources import FlowRunSource, current_namespace, load_kube_client

    api_client = load_kube_client()
    if api_client is None:
        raise ValueError("no Kubernetes configuration: set KUBECONFIG")
    namespace = namespace or current_namespace()
    obj = FlowRunSource(api_client).get(namespace, name)
    if obj is None:
        raise FileNotFoundError(f"FlowRun {namespace}/{name} not found")
    url = (obj.get("status") or {}).get("recordLocation")
    if not url:
        state = (obj.get("status") or {}).get("state") or "Pending"
        raise FileNotFoundError(f"FlowRun {namespace}/{name} ({state}) has no run record yet")
    return str(url)


def show_graph(ref: str, namespace: str | None, max_pending: int) -> int:
    record = RunRecord.load(record_location(ref, namespace))
    print(render_text(record, max_pending=max_pending))
    return 0
