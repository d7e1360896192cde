"""The pod protocol, engine side: `headrace pod-entry ENTRYPOINT` as the operator's flow pods
run it (podspec.build_pod), with parameters and verdict passing through the environment and
the termination message file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from headrace.pod_protocol import ENTRY_COMMAND, MAX_PARAMETERS_BYTES, encode_parameters

FLOW = """
from headrace import flow, task

@task
def double(x: int) -> int:
    return 2 * x

@flow
def pipeline(n: int, label: str) -> str:
    return f"{label}={sum(future.result() for future in double.map(range(n)))}"
"""


def pod_entry(tmp_path: Path, entrypoint: str, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "flow.py").write_text(FLOW)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HEADRACE_")}
    environment.update(
        HEADRACE_HOME=str(tmp_path / "home"),
        HEADRACE_TERMINATION_MESSAGE_PATH=str(tmp_path / "termination-log"),
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "headrace", ENTRY_COMMAND, entrypoint],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def verdict(tmp_path: Path) -> dict[str, object]:
    return json.loads((tmp_path / "termination-log").read_text())  # type: ignore[no-any-return]


def test_the_pod_runs_the_flow_with_its_parameters_and_leaves_the_verdict(tmp_path: Path) -> None:
    done = pod_entry(
        tmp_path,
        "flow.py:pipeline",
        HEADRACE_PARAMETERS=encode_parameters({"n": 4, "label": "sum"}),
        HEADRACE_FLOW_RUN_ID="0f3a9c2e-1111-2222-3333-444455556666",
        HEADRACE_FLOW_RUN_NAME="nightly",
    )
    assert done.returncode == 0, done.stderr
    message = verdict(tmp_path)
    assert message["state"] == "Completed"
    assert message["flowRunId"] == "0f3a9c2e-1111-2222-3333-444455556666"
    assert message["counts"] == {"Completed": 4}
    assert str(message["record"]).endswith("/0f3a9c2e-1111-2222-3333-444455556666/record.jsonl")
    assert "flow run   nightly" in done.stderr


def test_a_flow_that_cannot_load_is_crashed_in_the_verdict(tmp_path: Path) -> None:
    done = pod_entry(tmp_path, "flow.py:missing")
    assert done.returncode == 2
    message = verdict(tmp_path)
    assert message["state"] == "Crashed"
    assert "has no attribute 'missing'" in str(message["message"])


def test_parameters_that_are_not_an_object_are_named(tmp_path: Path) -> None:
    done = pod_entry(tmp_path, "flow.py:pipeline", HEADRACE_PARAMETERS="[1, 2]")
    assert done.returncode == 2
    assert "HEADRACE_PARAMETERS must be a JSON object" in done.stderr
    assert verdict(tmp_path)["state"] == "Crashed"


def test_the_entry_command_is_not_offered_to_people() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "headrace", "--help"], capture_output=True, text=True, timeout=60
    )
    assert ENTRY_COMMAND not in done.stdout
    assert MAX_PARAMETERS_BYTES == 96 * 1024  # what the README promises
