"""Where the UI and the CLI read runs from: FlowRuns in the cluster and run records.

The kubernetes client is synchronous; the UI server calls these functions in a thread. Records
are cached per URL and, for local files, read incrementally: a page polling a 10,000-task run
every second re-reads only the lines appended since its last poll.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from headrace import settings
from headrace.crd.models import GROUP, VERSION
from headrace.records.reader import LOST_AFTER, RunRecord, read_summary
from headrace.results.store import local_path, read_bytes
from headrace.states import FINAL_TYPES

PREVIEW_BYTES = 4096  # JSON results up to this size are previewed inline


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


@dataclass
class _Cached:
    record: RunRecord
    offset: int = 0  # bytes of a local file already read
    stamp: tuple[int, float] | None = None
    version: int = 0
    payload: dict[str, Any] | None = field(default=None, repr=False)
    # What changed when, so a page can ask for the changes since its cursor: the cursor is
    # `token:version`, and a new token (a rewritten record) sends the page the whole run.
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    order: list[str] = field(default_factory=list)  # task-run ids by index
    positions: dict[str, int] = field(default_factory=dict, repr=False)
    changed_at: list[int] = field(default_factory=list)  # version each index last changed
    seen: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    flows_seen: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    extras: tuple[int, Any] = (0, None)  # log count and summary

    def track(self, record: RunRecord, version: int, reloaded: bool = False) -> bool:
        """Note which task runs `record` adds or changes; False when nothing changed (then
        the caller keeps the previous record object and version)."""
        changed = False
        if reloaded and list(record.task_runs)[: len(self.order)] != self.order:
            raise _Rewritten
        seen = self.seen
        for tid, run in record.task_runs.items():
            before = seen.get(tid)
            if before is None:
                self.positions[tid] = len(self.order)
                self.order.append(tid)
                self.changed_at.append(version)
            elif before is run or before == run:
                continue
            else:
                self.changed_at[self.positions[tid]] = version
            seen[tid] = run
            changed = True
        flows = dict(record.flow_runs)
        if flows != self.flows_seen:
            self.flows_seen = flows
            changed = True
        extras = (len(record.logs), record.summary)
        if extras != self.extras:
            self.extras = extras
            changed = True
        return changed


class _Rewritten(Exception):
    """The record no longer starts with the task runs already sent: start over."""


class RecordCache:
    """Run records by URL, each re-read only when it changed, local files incrementally."""

    def __init__(self) -> None:
        self._records: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    def get(self, url: str) -> tuple[RunRecord, str]:
        """The record and a version tag that changes whenever its content does."""
        with self._lock:
            cached = self._refresh(url)
            return cached.record, f"{url}#{cached.token}:{cached.version}"

    def _refresh(self, url: str) -> _Cached:
        cached = self._records.get(url)
        path = local_path(url)
        if path is None:
            record = RunRecord.load(url)
            if cached is not None:
                try:
                    if cached.track(record, cached.version + 1, reloaded=True):
                        cached.record = record
                        cached.version += 1
                        cached.payload = None
                    return cached
                except _Rewritten:
                    pass
            cached = _Cached(record, version=1)
            cached.track(record, 1)
            self._records[url] = cached
            return cached
        stat = path.stat()  # FileNotFoundError: no record (yet)
        stamp = (stat.st_size, stat.st_mtime)
        if cached is not None and cached.stamp == stamp:
            return cached
        if cached is None or stat.st_size < cached.offset:
            cached = _Cached(RunRecord(url))
            self._records[url] = cached
        with path.open("rb") as handle:
            handle.seek(cached.offset)
            data = handle.read()
        complete = data.rfind(b"\n") + 1  # a line being written waits for the next read
        cached.record.extend(data[:complete].decode(errors="replace"))
        cached.offset += complete
        cached.stamp = stamp if complete == len(data) else None
        if cached.track(cached.record, cached.version + 1) or cached.version == 0:
            cached.version += 1
            cached.payload = None
        return cached

    def payload(self, url: str, build: Any) -> tuple[dict[str, Any], str]:
        """`build(record)` for the current record, computed once per version."""
        record, tag = self.get(url)
        with self._lock:
            cached = self._records.get(url)
            if cached is not None and cached.payload is not None and cached.record is record:
                return cached.payload, tag
            payload: dict[str, Any] = build(record)
            if cached is not None and cached.record is record:
                cached.payload = payload
            return payload, tag

    def changes(self, url: str, since: str) -> tuple[RunRecord, str, list[int] | None]:
        """The record, its cursor, and the task-run indices changed after cursor `since`;
        None when `since` is not a cursor of this record's current reading (send it all)."""
        with self._lock:
            cached = self._refresh(url)
            cursor = f"{cached.token}:{cached.version}"
            token, _, version = since.partition(":")
            if token != cached.token or not version.isdigit() or int(version) > cached.version:
                return cached.record, cursor, None
            after = int(version)
            changed = [i for i, v in enumerate(cached.changed_at) if v > after]
            return cached.record, cursor, changed


def result_info(url: str) -> dict[str, Any]:
    """A result file's header (serializer, type, size) and, for small JSON, its value."""
    info: dict[str, Any] = {"location": url}
    try:
        data = read_bytes(url)
        newline = data.index(b"\n")
        header = json.loads(data[:newline])
    except FileNotFoundError:
        info["error"] = "result file not found"
        return info
    except (ValueError, OSError) as error:
        info["error"] = f"unreadable result: {error}"
        return info
    info.update(
        serializer=header.get("serializer"),
        type=header.get("type"),
        size=header.get("size"),
        created=header.get("created"),
    )
    body = data[newline + 1 :]
    if header.get("serializer") == "json" and len(body) <= PREVIEW_BYTES:
        with contextlib.suppress(ValueError):
            info["preview"] = json.loads(body)
    return info


def result_body(url: str) -> tuple[bytes, str]:
    """A result's payload (after its header line) and the content type to serve it as."""
    data = read_bytes(url)
    newline = data.find(b"\n")
    try:
        header = json.loads(data[:newline]) if newline >= 0 else {}
    except ValueError:
        header = {}
    if not header.get("headrace-result"):
        return data, "application/octet-stream"
    body = data[newline + 1 :]
    kind = "application/json" if header.get("serializer") == "json" else "application/octet-stream"
    return body, kind


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
    for line in reversed(text.splitlines()):
        if '"kind": "heartbeat"' in line or '"kind": "summary"' in line:
            with contextlib.suppress(ValueError, TypeError, KeyError):
                return float(json.loads(line)["ts"])
    return None


def _root_line(text: str, newest: bool) -> dict[str, Any] | None:
    lines = text.splitlines()
    for line in reversed(lines) if newest else lines:
        if '"kind": "flow_run"' in line and '"parent_task_run_id": null' in line:
            try:
                entry: dict[str, Any] = json.loads(line)
                return entry
            except ValueError:
                continue
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
