"""Containers as local processes: environment resolution, spawning, logging, exit states.

The image is ignored: a container is its ``command`` + ``args`` run on this
machine in its own process group, with the pod's environment. Output is written
in the CRI log format (``<time> <stream> F <line>``) so logs can be served with
timestamps and by stream, like a real kubelet does.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from cluster.procs import death_signal_preexec

JSON = dict[str, Any]
_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
# Environment a process needs to find its interpreter; containers get no other host env.
_INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")


class ConfigError(Exception):
    """A container cannot be configured yet (e.g. a referenced Secret is missing)."""


def now() -> str:
    """Kubernetes ``metav1.Time`` (second precision, UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_nano() -> str:
    """RFC 3339 with nanosecond-style precision, as in CRI log lines."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: defined vars are substituted, ``$$`` escapes."""

    def _sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _VAR_REF.sub(_sub, value)


def _field_ref(pod: JSON, path: str) -> str:
    meta, spec, status = pod["metadata"], pod["spec"], pod.get("status", {})
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": status.get("podIP") or "127.0.0.1",
        "status.hostIP": status.get("hostIP") or "127.0.0.1",
    }
    if path in simple:
        return str(simple[path] or "")
    match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if match:
        return str(meta.get(match.group(1), {}).get(match.group(2), ""))
    raise ConfigError(f"unsupported fieldRef {path!r}")


def resolve_env(
    pod: JSON,
    spec: JSON,
    base: dict[str, str],
    read: Callable[[str, str], JSON | None],
) -> dict[str, str]:
    """The container's environment. ``read(kind, name)`` fetches a Secret/ConfigMap or None."""
    env = dict(base)

    def _data(kind: str, name: str, optional: bool) -> dict[str, str] | None:
        obj = read(kind, name)
        if obj is None:
            if optional:
                return None
            raise ConfigError(f"{kind.lower()} {name!r} not found")
        data: dict[str, str] = dict(obj.get("data") or {})
        if kind == "Secret":
            return {k: base64.b64decode(v).decode() for k, v in data.items()}
        return data

    for source in spec.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            ref = source.get(key)
            if ref:
                data = _data(kind, ref["name"], bool(ref.get("optional")))
                env.update({prefix + k: v for k, v in (data or {}).items()})
    for var in spec.get("env") or []:
        name = var["name"]
        value_from = var.get("valueFrom")
        if value_from is None:
            env[name] = expand(var.get("value", ""), env)
        elif "fieldRef" in value_from:
            env[name] = _field_ref(pod, value_from["fieldRef"]["fieldPath"])
        elif "secretKeyRef" in value_from or "configMapKeyRef" in value_from:
            kind, key = (
                ("Secret", "secretKeyRef")
                if "secretKeyRef" in value_from
                else ("ConfigMap", "configMapKeyRef")
            )
            ref = value_from[key]
            optional = bool(ref.get("optional"))
            data = _data(kind, ref["name"], optional)
            if data is not None and ref["key"] in data:
                env[name] = data[ref["key"]]
            elif not optional:
                raise ConfigError(f"key {ref['key']!r} not found in {kind.lower()} {ref['name']!r}")
        else:
            raise ConfigError(f"unsupported valueFrom in env var {name!r}")
    return env


def base_env(pod: JSON, api_host: str, api_port: int) -> dict[str, str]:
    """What a real container would see without any ``env``: hostname and API service vars."""
    env = {key: os.environ[key] for key in _INHERITED_ENV if key in os.environ}
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env["HOSTNAME"] = pod["metadata"]["name"]
    env["KUBERNETES_SERVICE_HOST"] = api_host
    env["KUBERNETES_SERVICE_PORT"] = str(api_port)
    env["KUBERNETES_SERVICE_PORT_HTTPS"] = str(api_port)
    return env


class StartError(Exception):
    """The container process could not be started (no command, binary missing, ...)."""


@dataclass
class ContainerRun:
    """One container of a pod, across its restarts."""

    spec: JSON
    log_dir: Path
    restart_count: int = 0
    popen: subprocess.Popen[bytes] | None = None
    started_at: str | None = None
    state: JSON = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: JSON = field(default_factory=dict)
    restart_at: float | None = None  # monotonic time of a scheduled (re)start
    attempted: bool = False  # a start was attempted, so the next start is a restart
    closed: bool = False  # the pod worker is done with this container for good
    _pumps: list[threading.Thread] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    def log_path(self, restart: int | None = None) -> Path:
        """CRI-format log of the given (default: current) attempt."""
        return self.log_dir / f"{self.restart_count if restart is None else restart}.log"

    def termination_file(self) -> Path:
        """Where this attempt's ``terminationMessagePath`` really is (see ``map_termination``)."""
        return self.log_dir / f"{self.restart_count}.termination-log"

    def map_termination(self, env: dict[str, str]) -> dict[str, str]:
        """Stand in for the file a real runtime mounts at ``terminationMessagePath``.

        A process cannot get its own ``/dev/termination-log``, so the file lives beside the
        log, and environment values naming the path are pointed at it: a program told where
        to write its termination message (as Headrace's engine is) writes there.
        """
        self.log_dir.mkdir(parents=True, exist_ok=True)
        target = self.termination_file()
        target.write_bytes(b"")
        path = self.spec.get("terminationMessagePath") or "/dev/termination-log"
        return {key: str(target) if value == path else value for key, value in env.items()}

    def termination_message(self, exit_code: int) -> str | None:
        """What the kubelet reports: the file (4 KiB at most), or the log tail on error."""
        try:
            text = self.termination_file().read_bytes()[:4096].decode(errors="replace")
        except FileNotFoundError:
            text = ""
        if text:
            return text
        if exit_code != 0 and self.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            lines = [content for _, _, content in read_log_lines(self.log_path())][-80:]
            return b"\n".join(lines)[-2048:].decode(errors="replace") or None
        return None

    @property
    def running(self) -> bool:
        return "running" in self.state

    @property
    def terminated(self) -> bool:
        return "terminated" in self.state

    @property
    def exit_code(self) -> int | None:
        term = self.state.get("terminated")
        return None if term is None else int(term["exitCode"])

    def container_id(self) -> str:
        return f"headrace://{self.popen.pid}" if self.popen else ""

    def start(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        """Spawn the process; raises StartError if it cannot be started."""
        if not argv:
            raise StartError(
                "container has no command: the headrace process kubelet runs "
                "command+args locally and cannot use the image's entrypoint "
                f"(image {self.spec.get('image', '')!r})"
            )
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path().open("ab")
        cwd.mkdir(parents=True, exist_ok=True)
        try:
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                cwd=cwd,
                start_new_session=True,
                preexec_fn=death_signal_preexec(signal.SIGKILL, os.getpid()),
            )
        except OSError as exc:
            log.close()
            raise StartError(f"cannot start {argv[0]!r}: {exc}") from exc
        self.popen = popen
        self.attempted = True
        self.started_at = now()
        self.state = {"running": {"startedAt": self.started_at}}
        lock = threading.Lock()
        assert popen.stdout is not None and popen.stderr is not None
        self._pumps = [
            threading.Thread(target=_pump, args=(pipe, tag, log, lock), daemon=True)
            for pipe, tag in ((popen.stdout, "stdout"), (popen.stderr, "stderr"))
        ]
        for pump in self._pumps:
            pump.start()
        threading.Thread(target=_close_after, args=(self._pumps, log), daemon=True).start()

    def fail_to_start(self, message: str) -> None:
        """Record a start failure the way a runtime reports it (exit 128, StartError)."""
        stamp = now()
        self.attempted = True
        self.state = {
            "terminated": {
                "exitCode": 128,
                "reason": "StartError",
                "message": message,
                "startedAt": stamp,
                "finishedAt": stamp,
            }
        }

    def poll(self) -> bool:
        """Record termination if the process exited; True when it just did."""
        if self.popen is None or not self.running:
            return False
        code = self.popen.poll()
        if code is None:
            return False
        for pump in self._pumps:  # let the log catch up before reporting the exit
            pump.join(timeout=1)
        terminated: JSON = {
            "exitCode": code if code >= 0 else 128 - code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": self.started_at,
            "finishedAt": now(),
            "containerID": self.container_id(),
        }
        if code < 0:
            terminated["signal"] = -code
        message = self.termination_message(terminated["exitCode"])
        if message:
            terminated["message"] = message
        self.state = {"terminated": terminated}
        return True

    def signal(self, sig: int, group: bool) -> None:
        """Signal the container's main process (like PID 1) or its whole group."""
        if self.popen is None or self.popen.poll() is not None:
            if group and self.popen is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.popen.pid, sig)
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if group:
                os.killpg(self.popen.pid, sig)
            else:
                self.popen.send_signal(sig)

    def prepare_start(self) -> None:
        """Before a start: count a restart if an earlier attempt ran or failed."""
        self.restart_at = None
        if self.attempted:
            self.restart_count += 1
            self.popen = None

    def schedule_restart(self, delay: float) -> None:
        """Keep the finished attempt as lastState and wait ``delay`` seconds (back-off)."""
        self.last_state = self.state
        self.restart_at = time.monotonic() + delay
        self.state = {"waiting": {"reason": "CrashLoopBackOff", "message": f"back-off {delay:g}s"}}

    def status(self, ready: bool) -> JSON:
        """This container's entry in ``status.containerStatuses``."""
        result: JSON = {
            "name": self.name,
            "image": self.spec.get("image", ""),
            "imageID": "",
            "ready": ready and self.running,
            "started": self.running,
            "restartCount": self.restart_count,
            "state": self.state,
            "lastState": self.last_state,
        }
        if self.popen is not None:
            result["containerID"] = self.container_id()
        return result


def _pump(pipe: IO[bytes], stream: str, log: IO[bytes], lock: threading.Lock) -> None:
    """Copy one output stream into the CRI log, one timestamped line at a time."""
    prefix = f" {stream} F ".encode()
    for line in iter(pipe.readline, b""):
        with lock:
            log.write(now_nano().encode() + prefix + line.rstrip(b"\n") + b"\n")
            log.flush()
    pipe.close()


def _close_after(pumps: list[threading.Thread], log: IO[bytes]) -> None:
    for pump in pumps:
        pump.join()
    log.close()


def read_log_lines(path: Path) -> list[tuple[str, str, bytes]]:
    """Parse a CRI log file into ``(timestamp, stream, content)`` tuples."""
    entries = []
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    for raw in data.splitlines():
        parts = raw.split(b" ", 3)
        if len(parts) == 4:
            entries.append((parts[0].decode(), parts[1].decode(), parts[3]))
    return entries
