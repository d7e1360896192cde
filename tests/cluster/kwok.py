"""Simulated nodes for benchmarks: kwok (``sigs.k8s.io/kwok``), plus kube-scheduler to bind pods.

kwok plays the kubelet's part through the real API: it keeps fake Nodes Ready and moves pods
bound to them through the lifecycle described by its Stages (below), so an operator's own
cost can be measured without running the pods' processes. It is the one simulated part:
the API server, etcd, the scheduler and the operator are real.

The control plane has no scheduler (the real node brings its own), so this also
runs ``kube-scheduler``, built from the control plane's pinned module
(``tests/cluster/go``) by the same cached build; once the control plane build includes it,
that binary is used instead.

kwok is compiled from the module pinned in ``tests/cluster/kwok`` (a tagged release) by
``build._build_into`` into ``~/.cache/headrace/kwok/<version>-<hash>/bin/kwok``.

Usage: ``python tests/cluster/kwok.py [--force] [--print-path]`` builds both;
``HEADRACE_KWOK=/path/to/kwok`` uses an existing kwok instead of building one.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

if __name__ == "__main__" and not __package__:  # run as a script: make `cluster` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cluster import build, procs
from cluster.controlplane import _prune_stale_workdirs

MODULE_DIR = Path(__file__).resolve().parent / "kwok"
HASHED_INPUTS = ("go.mod", "go.sum", "tools.go")
PACKAGE = "sigs.k8s.io/kwok/cmd/kwok"
SCHEDULER_PACKAGE = "k8s.io/kubernetes/cmd/kube-scheduler"
# Bump when the way the binaries are built changes (flags, targets).
RECIPE_VERSION = "1"
LDFLAGS = "-s -w"  # kwok's own version is in its source (pkg/consts.Version)
# kwok manages the Nodes carrying this annotation (and only those).
NODE_ANNOTATION = "kwok.x-k8s.io/node"
NODE_ANNOTATION_VALUE = "fake"
NODE_LABEL = "type"
NODE_LABEL_VALUE = "kwok"
WORKDIR_PREFIX = "headrace-kwok-"


class KwokError(RuntimeError):
    """kwok or the scheduler could not be built or started."""


# -- build ---------------------------------------------------------------------------


def cache_root() -> Path:
    """Root of the kwok cache (``HEADRACE_KWOK_CACHE`` overrides)."""
    env = os.environ.get("HEADRACE_KWOK_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "headrace" / "kwok"


def kwok_version() -> str:
    """The sigs.k8s.io/kwok version pinned in kwok/go.mod, e.g. ``v0.8.0``."""
    text = (MODULE_DIR / "go.mod").read_text()
    match = re.search(r"^\s*(?:require\s+)?sigs\.k8s\.io/kwok\s+(v\S+)", text, re.MULTILINE)
    if not match:
        raise RuntimeError("sigs.k8s.io/kwok is not required in tests/cluster/kwok/go.mod")
    return match.group(1)


def binary_path() -> Path:
    """Where ``kwok`` for the current inputs lives (whether built or not)."""
    override = os.environ.get("HEADRACE_KWOK")
    if override:
        return Path(override)
    digest = build.inputs_digest(MODULE_DIR, HASHED_INPUTS, RECIPE_VERSION, LDFLAGS)
    return cache_root() / f"{kwok_version()}-{digest}" / "bin" / "kwok"


def scheduler_path() -> Path:
    """kube-scheduler of the control plane's Kubernetes version: the control plane build's own
    if it has one, else one built beside it from the same module and flags."""
    bundled = build.bin_dir() / "kube-scheduler"
    if bundled.is_file():
        return bundled
    return build.cache_root() / f"{build.build_key()}-scheduler" / "bin" / "kube-scheduler"


def build_kwok(force: bool = False, quiet: bool = False) -> Path:
    """Build ``kwok`` into the cache if missing; return its path."""
    return build.cached_go_binary(
        binary_path(),
        cache=cache_root(),
        module_dir=MODULE_DIR,
        package=PACKAGE,
        ldflags=LDFLAGS,
        label=f"kwok {kwok_version()}",
        override_var="HEADRACE_KWOK",
        force=force,
        quiet=quiet,
    )


def build_scheduler(force: bool = False, quiet: bool = False) -> Path:
    """Build kube-scheduler into the control plane cache if missing; return its path."""
    target = scheduler_path()
    if target.is_file() and not force:
        if not quiet:
            print(f"kube-scheduler cached at {target}", flush=True)
        return target
    with build._build_lock(build.cache_root()):
        if force or not target.is_file():
            build._build_into(
                target.parent,
                build.GO_MODULE_DIR,
                {"kube-scheduler": SCHEDULER_PACKAGE},
                build.ldflags(build.kubernetes_version()),
                "kube-scheduler",
            )
    return target


# -- stages --------------------------------------------------------------------------

# The engine's termination message for a clean run (see headrace.controller.outcome):
# what a trivial flow that returned nothing reports.
_REPORT = (
    '{{ $id := "" }}'
    "{{ range (index .spec.containers 0).env }}"
    '{{ if eq .name "HEADRACE_FLOW_RUN_ID" }}{{ $id = .value }}{{ end }}'
    "{{ end }}"
    '{{ $report := dict "state" "Completed" "message" "" "flowRunId" $id'
    ' "result" nil "record" nil "counts" (dict) }}'
)


def _stage(
    name: str, kind: str, selector: list[dict[str, Any]], next_: dict[str, Any], delay_ms: int = 0
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "resourceRef": {"apiGroup": "v1", "kind": kind},
        "selector": {"matchExpressions": selector},
        "next": next_,
    }
    if delay_ms:
        spec["delay"] = {"durationMilliseconds": delay_ms}
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": name},
        "spec": spec,
    }


def _not_deleted() -> dict[str, Any]:
    return {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"}


def stages(run_ms: int = 0) -> list[dict[str, Any]]:
    """Node and pod Stages: a Node goes Ready; a pod goes Running, then after ``run_ms`` ends
    with exit code 0 and the engine's JSON report as its termination message; a deleted pod
    ends with 143 (SIGTERM) and is deleted with grace 0 (finalizers stay: whoever set them
    removes them, as with a real kubelet)."""
    node_ready = _stage(
        "node-initialize",
        "Node",
        [
            {
                "key": '.status.conditions.[] | select( .type == "Ready" ) | .status',
                "operator": "NotIn",
                "values": ["True"],
            }
        ],
        {
            "statusTemplate": """
{{ $now := Now }}
conditions:
{{ range NodeConditions }}
- lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ $now | Quote }}
  message: {{ .message | Quote }}
  reason: {{ .reason | Quote }}
  status: {{ .status | Quote }}
  type: {{ .type | Quote }}
{{ end }}
addresses:
- address: {{ NodeIP | Quote }}
  type: InternalIP
- address: {{ NodeName | Quote }}
  type: Hostname
allocatable: {cpu: 1k, memory: 1Ti, pods: 1M}
capacity: {cpu: 1k, memory: 1Ti, pods: 1M}
nodeInfo:
  architecture: amd64
  containerRuntimeVersion: {{ printf "kwok-%s" Version | Quote }}
  kubeletVersion: {{ printf "kwok-%s" Version | Quote }}
  kubeProxyVersion: {{ printf "kwok-%s" Version | Quote }}
  kernelVersion: {{ printf "kwok-%s" Version | Quote }}
  operatingSystem: linux
phase: Running
"""
        },
    )
    containers_state = """
{{ $now := Now }}
conditions:
- {lastTransitionTime: {{ $now | Quote }}, status: "True", type: Initialized}
- {lastTransitionTime: {{ $now | Quote }}, status: "True", type: Ready}
- {lastTransitionTime: {{ $now | Quote }}, status: "True", type: ContainersReady}
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  started: true
  restartCount: 0
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ end }}
hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
phase: Running
startTime: {{ $now | Quote }}
"""
    pod_running = _stage(
        "pod-running",
        "Pod",
        [_not_deleted(), {"key": ".status.phase", "operator": "In", "values": ["Pending"]}],
        {"statusTemplate": containers_state},
    )
    finished = (
        _REPORT
        + """
{{ $now := Now }}
conditions:
- {lastTransitionTime: {{ $now | Quote }}, status: "False", type: Ready, reason: PodCompleted}
- {lastTransitionTime: {{ $now | Quote }}, status: "False", type: ContainersReady, reason: PodCompleted}
containerStatuses:
{{ range .status.containerStatuses }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  started: false
  restartCount: 0
  state:
    terminated:
      exitCode: 0
      reason: Completed
      message: {{ toJson $report | Quote }}
      startedAt: {{ .state.running.startedAt | Quote }}
      finishedAt: {{ $now | Quote }}
{{ end }}
phase: Succeeded
"""
    )
    pod_complete = _stage(
        "pod-complete",
        "Pod",
        [_not_deleted(), {"key": ".status.phase", "operator": "In", "values": ["Running"]}],
        {"statusTemplate": finished},
        delay_ms=run_ms,
    )
    stopped = """
{{ $now := Now }}
containerStatuses:
{{ range .status.containerStatuses }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  started: false
  restartCount: 0
  state:
    terminated:
      exitCode: 143
      reason: Error
      startedAt: {{ or .state.running.startedAt $now | Quote }}
      finishedAt: {{ $now | Quote }}
{{ end }}
phase: Failed
"""
    pod_stop = _stage(
        "pod-stop",
        "Pod",
        [
            {"key": ".metadata.deletionTimestamp", "operator": "Exists"},
            {"key": ".status.phase", "operator": "In", "values": ["Running"]},
        ],
        {"statusTemplate": stopped},
    )
    pod_delete = _stage(
        "pod-delete",
        "Pod",
        [
            {"key": ".metadata.deletionTimestamp", "operator": "Exists"},
            {"key": ".status.phase", "operator": "NotIn", "values": ["Running"]},
        ],
        {"delete": True},
    )
    return [node_ready, pod_running, pod_complete, pod_stop, pod_delete]


# -- processes -----------------------------------------------------------------------


def fake_node(name: str) -> dict[str, Any]:
    """A Node kwok manages (by annotation); status comes from the node-initialize Stage."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {NODE_ANNOTATION: NODE_ANNOTATION_VALUE},
            "labels": {
                NODE_LABEL: NODE_LABEL_VALUE,
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
            },
        },
        "spec": {},
    }


@dataclass
class Kwok:
    """kwok (and, unless ``scheduler_name`` is None, kube-scheduler) against a cluster.

    ``scheduler_name`` is the schedulerName the scheduler serves: ``default-scheduler`` only
    where nothing else binds pods (not beside the real node, whose scheduler serves it).
    """

    kubeconfig: Path
    nodes: int = 1
    scheduler_name: str | None = "default-scheduler"
    run_ms: int = 0
    node_prefix: str = "kwok-node"
    keep_workdir: bool = False
    workdir: Path = field(init=False)
    processes: list[procs.ManagedProcess] = field(init=False, default_factory=list)
    node_names: list[str] = field(init=False, default_factory=list)
    timings: dict[str, float] = field(init=False, default_factory=dict)

    def start(self) -> Kwok:
        started = time.monotonic()
        try:
            kwok = build_kwok(quiet=True)
            scheduler = build_scheduler(quiet=True) if self.scheduler_name else None
        except Exception as exc:
            raise KwokError(f"building kwok/kube-scheduler failed: {exc}") from exc
        self.timings["build_check"] = time.monotonic() - started
        _prune_stale_workdirs(Path(tempfile.gettempdir()), WORKDIR_PREFIX)
        self.workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX))
        (self.workdir / "owner.pid").write_text(str(os.getpid()))
        try:
            self._start(kwok, scheduler)
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = time.monotonic() - started
        return self

    def _start(self, kwok: Path, scheduler: Path | None) -> None:
        from kubernetes import client

        from cluster.kubeconfig import client_from_kubeconfig

        config = self.workdir / "kwok.yaml"
        settings = {
            "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
            "kind": "KwokConfiguration",
            # Stage patches in parallel (default 4): a thousand pods at once should wait on
            # the API server, not on kwok's workers.
            # A configuration file is not defaulted field by field: give kwok's defaults too.
            "options": {
                "podPlayStageParallelism": 16,
                "nodePlayStageParallelism": 4,
                "nodeLeaseParallelism": 4,
                "podsOnNodeSyncParallelism": 1,
                "enablePodsOnNodeSyncListPager": True,
                "enablePodsOnNodeSyncStreamWatch": False,
            },
        }
        documents = [settings, *stages(self.run_ms)]
        config.write_text(yaml.safe_dump_all(documents, sort_keys=False))
        step = time.monotonic()
        proc = procs.spawn(
            "kwok",
            [
                str(kwok),
                f"--config={config}",
                f"--kubeconfig={self.kubeconfig}",
                f"--manage-nodes-with-annotation-selector={NODE_ANNOTATION}={NODE_ANNOTATION_VALUE}",
                "--cidr=10.128.0.0/12",  # room for many pods' IPs
                "--node-ip=10.127.0.1",
                "--server-address=127.0.0.1:0",
            ],
            self.workdir / "logs" / "kwok.log",
        )
        self.processes.append(proc)
        if scheduler is not None:
            self._start_scheduler(scheduler)
        api = client_from_kubeconfig(self.kubeconfig)
        core = client.CoreV1Api(api)
        try:
            for index in range(self.nodes):
                name = f"{self.node_prefix}-{index}"
                with contextlib.suppress(client.ApiException):
                    core.delete_node(name)
                core.create_node(fake_node(name))
                self.node_names.append(name)

            def ready() -> bool:
                for name in self.node_names:
                    node = core.read_node(name)
                    conditions = node.status.conditions or []
                    if not any(c.type == "Ready" and c.status == "True" for c in conditions):
                        return False
                    if node.spec.taints:
                        # TaintNodesByCondition gave the new Node the not-ready taint; the
                        # node-lifecycle controller (not run here) would lift it once Ready.
                        core.patch_node(name, {"spec": {"taints": None}})
                        return False
                return True

            if not procs.wait_until(ready, 30, interval=0.2, check=self._check_alive):
                raise KwokError(f"kwok nodes not Ready after 30s:\n{proc.log_tail()}")
        finally:
            api.close()  # type: ignore[no-untyped-call]
        self.timings["kwok"] = time.monotonic() - step

    def _start_scheduler(self, binary: Path) -> None:
        config = {
            "apiVersion": "kubescheduler.config.k8s.io/v1",
            "kind": "KubeSchedulerConfiguration",
            # The default 50 QPS would bind at most 3,000 pods a minute: measure the
            # operator, not the scheduler's client rate limit.
            "clientConnection": {"kubeconfig": str(self.kubeconfig), "qps": 1000, "burst": 2000},
            "leaderElection": {"leaderElect": False},
            "profiles": [{"schedulerName": self.scheduler_name}],
        }
        path = self.workdir / "kube-scheduler.yaml"
        path.write_text(yaml.safe_dump(config))
        self.processes.append(
            procs.spawn(
                "kube-scheduler",
                [str(binary), f"--config={path}", "--secure-port=0", "--v=1"],
                self.workdir / "logs" / "kube-scheduler.log",
            )
        )

    def _check_alive(self) -> None:
        for proc in self.processes:
            if not proc.alive():
                raise KwokError(
                    f"{proc.name} exited with code {proc.popen.returncode}; log tail:\n"
                    f"{proc.log_tail()}"
                )

    def delete_nodes(self) -> None:
        """Remove the fake Nodes (a shared test cluster should not keep them)."""
        from kubernetes import client

        from cluster.kubeconfig import client_from_kubeconfig

        with contextlib.suppress(Exception):
            api = client_from_kubeconfig(self.kubeconfig)
            try:
                core = client.CoreV1Api(api)
                for name in self.node_names:
                    with contextlib.suppress(client.ApiException):
                        core.delete_node(name)
            finally:
                api.close()  # type: ignore[no-untyped-call]

    def stop(self) -> None:
        for proc in reversed(self.processes):
            with contextlib.suppress(Exception):
                proc.stop(timeout=10)
        self.processes.clear()
        workdir = getattr(self, "workdir", None)
        if workdir is not None and not self.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    def __enter__(self) -> Kwok:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    description = __doc__.splitlines()[0]
    return build.tool_main(description, "kwok", binary_path, [build_kwok, build_scheduler], argv)


if __name__ == "__main__":
    sys.exit(main())
