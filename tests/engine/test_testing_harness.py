"""`prefect_test_harness()`, as a Prefect 2 test suite wraps its tests in it."""

from __future__ import annotations

import os
from pathlib import Path

from headrace import flow
from headrace.testing.utilities import prefect_test_harness


def test_runs_in_the_harness_leave_nothing_behind(tmp_path: Path) -> None:
    @flow
    def adds(x: int) -> int:
        return x + 1

    before = os.environ["HEADRACE_HOME"]  # the engine tests' own home (conftest)
    with prefect_test_harness():
        home = Path(os.environ["HEADRACE_HOME"])
        assert home != Path(before) and home.is_dir()
        assert adds(1) == 2
        records = list(home.rglob("record.jsonl"))
        assert len(records) == 1, list(home.rglob("*"))
    assert not home.exists()
    assert os.environ["HEADRACE_HOME"] == before
    assert not list(Path(before).rglob("record.jsonl"))
