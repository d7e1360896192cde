"""Where the CLI and the UI find runs: FlowRuns in the cluster (and the kubeconfig that
reaches it), and the local run records. The kubernetes client is synchronous; the UI server
calls these in a thread."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from headrace import settings
from headrace.crd.models import GROUP, VERSION
from headrace.records.lines import FLOW_RUN, HEARTBEAT, SUMMARY, FlowRunLine
from headrace.records.reader import LOST_AFTER, scan
from headrace.records.untrusted import read_summary
from headrace.results.store import local_path
from headrace.states import FINAL_TYPES


def connect(namespace: str | None) -> tuple[client.ApiClient, str]:
    """An API client and the namespace to use (the flag, else the context's, else default)."""
    try:
        config.load_kube_config()  # type: ignore[no-untyped-call]
        _, context = config.list_kube_config_contexts()  # type: ignore[no-untyped-call]
        default = (context or {}).get("context", {}).get("namespace") or "default"
    except config.ConfigException:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        default = _pod_namespace()
    return client.ApiClient(), namespace or default


# In a pod with an API token, the namespace it runs in (kubectl's default there too).
POD_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _pod_namespace() -> str:
    try:
        return POD_NAMESPACE_FILE.read_text().strip() or "default"
    except OSError:
        return "default"


def load_kube_client() -> client.ApiClient | None:
    """An API client from KUBECONFIG (or ~/.kube/config), else in-cluster; None without one."""
    try:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    except Exception:
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except Exception:
            return None
    return client.ApiClient()


def parse_ref(ref: str) -> str | None:
    """The FlowRun name of `flowrun/NAME` (or `fr/NAME`, `flowruns/NAME`); None otherwise."""
    kind, sep, name = ref.partition("/")
    if sep and kind.lower() in {"flowrun", "flowruns", "fr", "flowruns.headrace.dev"} and name:
        return name
    return None


def current_namespace() -> str:
    """The kubeconfig context's namespace, as kubectl uses it, else `default`."""
    try:
        _, context = config.list_kube_config_contexts()  # type: ignore[no-untyped-call]
        namespace = context.get("context", {}).get("namespace")
        return str(namespace) if namespace else "default"
    except Exception:
        return "default"


class FlowRunSource:
    """FlowRuns and their pods, read with the kubernetes client."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.api_client = api_client
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)

    def list(self, namespace: str | None = None) -> list[dict[str, Any]]:
        if namespace:
            found = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "flowruns")
        else:
            found = self.custom.list_cluster_custom_object(GROUP, VERSION, "flowruns")
        return cast(list[dict[str, Any]], cast(dict[str, Any], found).get("items", []))

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            found = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, "flowruns", name
            )
            return cast(dict[str, Any], found)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def pod_log(self, namespace: str, pod: str, tail_lines: int | None = 2000) -> str:
        """The flow container's output ('' when the pod is gone or has not started)."""
        try:
            text: str = self.core.read_namespaced_pod_log(
                pod, namespace, tail_lines=tail_lines, _preload_content=True
            )
            return text
        except ApiException as error:
            if error.status in {400, 404}:
                return ""
            raise


def flowrun_summary(obj: dict[str, Any]) -> dict[str, Any]:
    """The fields of a FlowRun that the run-history table shows."""
    meta = obj.get("metadata", {})
    spec = obj.get("spec", {})
    status = obj.get("status") or {}
    deployment = status.get("deployment") or (spec.get("deploymentRef") or {}).get("name")
    progress = status.get("progress") or {}
    return {
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "created": meta.get("creationTimestamp"),
        "deployment": deployment,
        "state": status.get("state") or "Pending",
        "message": status.get("message") or "",
        "startTime": status.get("startTime"),
        "completionTime": status.get("completionTime"),
        "duration": status.get("duration"),
        "attempt": status.get("attempt"),
        "progress": {"total": progress.get("total", 0), "counts": progress.get("counts", {})},
        "entrypoint": (spec.get("flow") or {}).get("entrypoint"),
    }


def local_runs(limit: int = 200) -> list[dict[str, Any]]:
    """Runs recorded under the local record storage, newest first (for `headrace ui`)."""
    root = local_path(settings.current().record_storage)
    if root is None or not root.is_dir():
        return []
    paths = sorted(root.glob("*/record.jsonl"), key=lambda p: p.stat().st_mtime, reverse=True)[
        :limit
    ]
    runs = []
    for path in paths:
        runs.append({"id": path.parent.name, **_first_flow_run(path), "record": path.as_uri()})
    return runs


def _last_seen(text: str) -> float | None:
    """The newest heartbeat or summary time in a record's tail."""
    for entry in scan(text, {HEARTBEAT, SUMMARY}):
        with contextlib.suppress(ValueError, TypeError, KeyError):
            return float(entry["ts"])
    return None


def _root_line(text: str, newest: bool) -> FlowRunLine | None:
    """The first or newest line of the top-level flow run in a record's head or tail."""
    for entry in scan(text, {FLOW_RUN}, newest=newest):
        if entry.get("parent_task_run_id") is None:
            root: FlowRunLine = entry
            return root
    return None


def _first_flow_run(path: Path, tail_bytes: int = 256 * 1024) -> dict[str, Any]:
    """Name and state of a local run from its record's head and tail, not the whole file."""
    info: dict[str, Any] = {"name": path.parent.name, "state": "Unknown"}
    with path.open("rb") as handle:
        head = handle.read(64 * 1024).decode(errors="replace")
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - tail_bytes))
        tail = handle.read().decode(errors="replace")
    first = _root_line(head, newest=False)
    last = _root_line(tail, newest=True) or first
    if first is not None:
        info.update(name=first.get("name"), flowName=first.get("flow_name"))
    if last is not None:
        info.update(state=last["state"]["name"], start=last.get("start"), end=last.get("end"))
        seen = _last_seen(tail)
        info["lastSeen"] = seen
        final = last["state"]["type"] in FINAL_TYPES
        if seen is not None and not final and time.time() - seen > LOST_AFTER:
            info["state"] = "Lost"
    summary = read_summary(path.as_uri())
    if summary is not None:
        info["counts"] = summary.get("counts", {})
        info["total"] = summary.get("total", 0)
    return info
