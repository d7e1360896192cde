"""Operator throughput on simulated nodes: the operator's own share, without the flows' processes.

    uv run python benchmarks/operator_throughput.py [--runs 1000] [--stored 10000]

Starts the test control plane (tests/cluster: etcd, kube-apiserver, kube-controller-manager)
with no real node, plus kube-scheduler and kwok (tests/cluster/kwok.py): kwok
simulates the node, so a pod bound to it goes Running and ends with exit code 0 and the
engine's JSON report at once, running no process. Everything else is real: the API server,
etcd, the scheduler and `headrace operator` (a subprocess with its own ServiceAccount).

Measures, and prints beside the goals:
1. FlowRuns/min from apply to Completed, N trivial FlowRuns applied at once, one replica;
2. p50/p95 apply -> pod created with those N in flight: from the client's time of the
   FlowRun create's answer to the API server's answer to the operator's pod create (the audit
   log's stageTimestamp, to the microsecond: creationTimestamps have whole seconds only).
   Beside it, apply -> the pod's ADDED watch event, which adds the API server's delivery of
   pod events to its watchers (the operator's own informer gets them no sooner);
3. the operator's RSS (/proc/<pid>/status) once restarted with --stored FlowRuns stored
   (the N real ended runs, plus Completed FlowRuns written through the status subresource);
4. API requests per FlowRun: the operator's own metric (calls through controller/kube.py)
   and the API server's audit log of the operator's identity, split by user agent (kopf's
   watches and patches vs the reconcile's client).
The floor beside them: the same N pods (build_pod's shape) created directly, no operator.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "controller")]

from kubernetes import client  # noqa: E402
from kubernetes.client.exceptions import ApiException  # noqa: E402
from operator_harness import EXAMPLES, FINAL, GROUP, VERSION, install_crds  # noqa: E402

from cluster import procs  # noqa: E402
from cluster.controlplane import ControlPlane, _prune_stale_workdirs, free_port  # noqa: E402
from cluster.fixtures import Cluster, create_namespace  # noqa: E402
from cluster.kubeconfig import client_from_kubeconfig  # noqa: E402
from cluster.kwok import Kwok, kwok_version  # noqa: E402
from cluster.rawapi import RawApi  # noqa: E402
from headrace.controller.podspec import RunPlan, build_pod  # noqa: E402
from headrace.crd.models import FlowSpec  # noqa: E402
from headrace.settings import Settings  # noqa: E402

RUNS_NS = "hr-bench"
OPERATOR_SA = "headrace-operator"
OPERATOR_USER = f"system:serviceaccount:{RUNS_NS}:{OPERATOR_SA}"
CREATORS = 16  # client threads applying objects (the operator's own API bound is 16 too)
GOALS = {"rate": 2000.0, "p95": 1.0, "rss": 300.0, "requests": 6.0}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def wait(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.5) -> None:
    """Poll until true; TimeoutError naming ``what`` (every wait here is bounded)."""
    if not procs.wait_until(predicate, timeout, interval=interval):
        raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


# -- observing -------------------------------------------------------------------------


class Watcher:
    """Follows one collection's watch in a thread, calling ``on_event(type, object, now)``."""

    def __init__(self, api: RawApi, path: str, on_event: Callable[[str, Any, float], None]) -> None:
        self.api, self.path, self.on_event = api, path, on_event
        self.ready = threading.Event()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        version: str | None = None
        while not self.stopped.is_set():
            try:
                if version is None:
                    listed = self.api.get(self.path)
                    version = listed["metadata"]["resourceVersion"]
                    for item in listed["items"]:
                        self.on_event("ADDED", item, time.time())
                    self.ready.set()
                for event in self.api.watch(self.path, timeout_seconds=60, resourceVersion=version):
                    if event["type"] == "ERROR":
                        version = None  # expired: list again
                        break
                    if event["type"] == "BOOKMARK":
                        continue
                    version = event["object"]["metadata"]["resourceVersion"]
                    self.on_event(event["type"], event["object"], time.time())
                    if self.stopped.is_set():
                        return
            except Exception as error:  # a dropped stream: resume from the last version
                if self.stopped.is_set():
                    return
                log(f"watch {self.path}: {error!r}; resuming")
                time.sleep(0.5)

    def stop(self) -> None:
        self.stopped.set()


@dataclass
class Timeline:
    """First-seen times (Unix) of what the watches report, keyed by FlowRun or pod name."""

    applied: dict[str, float] = field(default_factory=dict)
    pod_seen: dict[str, float] = field(default_factory=dict)
    run_seen: dict[str, float] = field(default_factory=dict)  # its first watch event
    paths: dict[str, list[str]] = field(default_factory=dict)  # states each event showed
    done: dict[str, float] = field(default_factory=dict)
    states: collections.Counter[str] = field(default_factory=collections.Counter)
    final: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_flowrun(self, kind: str, obj: Any, now: float) -> None:
        state = (obj.get("status") or {}).get("state")
        name = obj["metadata"]["name"]
        with self.lock:
            self.run_seen.setdefault(name, now)
            path = self.paths.setdefault(name, [])
            if kind == "MODIFIED":
                path.append(str(state))
        if state in FINAL:
            with self.lock:
                if name not in self.done:
                    self.done[name] = now
                    self.final[name] = state

    def on_run_pod(self, kind: str, obj: Any, now: float) -> None:
        run = (obj["metadata"].get("labels") or {}).get("headrace.dev/flow-run")
        if run:
            with self.lock:
                self.pod_seen.setdefault(run, now)

    def on_bare_pod(self, kind: str, obj: Any, now: float) -> None:
        name = obj["metadata"]["name"]
        phase = (obj.get("status") or {}).get("phase")
        with self.lock:
            self.pod_seen.setdefault(name, now)
            if phase in ("Succeeded", "Failed") and name not in self.done:
                self.done[name] = now
                self.states[phase] += 1


def apply_all(bodies: Iterable[tuple[str, Callable[[], Any]]], timeline: Timeline) -> None:
    """Run every create at once over CREATORS threads; note when each one was answered."""

    def one(item: tuple[str, Callable[[], Any]]) -> None:
        name, create = item
        create()
        with timeline.lock:
            timeline.applied[name] = time.time()

    with ThreadPoolExecutor(CREATORS) as pool:
        for _ in pool.map(one, bodies):
            pass


# -- the operator ------------------------------------------------------------------------


class Operator:
    """`headrace operator` as a child that cannot outlive us, with metrics and RSS."""

    def __init__(self, kubeconfig: Path, workdir: Path) -> None:
        self.kubeconfig, self.workdir = kubeconfig, workdir
        self.port = free_port()
        self.proc: procs.ManagedProcess | None = None

    def start(self) -> Operator:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "HEADRACE_METRICS_PORT": str(self.port),
            "HEADRACE_DEFAULT_RESULT_STORAGE": (self.workdir / "storage").as_uri(),
        }
        self.proc = procs.spawn(
            "operator",
            [sys.executable, "-m", "headrace", "operator", "-n", RUNS_NS],
            self.workdir / "operator.log",
            env=env,
        )
        wait(lambda: self._alive() and bool(self.metrics_text()), 60, "the operator's /metrics")
        return self

    def _alive(self) -> bool:
        if self.proc is None or not self.proc.alive():
            tail = self.proc.log_tail() if self.proc else ""
            raise RuntimeError(f"the operator exited; log tail:\n{tail}")
        return True

    def metrics_text(self) -> str:
        try:
            url = f"http://127.0.0.1:{self.port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as response:
                return str(response.read().decode())
        except OSError:
            return ""

    def samples(self, name: str) -> dict[str, float]:
        """``{labels: value}`` of one metric's samples."""
        found: dict[str, float] = {}
        for line in self.metrics_text().splitlines():
            match = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})? ([0-9.e+-]+)$", line)
            if match:
                found[match.group(1) or ""] = float(match.group(2))
        return found

    def status_kb(self, key: str) -> int:
        assert self.proc is not None
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        match = re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE)
        return int(match.group(1)) if match else 0

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(timeout=15)


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0) > 0}


# -- the audit log (what the operator's identity asked the API server) -------------------


AUDIT_POLICY = f"""apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  users: ["{OPERATOR_USER}"]
- level: None
"""


class Audit:
    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def _events(self, start: int, end: int | None = None) -> Iterator[dict[str, Any]]:
        """The audit events written between two marks (a line cut by a mark is skipped)."""
        with self.path.open("rb") as handle:
            handle.seek(start)
            data = handle.read() if end is None else handle.read(end - start)
        for line in data.splitlines():
            with contextlib.suppress(ValueError):
                yield json.loads(line)

    def requests(self, start: int, end: int | None = None) -> collections.Counter[tuple[str, ...]]:
        """Distinct requests between two marks, by (agent, verb, resource, HTTP code)."""
        seen: set[str] = set()
        counts: collections.Counter[tuple[str, ...]] = collections.Counter()
        for event in self._events(start, end):
            if event["auditID"] in seen or event["user"]["username"] != OPERATOR_USER:
                continue
            seen.add(event["auditID"])
            agent = str(event.get("userAgent", "?")).split("/")[0]
            ref = event.get("objectRef") or {}
            resource = ref.get("resource", "?") + (
                f"/{ref['subresource']}" if ref.get("subresource") else ""
            )
            code = str((event.get("responseStatus") or {}).get("code", "?"))
            counts[(agent, event["verb"], resource, code)] += 1
        return counts

    def pods_created(self, start: int) -> dict[str, float]:
        """When the API server answered each of the operator's pod creates (Unix time, to the
        microsecond), by the FlowRun's name: when the pod existed, to within its own write."""
        created: dict[str, float] = {}
        for event in self._events(start):
            ref = event.get("objectRef") or {}
            if (
                event.get("verb") != "create"
                or ref.get("resource") != "pods"
                or (event.get("responseStatus") or {}).get("code") != 201
                or "name" not in ref
            ):
                continue
            run = ref["name"].rsplit("-", 2)[0]  # <flowrun>-<uid prefix>-<attempt>
            answered = datetime.fromisoformat(event["stageTimestamp"]).timestamp()
            created.setdefault(run, answered)
        return created


# -- the benchmark -------------------------------------------------------------------------


def flowrun(name: str) -> dict[str, Any]:
    """A trivial FlowRun (examples/manifests/flowrun-hello.yaml's flow)."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "FlowRun",
        "metadata": {"name": name},
        "spec": {
            "flow": {
                "image": "ghcr.io/headrace/examples:0.1.0",
                "entrypoint": f"{EXAMPLES / 'flows'}/cluster_flows.py:hello",
            },
            "parameters": {"name": "bench", "n": 1},
        },
    }


def flowruns_path(namespace: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/flowruns"


def baseline(
    raw: RawApi, cluster: Cluster, runs: int, timeout: float, cpu: CpuMeter
) -> dict[str, Any]:
    """The floor: the same pods, created directly (no operator), taken to Succeeded by kwok."""
    namespace = create_namespace(cluster, "hr-floor")
    config = Settings()
    bodies = []
    for index in range(runs):
        plan = RunPlan(
            namespace=namespace,
            run_name=f"floor-{index}",
            run_uid=str(uuid.uuid4()),
            attempt=1,
            flow=FlowSpec.model_validate(flowrun("x")["spec"]["flow"]),
            parameters={"name": "bench", "n": 1},
            result_storage="file:///tmp/headrace",
            storage_secret=None,
            deadline=None,
            deployment=None,
            deployment_version=None,
        )
        pod = build_pod(plan, config)
        # No FlowRun owns it: without this the garbage collector would delete it.
        del pod["metadata"]["ownerReferences"]
        bodies.append(pod)
    timeline = Timeline()
    path = f"/api/v1/namespaces/{namespace}/pods"
    watcher = Watcher(raw, path, timeline.on_bare_pod)
    watcher.ready.wait(30)
    log(f"floor: creating {runs} pods directly")
    cpu.start()
    started = time.time()
    apply_all(((b["metadata"]["name"], partial(raw.post, path, b)) for b in bodies), timeline)
    applied = time.time()
    wait(lambda: len(timeline.done) >= runs, timeout, f"{runs} pods to finish", 0.2)
    cpu_used = cpu.stop()
    watcher.stop()
    ended = max(timeline.done.values())
    to_done = [timeline.done[n] - timeline.applied[n] for n in timeline.done]
    return {
        "rate": runs / (ended - started) * 60,
        "seconds": ended - started,
        "apply_seconds": applied - started,
        "p50": percentile(to_done, 0.5),
        "p95": percentile(to_done, 0.95),
        "states": dict(timeline.states),
        "cpu": cpu_used,
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process: unlike wall time, other load barely moves it."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds each named process spends between `start` and `stop`."""

    def __init__(self, pids: Callable[[], dict[str, int]]) -> None:
        self.pids = pids
        self.before: dict[str, float] = {}

    def start(self) -> None:
        self.before = {name: cpu_seconds(pid) for name, pid in self.pids().items()}

    def stop(self) -> dict[str, float]:
        now = {name: cpu_seconds(pid) for name, pid in self.pids().items()}
        return {name: now[name] - self.before.get(name, 0.0) for name in now}


def settle(operator: Operator, quiet: float = 3.0, timeout: float = 120.0) -> None:
    """Wait until the operator's CPU time stays still for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    last = operator.cpu_seconds()
    still_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = operator.cpu_seconds()
        if now - last > 0.05:
            still_since = time.monotonic()
        last = now
        if time.monotonic() - still_since >= quiet:
            return
    log(f"the operator did not go quiet within {timeout:.0f}s")


def capture_profile(raw: RawApi, seconds: int, out: Path) -> threading.Thread:
    """The kube-apiserver's own CPU profile (Go pprof) over the next ``seconds``, to ``out``:
    `go tool pprof -top <out>` says where the API server's time per FlowRun goes."""

    def fetch() -> None:
        try:
            response = raw._call(
                "GET", "/debug/pprof/profile", query={"seconds": seconds}, timeout=seconds + 30
            )
            out.write_bytes(response.read())
            log(f"kube-apiserver CPU profile ({seconds}s) written to {out}")
        except Exception as error:  # a profile is a bonus: never fail the benchmark for it
            log(f"no kube-apiserver profile: {error!r}")

    thread = threading.Thread(target=fetch, daemon=True)
    thread.start()
    return thread


def throughput(
    raw: RawApi,
    operator: Operator,
    audit: Audit,
    runs: int,
    timeout: float,
    cpu: CpuMeter,
    pprof: Path | None = None,
) -> dict[str, Any]:
    timeline = Timeline()
    path = flowruns_path(RUNS_NS)
    fr_watch = Watcher(raw, path, timeline.on_flowrun)
    pod_watch = Watcher(raw, f"/api/v1/namespaces/{RUNS_NS}/pods", timeline.on_run_pod)
    fr_watch.ready.wait(30)
    pod_watch.ready.wait(30)

    # One run first, so kopf's watches are up and nothing is measured cold.
    raw.post(path, flowrun("warmup"))
    wait(lambda: "warmup" in timeline.done, 120, "the warm-up FlowRun to end")
    settle(operator, quiet=2.0)
    metric = "headrace_kube_api_request_duration_seconds_count"
    before = operator.samples(metric)
    before_sum = operator.samples(metric.replace("_count", "_sum"))
    queued = "headrace_workqueue_wait_seconds"
    own = "headrace_flowrun_pod_creation_own_seconds"
    series = [f"{name}_{part}" for name in (queued, own) for part in ("count", "sum")]
    series_before = {name: operator.samples(name) for name in series}
    reconciles_before = sum(operator.samples("headrace_reconcile_duration_seconds_count").values())
    time.sleep(2)  # the audit backend flushes every second
    mark = audit.mark()
    names = [f"run-{index:05d}" for index in range(runs)]
    log(f"operator: applying {runs} FlowRuns at once")
    cpu.start()
    profiling = capture_profile(raw, 15, pprof) if pprof else None
    started = time.time()
    apply_all(((n, partial(raw.post, path, flowrun(n))) for n in names), timeline)
    applied = time.time()
    log(f"applied in {applied - started:.1f}s; waiting for them to end")
    peak_rss = 0

    def all_done() -> bool:
        nonlocal peak_rss
        operator._alive()
        peak_rss = max(peak_rss, operator.status_kb("VmRSS"))
        return all(n in timeline.done for n in names)

    try:
        wait(all_done, timeout, f"{runs} FlowRuns to end", 0.5)
    finally:
        fr_watch.stop()
        pod_watch.stop()
    cpu_used = cpu.stop()
    if profiling is not None:
        profiling.join()
    ended = max(timeline.done[n] for n in names)
    final_state = timeline.final
    settle(operator)
    time.sleep(2)  # the audit backend writes its batch every second
    api = delta(operator.samples(metric), before)
    reconciles = sum(operator.samples("headrace_reconcile_duration_seconds_count").values())
    to_pod = [timeline.pod_seen[n] - timeline.applied[n] for n in names if n in timeline.pod_seen]
    pods_created = audit.pods_created(mark)
    to_created = [pods_created[n] - timeline.applied[n] for n in names if n in pods_created]
    to_done = [timeline.done[n] - timeline.applied[n] for n in names]
    # The FlowRun's watch event reaching a client (as it reaches the operator).
    to_seen = [timeline.run_seen[n] - timeline.applied[n] for n in names if n in timeline.run_seen]
    api_seconds = delta(operator.samples(metric.replace("_count", "_sum")), before_sum)
    grown = {name: delta(operator.samples(name), series_before[name]) for name in series}
    queue_counts, queue_sums = grown[f"{queued}_count"], grown[f"{queued}_sum"]
    own_count, own_sum = grown[f"{own}_count"], grown[f"{own}_sum"]
    queue_wait = {
        labels: (count, queue_sums.get(labels, 0.0) / count)
        for labels, count in queue_counts.items()
        if count
    }
    return {
        "rate": runs / (ended - started) * 60,
        "seconds": ended - started,
        "apply_seconds": applied - started,
        "pod_p50": percentile(to_pod, 0.5),
        "pod_p95": percentile(to_pod, 0.95),
        "pod_max": max(to_pod),
        "created_p50": percentile(to_created, 0.5),
        "created_p95": percentile(to_created, 0.95),
        "created_max": max(to_created, default=float("nan")),
        "created_count": len(to_created),
        "seen_p50": percentile(to_seen, 0.5),
        "seen_p95": percentile(to_seen, 0.95),
        "api_seconds": api_seconds,
        "queue_wait": queue_wait,
        "own_mean": sum(own_sum.values()) / max(1.0, sum(own_count.values())),
        "paths": collections.Counter(" > ".join(timeline.paths.get(n, [])) for n in names),
        "done_p50": percentile(to_done, 0.5),
        "done_p95": percentile(to_done, 0.95),
        "states": dict(collections.Counter(final_state[n] for n in names)),
        "api": api,
        "reconciles": reconciles - reconciles_before,
        "audit": audit.requests(mark),
        "peak_rss_mb": peak_rss / 1024,
        "hwm_mb": operator.status_kb("VmHWM") / 1024,
        "cpu": cpu_used,
    }


def store(raw: RawApi, stored: int, template: dict[str, Any]) -> int:
    """Top the namespace up to ``stored`` FlowRuns, written Completed through the status
    subresource (a copy of a real ended run's status, their own pod names)."""
    path = flowruns_path(RUNS_NS)
    have = len(raw.get(path)["items"])
    extra = max(0, stored - have)
    if not extra:
        return 0
    log(f"storing {extra} more Completed FlowRuns (status subresource)")

    def one(index: int) -> None:
        name = f"stored-{index:05d}"
        created = raw.post(path, flowrun(name))
        status = json.loads(json.dumps(template))
        uid = created["metadata"]["uid"]
        for attempt in status.get("attempts") or []:
            attempt["podName"] = f"{name}-{uid.replace('-', '')[:6]}-{attempt['number']}"
        raw.merge_patch(f"{path}/{name}/status", {"status": status})

    with ThreadPoolExecutor(CREATORS) as pool:
        for _ in pool.map(one, range(extra)):
            pass
    return extra


def restart_rss(
    raw: RawApi, kubeconfig: Path, workdir: Path, audit: Audit, timeout: float
) -> dict[str, Any]:
    """A fresh operator over everything stored: its RSS once it has read them all."""
    total = len(raw.get(flowruns_path(RUNS_NS))["items"])
    mark = audit.mark()
    operator = Operator(kubeconfig, workdir).start()
    try:
        started = time.monotonic()
        settle(operator, quiet=5.0, timeout=timeout)
        took = time.monotonic() - started
        time.sleep(2)
        return {
            "stored": total,
            "rss_mb": operator.status_kb("VmRSS") / 1024,
            "hwm_mb": operator.status_kb("VmHWM") / 1024,
            "settle_seconds": took,
            "audit": audit.requests(mark),
        }
    finally:
        operator.stop()


# -- report ---------------------------------------------------------------------------------


def by_agent(counts: collections.Counter[tuple[str, ...]]) -> dict[str, int]:
    agents: collections.Counter[str] = collections.Counter()
    for (agent, *_), count in counts.items():
        agents[agent] += count
    return dict(agents)


def report(
    args: argparse.Namespace,
    floor: dict[str, Any] | None,
    run: dict[str, Any],
    rss: dict[str, Any] | None,
) -> None:
    n = args.runs
    reconcile_calls = sum(run["api"].values())
    audited = run["audit"]
    audited_total = sum(audited.values())
    agents = by_agent(audited)
    kopf = agents.get("kopf", 0)
    print()
    print(f"Headrace operator throughput: one replica, N={n} trivial FlowRuns applied at once")
    print(
        f"Nodes are SIMULATED by kwok {kwok_version()} (pods run no process; kwok ends each "
        "with exit 0 and the engine's report)."
    )
    print("Real: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, the operator.")
    print()
    row = "{:<44} {:>16} {:>20} {:>12}"
    print(row.format("", "operator", "floor (no operator)", "goal"))
    floor_rate = f"{floor['rate']:,.0f} pods/min" if floor else "-"
    status = "ok" if run["rate"] >= GOALS["rate"] else "MISSED"
    print(
        row.format(
            "FlowRuns/min, apply -> Completed",
            f"{run['rate']:,.0f}",
            floor_rate,
            f">= 2,000 {status}",
        )
    )
    floor_p = f"{floor['p50']:.2f} / {floor['p95']:.2f} s" if floor else "-"
    print(
        row.format(
            "  apply -> end p50 / p95",
            f"{run['done_p50']:.2f} / {run['done_p95']:.2f} s",
            floor_p,
            "",
        )
    )
    status = "ok" if run["created_p95"] <= GOALS["p95"] else "MISSED"
    print(
        row.format(
            f"apply -> pod created p50 / p95 ({n} in flight)",
            f"{run['created_p50']:.2f} / {run['created_p95']:.2f} s",
            "-",
            f"p95 <= 1 s {status}",
        )
    )
    details = [
        ("  (pods created: the audit log's answer times)", f"{run['created_count']}"),
        ("  apply -> run's watch event", f"{run['seen_p50']:.2f} / {run['seen_p95']:.2f} s"),
        ("  apply -> pod's watch event", f"{run['pod_p50']:.2f} / {run['pod_p95']:.2f} s"),
    ]
    for label, value in details:
        print(row.format(label, value, "", ""))
    if rss:
        status = "ok" if rss["rss_mb"] <= GOALS["rss"] else "MISSED"
        print(
            row.format(
                f"operator RSS, {rss['stored']:,} stored (restarted)",
                f"{rss['rss_mb']:.0f} MB",
                "-",
                f"<= 300 MB {status}",
            )
        )
    print(row.format(f"operator RSS peak while running {n}", f"{run['hwm_mb']:.0f} MB", "-", ""))
    per_run = reconcile_calls / n
    status = "ok" if per_run <= GOALS["requests"] else "MISSED"
    print(
        row.format(
            "API requests/FlowRun, reconcile (kube.py)", f"{per_run:.1f}", "-", f"<= 6 {status}"
        )
    )
    status = "ok" if audited_total / n <= GOALS["requests"] else "MISSED"
    print(
        row.format(
            "API requests/FlowRun, all (audit log)",
            f"{audited_total / n:.1f}",
            "-",
            f"<= 6 {status}",
        )
    )
    print(row.format("  of which kopf", f"{kopf / n:.1f}", "-", ""))
    print(row.format("reconcile steps/FlowRun", f"{run['reconciles'] / n:.1f}", "-", ""))
    print()
    print(
        f"runs ended: {run['states']}; all applied in {run['apply_seconds']:.1f}s, "
        f"all ended after {run['seconds']:.1f}s; pod max {run['pod_max']:.2f}s"
    )
    if floor:
        print(
            f"floor: {n} pods applied in {floor['apply_seconds']:.1f}s, all ended after "
            f"{floor['seconds']:.1f}s, {floor['states']}"
        )
    print()
    print("CPU seconds per 1,000 FlowRuns (floor: per 1,000 pods), user + system:")
    names = sorted(run["cpu"], key=lambda name: -run["cpu"][name])
    for name in names:
        spent = run["cpu"][name] * 1000 / n
        beside = f"   floor {floor['cpu'].get(name, 0.0) * 1000 / n:7.1f}" if floor else ""
        print(f"  {name:<24} {spent:7.1f}{beside}")
    print()
    print("reconcile API calls per FlowRun (headrace_kube_api_request_duration_seconds_count):")
    for labels, count in sorted(run["api"].items(), key=lambda kv: -kv[1]):
        mean_ms = run["api_seconds"].get(labels, 0.0) / count * 1000 if count else 0.0
        print(f"  {count / n:6.2f}  mean {mean_ms:6.1f} ms  {labels}")
    print(
        "operator's own share of apply -> pod (run's event in -> pod create answered), mean: "
        f"{run['own_mean'] * 1000:.0f} ms"
    )
    print("work queue: keys taken per FlowRun and their mean wait once due:")
    for labels, (count, mean) in sorted(run["queue_wait"].items()):
        print(f"  {count / n:6.2f}  mean {mean * 1000:6.1f} ms  {labels}")
    print("the runs' status changes as their watch events showed them (runs: changes):")
    for path, count in run["paths"].most_common(6):
        print(f"  {count:6d}  {path}")
    print("operator identity's requests per FlowRun (audit log, by user agent):")
    for (agent, verb, resource, code), count in sorted(audited.items(), key=lambda kv: -kv[1]):
        print(f"  {count / n:6.2f}  {agent:<18} {verb:<8} {resource:<22} {code}")
    if rss:
        print(
            f"restart over {rss['stored']:,} stored runs: quiet after "
            f"{rss['settle_seconds']:.1f}s, RSS {rss['rss_mb']:.0f} MB "
            f"(peak {rss['hwm_mb']:.0f} MB). Stored: {rss['stored'] - rss['written']:,} runs that "
            f"ran (with their pods) and {rss['written']:,} written Completed through the status "
            "subresource (no pods). Its requests:"
        )
        for (agent, verb, resource, code), count in sorted(
            rss["audit"].items(), key=lambda kv: -kv[1]
        ):
            print(f"  {count:6d}  {agent:<18} {verb:<8} {resource:<22} {code}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000, help="FlowRuns applied at once")
    parser.add_argument("--stored", type=int, default=10000, help="FlowRuns stored for RSS")
    parser.add_argument("--no-floor", action="store_true", help="skip the no-operator floor")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per phase")
    parser.add_argument("--keep", action="store_true", help="keep the work directories")
    parser.add_argument(
        "--pprof", type=Path, help="write the kube-apiserver's CPU profile of the first 15 s here"
    )
    args = parser.parse_args()

    _prune_stale_workdirs(Path(tempfile.gettempdir()), "headrace-bench-tp-")
    workdir = Path(tempfile.mkdtemp(prefix="headrace-bench-tp-"))
    (workdir / "owner.pid").write_text(str(os.getpid()))
    audit = Audit(workdir / "audit.log")
    (workdir / "audit-policy.yaml").write_text(AUDIT_POLICY)
    plane = ControlPlane(
        keep_workdir=args.keep,
        apiserver_flags=[
            f"--audit-policy-file={workdir / 'audit-policy.yaml'}",
            f"--audit-log-path={audit.path}",
            "--audit-log-mode=batch",
            "--audit-log-batch-max-wait=1s",
            *(["--profiling=true"] if args.pprof else []),
        ],
    )
    kwok: Kwok | None = None
    operator: Operator | None = None
    api_client: client.ApiClient | None = None
    try:
        log("starting the control plane (no real node)")
        plane.start()
        api_client = client_from_kubeconfig(plane.kubeconfig_path, pool_size=CREATORS * 2)
        cluster = Cluster(plane.kubeconfig_path, api_client, plane)
        kwok = Kwok(plane.kubeconfig_path, keep_workdir=args.keep).start()
        log(f"kwok and kube-scheduler up in {kwok.timings['total']:.1f}s")
        install_crds(api_client)
        raw = RawApi(api_client)

        def pids() -> dict[str, int]:
            assert kwok is not None
            found = {p.name: p.pid for p in [*plane.processes, *kwok.processes]}
            if operator is not None and operator.proc is not None:
                found["operator"] = operator.proc.pid
            return found

        cpu = CpuMeter(pids)
        floor = None if args.no_floor else baseline(raw, cluster, args.runs, args.timeout, cpu)

        core = client.CoreV1Api(api_client)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=RUNS_NS)))
        with contextlib.suppress(ApiException):
            core.create_namespaced_service_account(
                RUNS_NS, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="default"))
            )
        client.RbacAuthorizationV1Api(api_client).create_cluster_role_binding(
            {
                "metadata": {"name": "headrace-bench-operator"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "cluster-admin",
                },
                "subjects": [{"kind": "ServiceAccount", "name": OPERATOR_SA, "namespace": RUNS_NS}],
            }
        )
        kubeconfig = cluster.service_account_kubeconfig(
            RUNS_NS, OPERATOR_SA, workdir / "operator.kubeconfig"
        )
        operator = Operator(kubeconfig, workdir).start()
        run = throughput(raw, operator, audit, args.runs, args.timeout, cpu, args.pprof)
        operator.stop()
        operator = None
        rss = None
        if args.stored:
            template = raw.get(f"{flowruns_path(RUNS_NS)}/run-00000")["status"]
            written = store(raw, args.stored, template)
            rss = restart_rss(raw, kubeconfig, workdir, audit, args.timeout)
            rss["written"] = written
        report(args, floor, run, rss)
        return 0
    except (TimeoutError, RuntimeError) as error:
        log(f"benchmark failed: {error}")
        if operator is not None and operator.proc is not None:
            log(f"operator log tail:\n{operator.proc.log_tail(30)}")
        return 1
    finally:
        if operator is not None:
            operator.stop()
        if kwok is not None:
            kwok.stop()
        if api_client is not None:
            api_client.close()  # type: ignore[no-untyped-call]
        plane.stop()
        if args.keep:
            log(f"kept {workdir} and {plane.workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
