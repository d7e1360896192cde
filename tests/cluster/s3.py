"""A real S3 server for tests: SeaweedFS (``weed server -s3``), built from its Go module.

Only package registries are reachable, so ``weed`` is compiled from the module pinned in
``tests/cluster/seaweedfs`` (see its go.mod) by the same cached build as the control plane
(``build._build_into``), into ``~/.cache/headrace/seaweedfs/<commit>-<hash>/bin/weed``.

The server runs with S3 auth on: every start generates an access key and secret and puts
them in a static identities file (``-s3.config``), so a request signed with anything else
is refused, as on real object storage. Master, volume server, filer and S3 gateway run in
one ``weed`` process (in its own process group, with a parent-death signal), on free ports,
with data in a temp work directory that is removed on stop (and pruned if a killed session
left it behind).

``bind_address`` is where it listens: 127.0.0.1 by default; pass ``0.0.0.0`` or a bridge
gateway IP (e.g. 172.17.0.1) so containers on a bridge network can reach it, and give them
``S3Server.endpoint_for(<that IP>)``.

Usage: ``python tests/cluster/s3.py [--force] [--print-path]`` builds;
``python tests/cluster/s3.py up [--bind ADDRESS]`` runs a server until Ctrl-C and prints
the environment a flow needs to use it. ``HEADRACE_WEED=/path/to/weed`` uses an existing
binary instead of building one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

if __name__ == "__main__" and not __package__:  # run as a script: make `cluster` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cluster import build, procs
from cluster.controlplane import _prune_stale_workdirs

MODULE_DIR = Path(__file__).resolve().parent / "seaweedfs"
HASHED_INPUTS = ("go.mod", "go.sum", "tools.go")
PACKAGE = "github.com/seaweedfs/seaweedfs/weed"
# Bump when the way the binary is built changes (flags, targets).
RECIPE_VERSION = "1"
WORKDIR_PREFIX = "headrace-s3-"
REGION = "us-east-1"  # SeaweedFS accepts any; botocore needs one to sign
GRPC_NAMES = ("master", "volume", "filer", "s3")  # the order of their ports in _ports[4:]


class S3ServerError(RuntimeError):
    """The S3 server could not be built or started."""


# -- build ---------------------------------------------------------------------------


def cache_root() -> Path:
    """Root of the weed cache (``HEADRACE_SEAWEEDFS_CACHE`` overrides)."""
    env = os.environ.get("HEADRACE_SEAWEEDFS_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "headrace" / "seaweedfs"


def seaweedfs_commit() -> str:
    """The 12-hex commit of the pinned pseudo-version (SeaweedFS tags are not semver)."""
    text = (MODULE_DIR / "go.mod").read_text()
    match = re.search(r"^require github\.com/seaweedfs/seaweedfs v\S+-([0-9a-f]{12})$", text, re.M)
    if not match:
        raise RuntimeError("github.com/seaweedfs/seaweedfs is not required in seaweedfs/go.mod")
    return match.group(1)


def ldflags() -> str:
    """Strip symbols; stamp the commit that ``weed version`` reports."""
    return f"-s -w -X github.com/seaweedfs/seaweedfs/weed/util/version.COMMIT={seaweedfs_commit()}"


def binary_path() -> Path:
    """Where ``weed`` for the current inputs lives (whether built or not)."""
    override = os.environ.get("HEADRACE_WEED")
    if override:
        return Path(override)
    digest = build.inputs_digest(MODULE_DIR, HASHED_INPUTS, RECIPE_VERSION, ldflags())
    return cache_root() / f"{seaweedfs_commit()}-{digest}" / "bin" / "weed"


def build_weed(force: bool = False, quiet: bool = False) -> Path:
    """Build ``weed`` into the cache if missing; return its path."""
    return build.cached_go_binary(
        binary_path(),
        cache=cache_root(),
        module_dir=MODULE_DIR,
        package=PACKAGE,
        ldflags=ldflags(),
        label=f"weed (SeaweedFS {seaweedfs_commit()})",
        override_var="HEADRACE_WEED",
        force=force,
        quiet=quiet,
    )


# -- server --------------------------------------------------------------------------


def _connect_host(bind_address: str) -> str:
    """The address this machine uses to reach a server bound to ``bind_address``."""
    return "127.0.0.1" if bind_address in ("", "0.0.0.0", "127.0.0.1") else bind_address


def _free_ports(host: str, count: int) -> list[int]:
    """``count`` distinct free TCP ports on ``host`` (all held open until all are picked)."""
    held: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(sock)
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in held]
    finally:
        for sock in held:
            sock.close()


def _grpc_socket(name: str, port: int) -> str:
    """Where weed puts a component's local gRPC socket (fixed in its code, not a flag)."""
    return f"/tmp/seaweedfs-{name}-grpc-{port}.sock"


def _remove_sockets(workdir: Path) -> None:
    """Remove the gRPC sockets a weed started in ``workdir`` left in /tmp."""
    with contextlib.suppress(OSError):
        for path in (workdir / "sockets").read_text().split():
            with contextlib.suppress(OSError):
                os.unlink(path)


@dataclass
class S3Server:
    """A running SeaweedFS S3 endpoint with one bucket and one access key."""

    bind_address: str = "127.0.0.1"
    bucket: str = "headrace-test"
    keep_workdir: bool = field(
        default_factory=lambda: os.environ.get("HEADRACE_CLUSTER_KEEP", "") not in ("", "0")
    )
    access_key: str = field(init=False, default_factory=lambda: "HR" + secrets.token_hex(9).upper())
    secret_key: str = field(init=False, repr=False, default_factory=lambda: secrets.token_hex(20))
    port: int = field(init=False, default=0)
    workdir: Path = field(init=False)
    process: procs.ManagedProcess | None = field(init=False, default=None)
    timings: dict[str, float] = field(init=False, default_factory=dict)
    _ports: list[int] = field(init=False, default_factory=list)

    @property
    def endpoint_url(self) -> str:
        """The endpoint as reached from this machine."""
        return self.endpoint_for(_connect_host(self.bind_address))

    def endpoint_for(self, host: str) -> str:
        """The endpoint as reached through ``host`` (e.g. a bridge gateway IP, from a container)."""
        return f"http://{host}:{self.port}"

    def url(self, key: str = "") -> str:
        """``s3://<bucket>/<key>``."""
        return f"s3://{self.bucket}/{key.lstrip('/')}"

    def storage_options(self) -> dict[str, Any]:
        """fsspec/s3fs options for this server (``fsspec.open(url, **options)``)."""
        return {
            "key": self.access_key,
            "secret": self.secret_key,
            "endpoint_url": self.endpoint_url,
            "client_kwargs": {"region_name": REGION},
        }

    def env(self) -> dict[str, str]:
        """The standard AWS variables a process (the engine, `headrace logs`) reads."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_DEFAULT_REGION": REGION,
        }

    def filesystem(self) -> Any:
        """A fresh ``s3fs.S3FileSystem`` for this server (not fsspec's shared instance)."""
        import s3fs

        return s3fs.S3FileSystem(skip_instance_cache=True, **self.storage_options())

    # -- lifecycle -------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> S3Server:
        """Build if needed, start ``weed server -s3``, create the bucket; fail within ``timeout``."""
        started = time.monotonic()
        try:
            weed = build_weed(quiet=True)
        except (RuntimeError, subprocess.CalledProcessError) as exc:
            raise S3ServerError(f"building SeaweedFS failed: {exc}") from exc
        self.timings["build_check"] = time.monotonic() - started
        base = os.environ.get("HEADRACE_CLUSTER_RUN_DIR")
        if base:
            Path(base).mkdir(parents=True, exist_ok=True)
        _prune_stale_workdirs(Path(base or tempfile.gettempdir()), WORKDIR_PREFIX, _remove_sockets)
        self.workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX, dir=base))
        (self.workdir / "owner.pid").write_text(str(os.getpid()))
        try:
            self._start(weed, started + timeout)
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = time.monotonic() - started
        return self

    def _identities(self) -> Path:
        """The static S3 identities file: one admin identity with this session's key."""
        path = self.workdir / "s3.json"
        identity = {
            "name": "headrace-test",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        path.write_text(json.dumps({"identities": [identity]}))
        path.chmod(0o600)
        return path

    def _argv(self, weed: Path) -> list[str]:
        host = _connect_host(self.bind_address)
        master, volume, filer, s3, *grpc = self._ports
        data = self.workdir / "data"
        (data / "master").mkdir(parents=True)
        return [
            str(weed),
            "-logtostderr=true",
            "server",
            f"-ip={host}",  # what the components advertise to each other
            f"-ip.bind={self.bind_address or '0.0.0.0'}",
            f"-dir={data}",
            f"-master.dir={data / 'master'}",
            f"-master.port={master}",
            f"-master.port.grpc={grpc[0]}",
            "-master.telemetry=false",  # no phoning home (and no internet here anyway)
            "-master.volumeSizeLimitMB=64",
            "-volume.max=64",  # each bucket is a collection that grows several volumes
            "-volume.preStopSeconds=0",  # test data is thrown away: no drain on stop
            f"-volume.port={volume}",
            f"-volume.port.grpc={grpc[1]}",
            "-filer",
            f"-filer.port={filer}",
            f"-filer.port.grpc={grpc[2]}",
            f"-filer.localSocket={self.workdir / 'filer.sock'}",
            "-s3",
            f"-s3.port={s3}",
            f"-s3.port.grpc={grpc[3]}",
            f"-s3.localSocket={self.workdir / 's3.sock'}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={self._identities()}",
        ]

    def _start(self, weed: Path, deadline: float) -> None:
        self._ports = _free_ports(self.bind_address or "0.0.0.0", 8)
        self.port = self._ports[3]
        grpc = zip(GRPC_NAMES, self._ports[4:], strict=True)
        sockets = [_grpc_socket(name, port) for name, port in grpc]
        (self.workdir / "sockets").write_text("\n".join(sockets))  # for a later prune
        step = time.monotonic()
        self.process = procs.spawn(
            "weed", self._argv(weed), self.workdir / "logs" / "weed.log", cwd=self.workdir
        )
        if not procs.wait_until(self._answers, deadline - time.monotonic(), 0.1, self._check):
            raise S3ServerError(f"S3 gateway not answering at {self.endpoint_url}{self._tail()}")
        self.timings["gateway"] = time.monotonic() - step
        step = time.monotonic()
        self._create_bucket(deadline)
        self.timings["bucket"] = time.monotonic() - step

    def _check(self) -> None:
        if self.process is not None and not self.process.alive():
            code = self.process.popen.returncode
            raise S3ServerError(f"weed exited with code {code}{self._tail()}")

    def _tail(self) -> str:
        return f"; log tail:\n{self.process.log_tail()}" if self.process is not None else ""

    def _answers(self) -> bool:
        """Any HTTP answer (an unsigned request gets 403 with auth on) means it is up."""
        try:
            with urllib.request.urlopen(self.endpoint_url + "/", timeout=1):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    def _create_bucket(self, deadline: float) -> None:
        """Signed CreateBucket, then a probe PutObject, retried until both succeed.

        The gateway answers before it can write: a fresh filer joins the master's lock ring
        (which serializes object writes) some seconds after start, and until then the first
        PutObject waits. Paying that here keeps it out of the first test's timing.
        """
        fs = self.filesystem()
        fs.retries = 1  # our loop retries; s3fs's own back-off would overshoot the deadline
        probe = self.url(".headrace-probe")
        while True:
            self._check()
            try:
                fs.mkdir(self.bucket)
                fs.pipe(probe, b"ok")
                fs.rm(probe)
                return
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise S3ServerError(f"creating bucket {self.bucket} failed: {exc}") from exc
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop weed, remove its gRPC sockets and (unless kept) the work directory."""
        if self.process is not None:
            with contextlib.suppress(Exception):
                # weed's own graceful shutdown takes over 10 s (its parts wait for each other);
                # the data is thrown away, so SIGKILL soon after SIGTERM.
                self.process.stop(timeout=2)
            self.process = None
        workdir = getattr(self, "workdir", None)
        if workdir is not None:
            _remove_sockets(workdir)
            if not self.keep_workdir:
                shutil.rmtree(workdir, ignore_errors=True)

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- command line --------------------------------------------------------------------


def _up(args: argparse.Namespace) -> int:
    stop = False

    def _request_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _request_stop)
    with S3Server(bind_address=args.bind, bucket=args.bucket) as server:
        took = server.timings["total"]
        print(f"SeaweedFS S3 up in {took:.1f}s, bucket {server.url()}; logs in {server.workdir}")
        for name, value in server.env().items():
            print(f"export {name}={value}")
        with contextlib.suppress(KeyboardInterrupt):
            while not stop and server.process is not None and server.process.alive():
                time.sleep(0.5)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument("--print-path", action="store_true", help="only print the binary path")
    commands = parser.add_subparsers(dest="command")
    up = commands.add_parser("up", help="run a server until Ctrl-C")
    up.add_argument("--bind", default="127.0.0.1", help="listen address (0.0.0.0, a bridge IP)")
    up.add_argument("--bucket", default="headrace-test")
    args = parser.parse_args(argv)
    if args.print_path:
        print(binary_path())
        return 0
    try:
        if args.command == "up":
            return _up(args)
        build_weed(force=args.force)
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"SeaweedFS: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())


def use_storage_env(monkeypatch: Any, env: dict[str, str]) -> None:
    """Point this test process's s3 access at `env` (a test reads results as a user would).

    fsspec keeps one filesystem per set of arguments, and env-configured ones all look alike:
    one made for another server earlier in the session would be reused, so the cache goes.
    """
    import s3fs

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    s3fs.S3FileSystem.clear_instance_cache()
