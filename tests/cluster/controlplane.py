"""Start (and stop) a real Kubernetes control plane for tests: etcd + kube-apiserver
(+ kube-controller-manager for garbage collection and namespace deletion). Pods run on
the real node that ``node.py`` joins to it.

Developer command: ``python tests/cluster/controlplane.py up`` builds if needed,
starts everything, prints ``export KUBECONFIG=...`` and runs until Ctrl-C/SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

if __name__ == "__main__" and not __package__:  # run as a script: make `cluster` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cluster import build, certs, kubeconfig, procs

SERVICE_CIDR = "10.0.0.0/24"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
# Controllers worth their CPU here: GC (ownerReferences), namespace deletion,
# default ServiceAccounts, the workload controllers, and kube-root-ca.crt.
KCM_CONTROLLERS = (
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "job-controller",
    "cronjob-controller",
    "ttl-after-finished-controller",
    "replicaset-controller",
    "deployment-controller",
    # Type-checks ValidatingAdmissionPolicies into their status (the chart ships one).
    "validatingadmissionpolicy-status-controller",
    # Folds the chart's headrace-view/-edit into the built-in view, edit and admin roles.
    "clusterrole-aggregation-controller",
)


class ControlPlaneError(RuntimeError):
    """The control plane could not be built or started."""


def free_port() -> int:
    """An unused loopback TCP port (racy by nature, good enough for one machine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _prune_stale_workdirs(
    base: Path,
    prefix: str = "headrace-cp-",
    before_remove: Callable[[Path], None] | None = None,
) -> None:
    """Remove work directories left by launchers that were killed (SIGKILL skips cleanup)."""
    for workdir in base.glob(f"{prefix}*"):
        try:
            owner = int((workdir / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            if before_remove is not None:
                before_remove(workdir)
            shutil.rmtree(workdir, ignore_errors=True)
        except PermissionError:
            pass


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() not in ("", "0", "false", "no")


@dataclass
class ControlPlane:
    """One running control plane; use as a context manager or call start()/stop()."""

    with_controller_manager: bool = field(
        default_factory=lambda: _env_flag("HEADRACE_CLUSTER_KCM", True)
    )
    # Extra kube-apiserver flags (e.g. an audit policy for a benchmark that counts requests).
    apiserver_flags: list[str] = field(default_factory=list)
    # Where kube-apiserver listens (one address, its flag allows no more). "0.0.0.0" plus
    # `serving_ips` lets pods on a real node's bridge reach it (`RealCluster`).
    bind_address: str = "127.0.0.1"
    # More IPs for the apiserver's serving certificate, besides 127.0.0.1.
    serving_ips: tuple[str, ...] = ()
    keep_workdir: bool = field(default_factory=lambda: _env_flag("HEADRACE_CLUSTER_KEEP", False))
    workdir: Path = field(init=False)
    kubeconfig_path: Path = field(init=False)
    server: str = field(init=False)
    port: int = field(init=False)  # the apiserver's (secure) port
    admin_token: str = field(init=False)
    cert_paths: certs.CertPaths = field(init=False)
    processes: list[procs.ManagedProcess] = field(init=False, default_factory=list)
    timings: dict[str, float] = field(init=False, default_factory=dict)

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> ControlPlane:
        """Build if needed, then start every component and wait until usable."""
        started = time.monotonic()
        try:
            bin_dir = build.build(quiet=True)
        except Exception as exc:
            raise ControlPlaneError(f"building the control plane failed: {exc}") from exc
        self.timings["build_check"] = time.monotonic() - started
        base = os.environ.get("HEADRACE_CLUSTER_RUN_DIR")
        if base:
            Path(base).mkdir(parents=True, exist_ok=True)
        _prune_stale_workdirs(Path(base or tempfile.gettempdir()))
        self.workdir = Path(tempfile.mkdtemp(prefix="headrace-cp-", dir=base))
        (self.workdir / "owner.pid").write_text(str(os.getpid()))
        try:
            self._start_all(bin_dir)
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = time.monotonic() - started
        return self

    def _start_all(self, bin_dir: Path) -> None:
        step = time.monotonic()
        self.cert_paths = certs.generate(self.workdir / "pki", self.serving_ips)
        self.admin_token = secrets.token_hex(24)
        tokens = self.workdir / "tokens.csv"
        tokens.write_text(f'{self.admin_token},admin,admin-uid,"system:masters"\n')
        tokens.chmod(0o600)
        self.timings["certs"] = time.monotonic() - step

        step = time.monotonic()
        etcd_url = self._start_etcd(bin_dir)
        self.timings["etcd"] = time.monotonic() - step

        step = time.monotonic()
        self._start_apiserver(bin_dir, etcd_url, tokens)
        self.timings["apiserver"] = time.monotonic() - step

        self.kubeconfig_path = kubeconfig.write_kubeconfig(
            self.workdir / "admin.kubeconfig",
            self.server,
            self.cert_paths.ca_cert,
            self.admin_token,
        )
        if self.with_controller_manager:
            self._start_controller_manager(bin_dir)

    def stop(self) -> None:
        """Stop components in reverse start order and remove the work directory."""
        for proc in reversed(self.processes):
            with contextlib.suppress(Exception):
                proc.stop(timeout=10)
        self.processes.clear()
        workdir = getattr(self, "workdir", None)
        if workdir is not None and not self.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- components --------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], **kwargs: object) -> procs.ManagedProcess:
        proc = procs.spawn(name, argv, self.workdir / "logs" / f"{name}.log", **kwargs)  # type: ignore[arg-type]
        self.processes.append(proc)
        return proc

    def _check_alive(self, proc: procs.ManagedProcess) -> None:
        if not proc.alive():
            raise ControlPlaneError(
                f"{proc.name} exited with code {proc.popen.returncode}; log tail:\n"
                f"{proc.log_tail()}"
            )

    def _start_etcd(self, bin_dir: Path) -> str:
        client_url = f"http://127.0.0.1:{free_port()}"
        proc = self._spawn(
            "etcd",
            [
                str(bin_dir / "etcd"),
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={client_url}",
                f"--listen-peer-urls=http://127.0.0.1:{free_port()}",
                "--unsafe-no-fsync",  # throwaway data; fsync dominates latency
            ],
        )

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"{client_url}/health", timeout=2) as response:
                    return bool(json.load(response).get("health") == "true")
            except (OSError, ValueError):
                return False

        if not procs.wait_until(healthy, 30, check=lambda: self._check_alive(proc)):
            raise ControlPlaneError(f"etcd not healthy after 30s:\n{proc.log_tail()}")
        return client_url

    def _start_apiserver(self, bin_dir: Path, etcd_url: str, tokens: Path) -> None:
        port = free_port()
        self.port = port
        self.server = f"https://127.0.0.1:{port}"
        pki = self.cert_paths
        proc = self._spawn(
            "kube-apiserver",
            [
                str(bin_dir / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                f"--bind-address={self.bind_address}",
                "--advertise-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={self.workdir / 'apiserver-certs'}",
                f"--tls-cert-file={pki.apiserver_cert}",
                f"--tls-private-key-file={pki.apiserver_key}",
                f"--client-ca-file={pki.ca_cert}",
                f"--token-auth-file={tokens}",
                "--authorization-mode=RBAC",
                f"--service-account-issuer={SA_ISSUER}",
                f"--service-account-key-file={pki.sa_pub}",
                f"--service-account-signing-key-file={pki.sa_key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--allow-privileged=true",
                f"--kubelet-certificate-authority={pki.ca_cert}",
                f"--kubelet-client-certificate={pki.kubelet_client_cert}",
                f"--kubelet-client-key={pki.kubelet_client_key}",
                "--kubelet-preferred-address-types=InternalIP",
                # The default/kubernetes Endpoints cannot hold a loopback address.
                "--endpoint-reconciler-type=none",
                # Fewer moving parts and less CPU on a 2-core machine.
                "--enable-priority-and-fairness=false",
                "--profiling=false",
                "--v=1",
                *self.apiserver_flags,
            ],
        )
        context = ssl.create_default_context(cafile=str(self.cert_paths.ca_cert))

        def ready() -> bool:
            request = urllib.request.Request(
                f"{self.server}/readyz", headers={"Authorization": f"Bearer {self.admin_token}"}
            )
            try:
                with urllib.request.urlopen(request, timeout=3, context=context) as response:
                    return bool(response.status == 200)
            except (OSError, urllib.error.HTTPError):
                return False

        if not procs.wait_until(ready, 60, interval=0.2, check=lambda: self._check_alive(proc)):
            raise ControlPlaneError(f"kube-apiserver not ready after 60s:\n{proc.log_tail()}")

    def _start_controller_manager(self, bin_dir: Path) -> None:
        proc = self._spawn(
            "kube-controller-manager",
            [
                str(bin_dir / "kube-controller-manager"),
                f"--kubeconfig={self.kubeconfig_path}",
                "--leader-elect=false",
                "--secure-port=0",  # no health endpoint needed; no port to collide
                f"--controllers={','.join(KCM_CONTROLLERS)}",
                f"--service-account-private-key-file={self.cert_paths.sa_key}",
                f"--root-ca-file={self.cert_paths.ca_cert}",
                "--use-service-account-credentials=false",
                "--v=1",
            ],
        )
        self._check_alive(proc)


# -- developer command ---------------------------------------------------------------


def _up(args: argparse.Namespace) -> int:
    stop_requested = False

    def _request_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, _request_stop)
    plane = ControlPlane(with_controller_manager=not args.no_controller_manager)
    try:
        plane.start()
    except ControlPlaneError as exc:
        print(f"control plane failed to start: {exc}", file=sys.stderr)
        return 1
    try:
        timings = ", ".join(f"{k}={v:.1f}s" for k, v in plane.timings.items())
        print(f"control plane up ({timings})", flush=True)
        print(f"logs: {plane.workdir / 'logs'}", flush=True)
        print(f"export KUBECONFIG={plane.kubeconfig_path}", flush=True)
        while not stop_requested:
            for proc in plane.processes:
                if not proc.alive():
                    print(f"{proc.name} exited unexpectedly:\n{proc.log_tail()}", file=sys.stderr)
                    return 1
            time.sleep(0.5)
        print("shutting down", flush=True)
        return 0
    finally:
        plane.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Headrace test control plane")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start and keep running until Ctrl-C")
    up.add_argument(
        "--no-controller-manager", action="store_true", help="skip kube-controller-manager"
    )
    args = parser.parse_args(argv)
    return _up(args)


if __name__ == "__main__":
    sys.exit(main())
