"""Helpers shared by the engine tests (imported as `engine_helpers`; fixtures live in conftest)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from headrace import settings
from headrace.records import RunRecord

REPO = Path(__file__).resolve().parents[2]
OPERATOR_DIR = REPO / "operator"

# Every setting but HEADRACE_HOME (set per test): none leaks in from the outer environment.
ENV_VARS = frozenset(settings.env_name(name) for name in settings.variables()) - {"HEADRACE_HOME"}


def record_paths(home: Path) -> list[Path]:
    return sorted((home / "runs").glob("*/record.jsonl"), key=lambda p: p.stat().st_mtime)


def load_record_at(home: Path, flow_run_id: str | None = None) -> RunRecord:
    """The run record of a top-level run by id, else the newest one under `home`."""
    if flow_run_id is not None:
        path = home / "runs" / flow_run_id / "record.jsonl"
    else:
        paths = record_paths(home)
        assert paths, f"no run record under {home}"
        path = paths[-1]
    return RunRecord.load(path.as_uri())


def task_runs_named(record: RunRecord, task_key: str) -> list[dict[str, Any]]:
    runs = [run for run in record.task_runs.values() if run["task_key"] == task_key]
    return sorted(runs, key=lambda run: (run.get("map_index") or 0, str(run["name"])))


def state_name(run: dict[str, Any]) -> str:
    return str(run["state"]["name"])


def script_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env["HEADRACE_HOME"] = str(home)
    env["PYTHONPATH"] = os.pathsep.join([str(OPERATOR_DIR), *filter(None, [env.get("PYTHONPATH")])])
    env.update(extra)
    return env


class Script:
    """A Python script run in a fresh interpreter (signals, settings read at import)."""

    def __init__(self, path: Path, home: Path) -> None:
        self.path = path
        self.home = home
        self.proc: subprocess.Popen[str] | None = None

    def start(self, **env: str) -> subprocess.Popen[str]:
        self.proc = subprocess.Popen(
            [sys.executable, str(self.path)],
            env=script_env(self.home, **env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=str(self.path.parent),
        )
        return self.proc

    def run(self, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(self.path)],
            env=script_env(self.home, **env),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=str(self.path.parent),
        )


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    end = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except (FileNotFoundError, KeyError, ValueError):
            value = None
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
