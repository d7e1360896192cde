"""Runs mypy on typing_check.py: the task API's overloads give the types Prefect 2 gives."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from engine_helpers import OPERATOR_DIR, REPO

CHECK = Path(__file__).with_name("typing_check.py")


@pytest.fixture(scope="module")
def mypy_output() -> dict[int, str]:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--show-error-codes",
            "--python-version",
            "3.11",
            str(CHECK),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"MYPYPATH": str(OPERATOR_DIR), "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    lines: dict[int, str] = {}
    for line in proc.stdout.splitlines():
        match = re.match(rf"{re.escape(str(CHECK))}:(\d+): (.*)", line)
        if match is None:
            match = re.match(r".*typing_check\.py:(\d+): (.*)", line)
        if match:
            number = int(match.group(1))
            lines[number] = (lines.get(number, "") + " " + match.group(2)).strip()
    assert lines, proc.stdout + proc.stderr
    return lines


def _line(text: str) -> int:
    for number, line in enumerate(CHECK.read_text().splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(text)


@pytest.mark.parametrize(
    ("code", "revealed"),
    [
        ("reveal_type(double(1))  #", '"int"'),
        ("reveal_type(double.submit(1))  #", '"headrace.futures.HeadraceFuture[int]"'),
        ("reveal_type(double(1, return_state=True))", '"headrace.states.State[int]"'),
        (
            "reveal_type(double.submit(1, return_state=True))",
            '"headrace.states.State[int]"',
        ),
        (
            "reveal_type(double.map([1, 2]))  #",
            '"list[headrace.futures.HeadraceFuture[int]]"',
        ),
        (
            "reveal_type(double.map([1, 2], return_state=True))",
            '"list[headrace.states.State[int]]"',
        ),
        ("reveal_type(double(1, wait_for=", '"int"'),
        ("reveal_type(state.result())", '"int"'),
        ("reveal_type(total(1))", '"int"'),
        ("reveal_type(total(1, return_state=True))", '"headrace.states.State[int]"'),
        ("reveal_type(await atotal(1))", '"int"'),
        ("reveal_type(await atotal(1, return_state=True))", '"headrace.states.State[int]"'),
    ],
)
def test_revealed_types(mypy_output: dict[int, str], code: str, revealed: str) -> None:
    line = mypy_output[_line(code)]
    # mypy spells builtins either way across versions
    assert f"Revealed type is {revealed}" in line.replace("builtins.", ""), line


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ('double("one")', "[call-overload]"),
        ("double(1, 2)", "[call-overload]"),
        ('total("one")', "[call-overload]"),
        ("wrong: HeadraceFuture[str]", "[assignment]"),
    ],
)
def test_misuse_is_an_error(mypy_output: dict[int, str], code: str, error: str) -> None:
    line = mypy_output.get(_line(code), "")
    assert "error:" in line and error in line, line


def test_correct_lines_have_no_errors(mypy_output: dict[int, str]) -> None:
    for code in ("future: HeadraceFuture[int] =", "state: State[int] ="):
        assert "error:" not in mypy_output.get(_line(code), "")
