"""Settings: every HEADRACE_* variable is one field of headrace.settings.Settings, read,
checked and documented from there."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from headrace import settings
from headrace.controller.podspec import RunPlan, build_pod
from headrace.crd.models import FlowSpec
from headrace.settings import Settings

REPO = Path(__file__).resolve().parents[1]
OPERATOR_SOURCE = REPO / "operator" / "headrace"


def test_the_readme_table_is_the_settings_object() -> None:
    readme = (REPO / "README.md").read_text()
    block = re.search(r"<!-- settings:begin -->\n(.*?)\n<!-- settings:end -->", readme, re.S)
    assert block is not None, "README.md lost its settings block"
    assert block.group(1) == settings.readme_table(), "run scripts/settings-table"


def test_every_variable_the_code_names_is_a_setting() -> None:
    """No module reads a HEADRACE_* variable the settings object does not know (and so the
    README does not list)."""
    known = {settings.env_name(name) for name in settings.variables()}
    named: set[str] = set()
    for path in OPERATOR_SOURCE.rglob("*.py"):
        named |= set(re.findall(r"\bHEADRACE_[A-Z][A-Z_]*[A-Z]\b", path.read_text()))
    assert {name for name in named if not name.startswith(settings.DATA_PREFIXES)} - known == set()
    for path in OPERATOR_SOURCE.rglob("*.py"):
        if path.name != "settings.py":
            text = path.read_text()
            assert 'os.environ.get("HEADRACE' not in text and "getenv(" not in text, path


def test_the_chart_image_and_docs_name_only_settings() -> None:
    """What the Helm chart, the Dockerfile and the docs set or mention is read by the code."""
    known = {settings.env_name(name) for name in settings.variables()}
    paths = [
        REPO / "Dockerfile",
        *(REPO / "charts").rglob("*.yaml"),
        *(REPO / "docs").rglob("*.md"),
    ]
    named: set[str] = set()
    for path in paths:
        named |= set(re.findall(r"\bHEADRACE_[A-Z][A-Z_]*[A-Z]\b", path.read_text()))
    named = {name for name in named if not name.startswith(settings.DATA_PREFIXES)}
    assert named and named <= known, named - known


def test_no_setting_is_named_like_a_flows_data() -> None:
    """A FlowRun's pod.env may set HEADRACE_BLOCK_* and HEADRACE_VARIABLE_* (blocks and
    variables): none of them may be a setting the operator sets, or a user could override it."""
    names = [settings.env_name(name) for name in settings.variables()]
    assert not [name for name in names if name.startswith(settings.DATA_PREFIXES)]
    assert settings.block_env_name("date-time", "main-db") == "HEADRACE_BLOCK_DATE_TIME__MAIN_DB"
    assert settings.variable_env_name("region_2") == "HEADRACE_VARIABLE_REGION_2"


def test_values_are_typed_and_defaults_follow_home(tmp_path: Path) -> None:
    read = Settings.from_environ(
        {
            "HEADRACE_HOME": str(tmp_path),
            "HEADRACE_MAX_WORKERS": "4",
            "HEADRACE_PERSIST_RESULTS": "yes",
            "HEADRACE_ENGINE_COMMAND": "python -m headrace",
            "HEADRACE_READABLE_STORAGE": "s3://a/, s3://b/",
            "HEADRACE_SCHEDULED_START_TIME": "2026-03-01T03:00:00Z",
            "HEADRACE_SIGTERM_STATE": "timedout",
            "HEADRACE_DEBUG": "",  # empty is unset
        }
    )
    assert read.max_workers == 4 and read.persist_results is True and read.debug is False
    assert read.engine_command == ("python", "-m", "headrace")
    assert read.readable_prefixes == ("s3://a/", "s3://b/")
    assert read.scheduled_start_time == 1772334000.0
    assert read.sigterm_state == "TimedOut"
    assert read.result_storage == (tmp_path / "results").as_uri()
    assert read.record_storage == (tmp_path / "runs").as_uri()
    assert Settings().readable_prefixes == ("file:///tmp/headrace",)


def test_a_bad_value_names_the_variable_and_what_it_takes() -> None:
    with pytest.raises(ValueError) as raised:
        Settings.from_environ({"HEADRACE_GRACE_SECONDS": "soon", "HEADRACE_DEBUG": "maybe"})
    message = str(raised.value)
    assert "HEADRACE_GRACE_SECONDS='soon' takes a whole number" in message
    assert "HEADRACE_DEBUG='maybe' takes 1 or 0" in message
    assert "fix or unset it" in message
    with pytest.raises(ValueError, match="HEADRACE_MAX_WORKERS='0' takes a whole number, 1 or"):
        Settings.from_environ({"HEADRACE_MAX_WORKERS": "0"})


def test_current_reads_the_environment_as_it_is_when_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADRACE_MAX_WORKERS", "3")
    assert settings.current().max_workers == 3
    monkeypatch.setenv("HEADRACE_MAX_WORKERS", "5")
    assert settings.current().max_workers == 5
    monkeypatch.setenv("HEADRACE_GRACE_SECONDS", "soon")  # not used by what reads workers
    assert settings.current().max_workers == 5
    with pytest.raises(ValueError, match="HEADRACE_GRACE_SECONDS='soon' takes a whole number"):
        settings.current().grace_seconds  # noqa: B018 (reading it is the test)
    with pytest.raises(ValueError, match="HEADRACE_GRACE_SECONDS='soon'"):
        settings.check()


def test_a_bad_value_stops_the_command_with_that_message(tmp_path: Path) -> None:
    flow = tmp_path / "flow.py"
    flow.write_text("from headrace import flow\n\n@flow\ndef hello() -> int:\n    return 1\n")
    done = subprocess.run(
        [sys.executable, "-m", "headrace", "run", f"{flow}:hello", "--no-progress"],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HEADRACE_SIGTERM_STATE": "Paused"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO / "operator",
    )
    assert done.returncode == 2, done.stderr
    assert "HEADRACE_SIGTERM_STATE='Paused' takes Cancelled or TimedOut" in done.stderr
    assert "Traceback" not in done.stderr


def test_every_variable_a_flow_pod_gets_is_one_the_engine_reads() -> None:
    plan = RunPlan(
        namespace="ns",
        run_name="nightly",
        run_uid="0f3a9c2e-1111-2222-3333-444455556666",
        attempt=1,
        flow=FlowSpec(image="img:1", entrypoint="flows/etl.py:etl"),
        parameters={"n": 1},
        result_storage="s3://bucket/hr",
        storage_secret=None,
        deadline=1_800_000_000.0,
        deployment="etl",
        deployment_version="3",
        scheduled_time="2026-03-01T03:00:00Z",
    )
    env = {
        item["name"]: item["value"]
        for item in build_pod(plan, Settings())["spec"]["containers"][0]["env"]
    }
    known = {settings.env_name(name) for name in settings.variables()}
    assert set(env) <= known
    pod = Settings.from_environ(env)  # and every value parses
    assert pod.flow_run_id == plan.run_uid and pod.attempt == 1
    assert pod.deadline == 1_800_000_000.0
