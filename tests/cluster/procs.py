"""Child processes that cannot outlive the test session.

Every child gets its own session/process group (so a terminal Ctrl-C reaches only
the launcher, which then shuts down in order) and ``PR_SET_PDEATHSIG`` (so a
crashed or SIGKILLed launcher does not leave an apiserver or etcd behind).
Note: the kernel sends the death signal when the *thread* that forked the child
exits, so spawn from a thread that lives as long as the children do.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl


def death_signal_preexec(sig: int, parent_pid: int) -> Callable[[], None]:
    """A ``preexec_fn`` that makes the child receive ``sig`` when its parent dies."""

    def _preexec() -> None:
        _prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent_pid:  # parent died before prctl took effect
            os._exit(1)

    return _preexec


@dataclass
class ManagedProcess:
    """A started child with its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """Last lines of the log, for error messages when startup fails."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``timeout``; reap the child."""
        terminate_group(self.popen, timeout)


def spawn(
    name: str,
    argv: Sequence[str],
    log_path: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    death_signal: int = signal.SIGKILL,
) -> ManagedProcess:
    """Start ``argv`` in a new session, stdout+stderr appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=death_signal_preexec(death_signal, os.getpid()),
        )
    return ManagedProcess(name=name, popen=popen, log_path=log_path)


def signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to a process group; False if it no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def terminate_group(popen: subprocess.Popen[bytes], timeout: float) -> None:
    """Graceful-then-forceful stop of a group leader started with a new session."""
    if popen.poll() is None:
        signal_group(popen.pid, signal.SIGTERM)
        try:
            popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            signal_group(popen.pid, signal.SIGKILL)
            popen.wait(timeout=10)
    # The leader is gone; take down anything it left in its group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, signal.SIGKILL)


def wait_until(
    predicate: Callable[[], bool],
    timeout: float,
    interval: float = 0.1,
    check: Callable[[], None] | None = None,
) -> bool:
    """Poll ``predicate`` until true or ``timeout``; ``check`` may raise to abort."""
    deadline = time.monotonic() + timeout
    while True:
        if check is not None:
            check()
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
