"""The `headrace` command as a user or a script sees it: `-o json|yaml` on the commands that
print runs, `headrace list` of local runs, and one line (never a traceback) for an error,
with exit code 2 for bad input and 1 for a failure, unless HEADRACE_DEBUG=1."""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from cluster.helpers import headrace_cli

FLOWS = """
from headrace import flow, task

@task
def double(x: int) -> int:
    return 2 * x

@flow
def pipeline(n: int = 3) -> list[int]:
    return [future.result() for future in double.map(range(n))]

@flow
def broken() -> None:
    raise RuntimeError("the flow's own failure")

@flow
def reporting() -> None:
    from headrace.artifacts import create_markdown_artifact, create_table_artifact

    create_markdown_artifact("old", key="summary")
    create_markdown_artifact("# Totals\\n\\x1b[2Jcleared?", key="summary", description="new")
    create_table_artifact({"n": [1, 2], "double": [2, 4]}, key="doubles")
"""
FAILS_ON_IMPORT = """
raise RuntimeError("DATABASE_URL is not set")
"""


def cli(tmp_path: Path, *args: str, **extra: str) -> tuple[int, str, str]:
    (tmp_path / "flows.py").write_text(FLOWS)
    (tmp_path / "fails_on_import.py").write_text(FAILS_ON_IMPORT)
    (tmp_path / "needs_a_module.py").write_text("import no_such_module_here\n")
    (tmp_path / "not_python.py").write_text("def broken(:\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADRACE_")}
    env.update(HEADRACE_HOME=str(tmp_path / "home"), **extra)
    done = headrace_cli(*args, env=env, cwd=tmp_path, timeout=60)
    return done.returncode, done.stdout, done.stderr


def test_run_prints_the_run_as_json_or_yaml(tmp_path: Path) -> None:
    code, out, _ = cli(tmp_path, "run", "flows.py:pipeline", "-p", "n=4", "-o", "json")
    assert code == 0
    run = json.loads(out)
    assert run["state"] == "Completed" and run["flowName"] == "pipeline"
    assert run["counts"] == {"Completed": 4} and run["total"] == 4
    assert run["record"].endswith(f"/{run['id']}/record.jsonl")
    code, out, _ = cli(tmp_path, "run", "flows.py:broken", "-o", "yaml")
    assert code == 1
    failed = yaml.safe_load(out)
    assert failed["state"] == "Failed"
    assert failed["message"] == "RuntimeError: the flow's own failure"


def test_list_shows_local_runs_newest_first(tmp_path: Path) -> None:
    cli(tmp_path, "run", "flows.py:pipeline", "--no-progress")
    cli(tmp_path, "run", "flows.py:broken", "--no-progress")
    code, out, _ = cli(tmp_path, "list")
    assert code == 0
    header, newest, older = out.splitlines()
    assert header.split() == ["ID", "NAME", "FLOW", "STATE", "STARTED", "DURATION", "TASKS"]
    assert newest.split()[2:4] == ["broken", "Failed"]
    assert older.split()[2:4] == ["pipeline", "Completed"]
    assert older.split()[-1] == "3/3"
    code, out, _ = cli(tmp_path, "list", "-o", "json")
    listed = json.loads(out)
    assert listed["kind"] == "List"
    assert [item["state"] for item in listed["items"]] == ["Failed", "Completed"]
    code, out, _ = cli(tmp_path, "list", "--limit", "1", "-o", "yaml")
    assert [item["flowName"] for item in yaml.safe_load(out)["items"]] == ["broken"]


def test_artifacts_are_listed_and_shown_with_control_characters_escaped(
    tmp_path: Path,
) -> None:
    code, out, _ = cli(tmp_path, "run", "flows.py:reporting", "-o", "json")
    assert code == 0
    run_id = json.loads(out)["id"]
    code, out, _ = cli(tmp_path, "artifacts", run_id)
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["TIME", "KEY", "TYPE", "WHERE", "DESCRIPTION", "ID"]
    assert [row.split()[1:4] for row in rows] == [
        ["summary", "markdown", "flow"],
        ["summary", "markdown", "flow"],
        ["doubles", "table", "flow"],
    ]
    code, out, _ = cli(tmp_path, "artifacts", run_id, "--show", "summary")  # the newest
    assert code == 0
    assert out == "summary (markdown): new\n\n# Totals\n\\x1b[2Jcleared?\n"
    code, out, _ = cli(tmp_path, "artifacts", run_id, "--show", "doubles")
    assert out.splitlines()[2:] == ["n   double", "1   2", "2   4"]
    code, _, err = cli(tmp_path, "artifacts", run_id, "--show", "nothing")
    assert code == 2 and "no artifact with key or id 'nothing'" in err


def test_no_local_runs_is_said(tmp_path: Path) -> None:
    assert cli(tmp_path, "list")[:2] == (0, "No local runs.\n")


def test_bad_input_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    for args, said in [
        (["run", "flows.py:nothing"], "'flows.py' has no attribute 'nothing'"),
        (["run", "missing.py:flow"], "entrypoint file 'missing.py' does not exist"),
        (["run", "flows.py:pipeline", "-p", "n"], "parameter 'n' is not KEY=VALUE"),
        (["logs", "no-such-run"], "no-such-run"),
        (["run", "not_python.py:flow"], "not_python.py:1: "),
    ]:
        code, _, err = cli(tmp_path, *args)
        assert code == 2, err
        (line,) = err.strip().splitlines()
        assert line.startswith(f"headrace {args[0]}: ") and said in line, line


def test_an_unexpected_error_is_one_line_and_exit_code_1_unless_debugging(
    tmp_path: Path,
) -> None:
    code, _, err = cli(tmp_path, "run", "fails_on_import.py:flow")
    assert code == 1
    (line,) = err.strip().splitlines()
    assert line == (
        "headrace run: RuntimeError: DATABASE_URL is not set (HEADRACE_DEBUG=1 shows the traceback)"
    )
    code, _, err = cli(tmp_path, "run", "fails_on_import.py:flow", HEADRACE_DEBUG="1")
    assert code == 1
    assert "Traceback (most recent call last)" in err


def test_a_missing_module_says_where_to_look(tmp_path: Path) -> None:
    code, _, err = cli(tmp_path, "run", "needs_a_module.py:flow")
    assert code == 1
    (line,) = err.strip().splitlines()
    assert line == (
        "headrace run: No module named 'no_such_module_here' (is it installed where headrace runs?)"
    )
