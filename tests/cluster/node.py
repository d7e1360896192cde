"""A real Kubernetes node for the test cluster: kubelet + containerd + runc + CNI bridge,
plus kube-scheduler to bind pods to it and kube-controller-manager's
node-lifecycle-controller to lift the not-ready taint new Nodes get.

Everything the node makes lives in namespaces and directories of its own, so that a
killed test run leaves nothing behind and other users of the machine are not touched:

* containerd and the kubelet run under ``unshare --mount --pid --fork --kill-child``:
  a private mount namespace (container rootfs, volume and netns mounts vanish with it;
  ``/run/containerd``, ``/var/log`` and ``/var/lib/cni`` are the work dir's own) and a
  PID namespace whose init is SIGKILLed when the launcher dies (the kernel then kills
  every shim and container in it; shims are not in any process group of ours).
* The kubelet's writes to three global kernel settings (``vm.overcommit_memory``,
  ``kernel.panic``, ``kernel.panic_on_oops``) land in files bind-mounted over them in
  that namespace instead of changing the shared machine's kernel.
* Pod cgroups go under ``cgroupRoot: /headrace-node-<pid>-<id>``, removed on stop (and
  pruned on the next start when the owner died).
* Pods get an address on a bridge ``hr-<id>`` in the host network namespace whose
  address (the gateway, also the node's InternalIP and the pods' ``status.hostIP``)
  belongs to the host, so a process on the host listening on it or on 0.0.0.0 is
  reachable from pods. Pods get no default route and the bridge plugin runs with
  ``isGateway: false`` and ``ipMasq: false``: nothing is forwarded, no sysctl or
  iptables rule of the host changes, and no traffic leaves the machine.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

if __name__ == "__main__" and not __package__:  # run as a script: make `cluster` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cluster import build, certs, images, procs
from cluster.controlplane import ControlPlane, ControlPlaneError, free_port

NODE_NAME = "headrace-real-node"
NODE_LABEL = "headrace.dev/real-node"
CGROUP_FS = Path("/sys/fs/cgroup")
# Global kernel settings the kubelet insists on (cm.setupKernelTunables); shadowed in
# the node's mount namespace so the shared machine keeps its own values.
KERNEL_TUNABLES = {
    "vm/overcommit_memory": "1",
    "vm/panic_on_oom": "0",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
    "kernel/keys/root_maxkeys": "1000000",
    "kernel/keys/root_maxbytes": "25000000",
}
# Host paths containerd and the CNI library use whatever the configuration says; the
# node's mount namespace puts its own directories over them.
NAMESPACE_MOUNTS = {"/run/containerd": "run-containerd", "/var/lib/cni": "var-lib-cni"}
# PID 1 of the node's namespaces: private mounts first, then containerd; the kubelet only
# once the launcher has imported the images (kubelet.go), so its first sandbox finds the
# pause image. PID 1 exits (and so the whole node dies, which the launcher notices) as
# soon as either of them exits.
NODE_INIT = r"""
set -eu
work=$1
mount --bind "$work/ns/run-containerd" /run/containerd
mount --bind "$work/ns/var-lib-cni" /var/lib/cni
mount --bind "$work/ns/var-log" /var/log
for file in "$work"/ns/sysctl/*; do
  [ -e "$file" ] || continue
  target=/proc/sys/$(basename "$file" | tr . /)
  [ -e "$target" ] && mount --bind "$file" "$target"
done
echo "node namespace ready"
containerd --config "$work/containerd.toml" >>"$work/logs/containerd.log" 2>&1 &
while [ ! -S "$work/containerd/containerd.sock" ]; do sleep 0.05; done
touch "$work/containerd.ready"
while [ ! -e "$work/kubelet.go" ]; do sleep 0.05; done
"$work/bin/kubelet" $(cat "$work/kubelet.args") >>"$work/logs/kubelet.log" 2>&1 &
set +e
wait -n
status=$?
echo "containerd or kubelet exited with status $status"
exit 1
"""


class RealNodeError(RuntimeError):
    """The real node could not be started (message has the failing component's log)."""


def _cgroup_mounts() -> list[Path]:
    """Every cgroup hierarchy the kubelet and runc write to (v1 controllers + unified)."""
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _, mountpoint, fstype, *_ = line.split()
        if fstype in ("cgroup", "cgroup2") and mountpoint.startswith(str(CGROUP_FS)):
            found.append(Path(mountpoint))
    return found


def _remove_cgroup_tree(name: str) -> None:
    """rmdir ``/<name>`` in every hierarchy, deepest first (cgroups must be empty)."""
    for mount in _cgroup_mounts():
        top = mount / name
        if not top.is_dir():
            continue
        dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for path in [*dirs, top]:
            with contextlib.suppress(OSError):
                path.rmdir()


def _cgroup_pids(name: str) -> set[int]:
    pids: set[int] = set()
    for mount in _cgroup_mounts():
        top = mount / name
        if top.is_dir():
            for procs_file in top.rglob("cgroup.procs"):
                with contextlib.suppress(OSError, ValueError):
                    pids.update(int(x) for x in procs_file.read_text().split())
    return pids


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _delete_link(name: str) -> None:
    subprocess.run(["ip", "link", "delete", name], capture_output=True, check=False)


def prune_stale(base: Path) -> None:
    """Remove what a killed launcher left: bridge, cgroups, work dir."""
    for workdir in base.glob("headrace-node-*"):
        try:
            owner = int((workdir / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        if _pid_alive(owner):
            continue
        with contextlib.suppress(OSError):
            _delete_link((workdir / "bridge").read_text().strip())
        with contextlib.suppress(OSError):
            _remove_cgroup_tree((workdir / "cgroup").read_text().strip())
        shutil.rmtree(workdir, ignore_errors=True)
    # Cgroups whose work dir is already gone (named after the owner's pid).
    for mount in _cgroup_mounts():
        for top in mount.glob("headrace-node-*"):
            match = re.fullmatch(r"headrace-node-(\d+)-\w+", top.name)
            if match and not _pid_alive(int(match.group(1))):
                _remove_cgroup_tree(top.name)


def free_subnet() -> ipaddress.IPv4Network:
    """A /24 in 10.213.0.0/16 that no interface of this machine uses."""
    used = subprocess.run(
        ["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True
    ).stdout
    for _ in range(100):
        subnet = ipaddress.IPv4Network(f"10.213.{secrets.randbelow(250) + 2}.0/24")
        if f" {subnet.network_address + 1}/" not in used:
            return subnet
    raise RealNodeError("no free 10.213.x.0/24 subnet for the pod bridge")


def _set_toml(text: str, section: str, key: str, value: str) -> str:
    """Set ``key = value`` inside ``[section]`` of containerd's default config (exactly once)."""
    lines = text.splitlines()
    current = ""
    hits = 0
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            current = stripped.strip("[]")
            continue
        if current == section and re.match(rf"{re.escape(key)}\s*=", stripped):
            indent = line[: len(line) - len(line.lstrip())]
            lines[index] = f"{indent}{key} = {value}"
            hits += 1
    if hits != 1:
        raise RealNodeError(f"containerd config default has {hits} [{section}] {key}")
    return "\n".join(lines) + "\n"


def _quote(value: object) -> str:
    return json.dumps(str(value))


@dataclass
class RealNode:
    """A kubelet + containerd node joined to a running :class:`ControlPlane`."""

    plane: ControlPlane
    keep_workdir: bool = False
    name: str = NODE_NAME
    # The schedulerName its kube-scheduler serves: the default one, since this is the
    # cluster's only real node (kwok's fake nodes have a scheduler of their own).
    scheduler_name: str = "default-scheduler"
    # The pod bridge's subnet, when the control plane had to know it first (its serving
    # certificate names the bridge address); default: a free one picked at start.
    requested_subnet: ipaddress.IPv4Network | None = None
    workdir: Path = field(init=False)
    subnet: ipaddress.IPv4Network = field(init=False)
    bridge: str = field(init=False)
    cgroup_root: str = field(init=False)
    node_images: images.NodeImages = field(init=False)
    kubelet_port: int = field(init=False, default=0)
    processes: list[procs.ManagedProcess] = field(init=False, default_factory=list)
    timings: dict[str, float] = field(init=False, default_factory=dict)

    @property
    def host_ip(self) -> str:
        """The host's address on the pod bridge: pods reach host services here."""
        return str(self.subnet.network_address + 1)

    @property
    def containerd_socket(self) -> Path:
        return self.workdir / "containerd" / "containerd.sock"

    def pod_placement(self) -> dict[str, Any]:
        """Pod spec fields that put a pod on this node (not on a fake kwok node)."""
        return {
            "schedulerName": self.scheduler_name,
            "nodeSelector": {"kubernetes.io/hostname": self.name},
        }

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> RealNode:
        started = time.monotonic()
        for tool in ("containerd", "runc", "ctr", "unshare", "ip"):
            if shutil.which(tool) is None:
                raise RealNodeError(
                    f"{tool} not found: apt-get install containerd runc iproute2 util-linux "
                    "(scripts/setup does this when run as root)"
                )
        if os.geteuid() != 0:
            raise RealNodeError("the real node needs root (mounts, cgroups, a bridge)")
        bin_dir = build.build(quiet=True)
        cni_dir = build.build_cni(quiet=True)
        self.timings["build_check"] = time.monotonic() - started
        step = time.monotonic()
        self.node_images = images.build_all()
        self.timings["images_check"] = time.monotonic() - step

        base = Path(os.environ.get("HEADRACE_CLUSTER_RUN_DIR") or tempfile.gettempdir())
        base.mkdir(parents=True, exist_ok=True)
        prune_stale(base)
        self.workdir = Path(tempfile.mkdtemp(prefix="headrace-node-", dir=base))
        (self.workdir / "owner.pid").write_text(str(os.getpid()))
        try:
            self._start_all(bin_dir, cni_dir)
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = time.monotonic() - started
        return self

    def stop(self) -> None:
        """Kill the node's namespaces, then remove its bridge, cgroups and work dir."""
        started = time.monotonic()
        for proc in reversed(self.processes):
            with contextlib.suppress(Exception):
                proc.stop(timeout=5)
        self.processes.clear()
        cgroup = getattr(self, "cgroup_root", None)
        if cgroup:
            # The PID namespace's processes die asynchronously after its init.
            procs.wait_until(lambda: not _cgroup_pids(cgroup), 15)
            _remove_cgroup_tree(cgroup)
        if getattr(self, "bridge", None):
            _delete_link(self.bridge)
        self.timings["stop_processes"] = time.monotonic() - started
        workdir = getattr(self, "workdir", None)
        if workdir is not None and not self.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        self.timings["stop"] = time.monotonic() - started

    def __enter__(self) -> RealNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- pieces ---------------------------------------------------------------------------

    def _start_all(self, bin_dir: Path, cni_dir: Path) -> None:
        work = self.workdir
        suffix = work.name.rsplit("-", 1)[-1][:8].lower()
        suffix = re.sub(r"[^a-z0-9]", "0", suffix)
        self.bridge = f"hr-{suffix}"[:15]
        (work / "bridge").write_text(self.bridge)
        self.cgroup_root = f"headrace-node-{os.getpid()}-{suffix}"
        (work / "cgroup").write_text(self.cgroup_root)
        for mount in _cgroup_mounts():
            (mount / self.cgroup_root).mkdir(exist_ok=True)
        self.subnet = self.requested_subnet or free_subnet()

        step = time.monotonic()
        self._make_bridge()
        self._write_cni(cni_dir)
        self._write_containerd_config()
        self._write_kubelet_config(bin_dir)
        self.timings["config"] = time.monotonic() - step

        step = time.monotonic()
        self._start_namespace()
        self.timings["containerd"] = time.monotonic() - step

        step = time.monotonic()
        # The flow image is unpacked here, once (the project image's layers with it, they are
        # shared): left to the first CreateContainer, each of many pods created at once
        # unpacks its own copy, and with 30 they all ran past the kubelet's 2-minute runtime
        # timeout (CreateContainerError: context deadline exceeded).
        self.ctr("images", "import", "--no-unpack", str(self.node_images.pause.archive))
        self.ctr("images", "import", "--no-unpack", str(self.node_images.project.archive))
        self.ctr("images", "import", str(self.node_images.flows.archive))
        self.timings["image_import"] = time.monotonic() - step

        step = time.monotonic()
        (work / "kubelet.go").touch()
        self._start_scheduler(bin_dir)
        self._start_node_lifecycle(bin_dir)
        self._wait_ready()
        self.timings["kubelet_ready"] = time.monotonic() - step

    def _make_bridge(self) -> None:
        """The pod bridge with the host's address on it, before the first pod needs it."""
        _delete_link(self.bridge)
        for cmd in (
            ["ip", "link", "add", self.bridge, "type", "bridge"],
            ["ip", "addr", "add", f"{self.host_ip}/{self.subnet.prefixlen}", "dev", self.bridge],
            ["ip", "link", "set", self.bridge, "up"],
        ):
            result = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise RealNodeError(f"{' '.join(cmd)}: {result.stderr.strip()}")

    def _write_cni(self, cni_dir: Path) -> None:
        (self.workdir / "cni-bin").mkdir()
        for plugin in build.CNI_PLUGINS:
            os.symlink(cni_dir / plugin, self.workdir / "cni-bin" / plugin)
        conf_dir = self.workdir / "cni-conf"
        conf_dir.mkdir()
        conflist = {
            "cniVersion": "1.0.0",
            "name": "headrace-test",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": self.bridge,
                    "isGateway": False,
                    "ipMasq": False,
                    "hairpinMode": False,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": str(self.subnet), "gateway": self.host_ip}]],
                        "routes": [],
                        "dataDir": str(self.workdir / "cni-ipam"),
                    },
                }
            ],
        }
        (conf_dir / "10-headrace.conflist").write_text(json.dumps(conflist, indent=2))

    def _write_containerd_config(self) -> None:
        work = self.workdir
        result = subprocess.run(
            ["containerd", "config", "default"], capture_output=True, text=True, check=True
        )
        text = result.stdout
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        for section, key, value in (
            ("", "root", _quote(work / "containerd" / "root")),
            ("", "state", _quote(work / "containerd" / "state")),
            ("grpc", "address", _quote(self.containerd_socket)),
            (cri, "sandbox_image", _quote(self.node_images.pause.ref)),
            # No CAP_SYS_RESOURCE here: runc must not try to lower oom_score_adj.
            (cri, "restrict_oom_score_adj", "true"),
            (cri, "netns_mounts_under_state_dir", "true"),
            (f"{cri}.cni", "bin_dir", _quote(work / "cni-bin")),
            (f"{cri}.cni", "conf_dir", _quote(work / "cni-conf")),
            (f"{cri}.containerd.runtimes.runc.options", "SystemdCgroup", "false"),
            (f"{cri}.containerd.runtimes.runc.options", "Root", _quote(work / "runc")),
            (
                'plugins."io.containerd.internal.v1.opt"',
                "path",
                _quote(work / "containerd" / "opt"),
            ),
        ):
            text = _set_toml(text, section, key, value)
        (work / "containerd.toml").write_text(text)
        ns = work / "ns"
        for sub in (*NAMESPACE_MOUNTS.values(), "var-log", "sysctl"):
            (ns / sub).mkdir(parents=True)
        for host_path in NAMESPACE_MOUNTS:
            Path(host_path).mkdir(parents=True, exist_ok=True)  # mount points only
        for name, value in KERNEL_TUNABLES.items():
            (ns / "sysctl" / name.replace("/", ".")).write_text(value + "\n")
        (work / "logs").mkdir(exist_ok=True)

    def _write_kubelet_config(self, bin_dir: Path) -> None:
        work = self.workdir
        pki = self.plane.cert_paths
        cert, key = certs.node_serving_cert(
            pki.ca_cert.parent, f"kubelet-{self.name}", self.name, [self.host_ip, "127.0.0.1"]
        )
        (work / "bin").symlink_to(bin_dir)
        self.kubelet_port = free_port()
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": f"/{self.cgroup_root}",
            "failCgroupV1": False,
            "failSwapOn": False,
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "address": self.host_ip,
            "port": self.kubelet_port,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": free_port(),
            "readOnlyPort": 0,
            "tlsCertFile": str(cert),
            "tlsPrivateKeyFile": str(key),
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(pki.ca_cert)},
            },
            "authorization": {"mode": "Webhook"},
            "enforceNodeAllocatable": [],
            "evictionHard": {},
            "localStorageCapacityIsolation": False,
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "podLogsDir": "/var/log/pods",
            "registerNode": True,
            "resolvConf": "/etc/resolv.conf",
        }
        (work / "kubelet.yaml").write_text(yaml.safe_dump(config))
        args = [
            f"--config={work / 'kubelet.yaml'}",
            f"--kubeconfig={self.plane.kubeconfig_path}",
            f"--hostname-override={self.name}",
            f"--node-ip={self.host_ip}",
            f"--root-dir={work / 'kubelet'}",
            f"--node-labels={NODE_LABEL}=true",
            "--v=2",
        ]
        (work / "kubelet.args").write_text(" ".join(args))

    def _start_namespace(self) -> None:
        script = self.workdir / "node-init.sh"
        script.write_text(NODE_INIT)
        proc = procs.spawn(
            "node",
            [
                "unshare", "--mount", "--propagation=private", "--pid", "--fork",
                "--mount-proc", "--kill-child=SIGKILL",
                "bash", str(script), str(self.workdir),
            ],
            self.workdir / "logs" / "node-init.log",
        )  # fmt: skip
        self.processes.append(proc)
        ready = self.workdir / "containerd.ready"
        if not procs.wait_until(ready.exists, 30, check=lambda: self._check(proc)):
            raise RealNodeError(f"containerd not up after 30s:\n{self._logs()}")

    def _check(self, proc: procs.ManagedProcess) -> None:
        if not proc.alive():
            raise RealNodeError(f"node namespace exited ({proc.popen.returncode}):\n{self._logs()}")

    def _logs(self, lines: int = 30) -> str:
        out = []
        for name in (
            "node-init",
            "containerd",
            "kubelet",
            "kube-scheduler",
            "kube-controller-manager-nodes",
        ):
            path = self.workdir / "logs" / f"{name}.log"
            with contextlib.suppress(OSError):
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {name}.log\n" + "\n".join(tail))
        return "\n".join(out)

    def ctr(self, *args: str) -> str:
        """``ctr`` against this node's containerd, in the CRI plugin's ``k8s.io`` namespace."""
        cmd = ["ctr", "--address", str(self.containerd_socket), "--namespace", "k8s.io", *args]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RealNodeError(f"{' '.join(cmd)} failed: {result.stderr.strip()}")
        return result.stdout

    def _start_scheduler(self, bin_dir: Path) -> None:
        config = {
            "apiVersion": "kubescheduler.config.k8s.io/v1",
            "kind": "KubeSchedulerConfiguration",
            "clientConnection": {"kubeconfig": str(self.plane.kubeconfig_path)},
            "leaderElection": {"leaderElect": False},
            "profiles": [{"schedulerName": self.scheduler_name}],
        }
        path = self.workdir / "kube-scheduler.yaml"
        path.write_text(yaml.safe_dump(config))
        proc = procs.spawn(
            "kube-scheduler",
            [
                str(bin_dir / "kube-scheduler"),
                f"--config={path}",
                "--secure-port=0",
                "--v=2",
            ],
            self.workdir / "logs" / "kube-scheduler.log",
        )
        self.processes.insert(0, proc)  # stopped last... and first to be noticed dead

    def _start_node_lifecycle(self, bin_dir: Path) -> None:
        """kube-controller-manager's node-lifecycle-controller, which the control plane
        does not run: the TaintNodesByCondition admission plugin gives every new Node the
        ``node.kubernetes.io/not-ready:NoSchedule`` taint, and only this controller takes
        it away once the kubelet reports Ready (taint-eviction-controller stays off)."""
        proc = procs.spawn(
            "kube-controller-manager-nodes",
            [
                str(bin_dir / "kube-controller-manager"),
                f"--kubeconfig={self.plane.kubeconfig_path}",
                "--controllers=node-lifecycle-controller",
                "--leader-elect=false",
                "--secure-port=0",
                "--v=1",
            ],
            self.workdir / "logs" / "kube-controller-manager-nodes.log",
        )
        self.processes.insert(0, proc)

    def _wait_ready(self, timeout: float = 120) -> None:
        from kubernetes import client

        from cluster.kubeconfig import client_from_kubeconfig

        api = client_from_kubeconfig(self.plane.kubeconfig_path)
        core = client.CoreV1Api(api)

        def ready() -> bool:
            try:
                node = core.read_node(self.name)
            except client.ApiException:
                return False
            conditions = (node.status.conditions if node.status else None) or []
            taints = (node.spec.taints if node.spec else None) or []
            tainted = any(t.key == "node.kubernetes.io/not-ready" for t in taints)
            return not tainted and any(c.type == "Ready" and c.status == "True" for c in conditions)

        def check() -> None:
            for proc in self.processes:
                if not proc.alive():
                    raise RealNodeError(f"{proc.name} exited:\n{self._logs()}")

        try:
            if not procs.wait_until(ready, timeout, interval=0.5, check=check):
                raise RealNodeError(
                    f"node {self.name} not Ready after {timeout:.0f}s:\n{self._logs()}"
                )
        finally:
            api.close()  # type: ignore[no-untyped-call]


def start_real_node(
    plane: ControlPlane,
    keep_workdir: bool = False,
    scheduler_name: str = "default-scheduler",
    subnet: ipaddress.IPv4Network | None = None,
) -> RealNode:
    """Start a real node joined to ``plane`` (raises :class:`RealNodeError`)."""
    try:
        node = RealNode(plane, keep_workdir, scheduler_name=scheduler_name, requested_subnet=subnet)
        return node.start()
    except (ControlPlaneError, images.ImageBuildError, subprocess.CalledProcessError) as exc:
        raise RealNodeError(str(exc)) from exc


def main(argv: list[str] | None = None) -> int:
    """``python tests/cluster/node.py``: control plane + real node until Ctrl-C/SIGTERM.
    The apiserver also listens on the node's bridge address, so pods (an operator
    in-cluster, with KUBERNETES_SERVICE_HOST/PORT set to it) reach it."""
    import argparse
    import signal

    argparse.ArgumentParser(description=main.__doc__).parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    subnet = free_subnet()
    host_ip = str(subnet.network_address + 1)
    with ControlPlane(bind_address="0.0.0.0", serving_ips=(host_ip,)) as plane:
        try:
            node = start_real_node(plane, plane.keep_workdir, subnet=subnet)
        except RealNodeError as exc:
            print(f"real node failed to start: {exc}", file=sys.stderr)
            return 1
        try:
            timings = ", ".join(f"{k}={v:.1f}s" for k, v in node.timings.items())
            print(f"real node {node.name} Ready ({timings})", flush=True)
            print(f"logs: {node.workdir / 'logs'}", flush=True)
            print(f"pods reach the apiserver at {host_ip}:{plane.port}", flush=True)
            print(f"export KUBECONFIG={plane.kubeconfig_path}", flush=True)
            stop.wait()
        finally:
            node.stop()
            took = ", ".join(f"{k}={node.timings[k]:.1f}s" for k in ("stop_processes", "stop"))
            print(f"real node stopped ({took})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
