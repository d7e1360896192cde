"""Engine test setup: every test gets its own HEADRACE_HOME (results and run records go to a
temp dir) with engine settings from the outer environment cleared."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine_helpers import ENV_VARS, Script, load_record_at

from headrace.records import RunRecord


@pytest.fixture(autouse=True)
def headrace_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "headrace-home"
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HEADRACE_HOME", str(home))
    return home


@pytest.fixture
def load_record(headrace_home: Path) -> Callable[..., RunRecord]:
    """`load_record(id=None)`: the record of a top-level run of this test (newest by default)."""

    def load(flow_run_id: str | None = None) -> RunRecord:
        return load_record_at(headrace_home, flow_run_id)

    return load


@pytest.fixture
def script(tmp_path: Path, headrace_home: Path) -> Iterator[Callable[[str], Script]]:
    """`script(source)`: a script file to run in a fresh interpreter; killed if left running."""
    made: list[Script] = []

    def make(source: str) -> Script:
        path = tmp_path / f"script_{len(made)}.py"
        path.write_text(textwrap.dedent(source))
        made.append(Script(path, headrace_home))
        return made[-1]

    yield make
    for item in made:
        if item.proc is not None and item.proc.poll() is None:
            item.proc.kill()
            item.proc.wait()
