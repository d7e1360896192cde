"""The repo layout: `operator/` is a source root, never a package shadowing the stdlib."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OPERATOR_DIR = REPO / "operator"


def test_operator_dir_has_no_init() -> None:
    assert OPERATOR_DIR.is_dir()
    assert not (OPERATOR_DIR / "__init__.py").exists()
    assert (OPERATOR_DIR / "headrace" / "__init__.py").exists()


def test_import_operator_is_the_stdlib_and_headrace_comes_from_operator_dir() -> None:
    code = (
        "import operator, pathlib, sysconfig, headrace;"
        "print(pathlib.Path(operator.__file__).resolve().parent);"
        "print(pathlib.Path(sysconfig.get_paths()['stdlib']).resolve());"
        "print(pathlib.Path(headrace.__file__).resolve())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,  # the repo root first on sys.path, where operator/ lives
        env={"PYTHONPATH": str(OPERATOR_DIR), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    operator_dir, stdlib_dir, headrace_file = done.stdout.splitlines()
    assert operator_dir == stdlib_dir  # the stdlib module, not the repo's operator/ dir
    assert Path(headrace_file) == (OPERATOR_DIR / "headrace" / "__init__.py").resolve()
    import operator

    assert Path(operator.__file__).parent != OPERATOR_DIR


def test_headrace_in_this_process_comes_from_operator_dir() -> None:
    import headrace

    assert (
        Path(headrace.__file__).resolve() == (OPERATOR_DIR / "headrace" / "__init__.py").resolve()
    )


def test_the_operator_and_the_ui_load_no_engine_and_the_public_names_all_resolve() -> None:
    """At run time too, not only in the import contract (`lint-imports`): `headrace/__init__`
    imports its public names on first use, so the operator's process starts without the
    engine, and every name of `__all__` still comes from where it is documented."""
    code = (
        "import sys, headrace.controller.main, headrace.ui.server;"
        "print([m for m in sys.modules if m.split('.')[:2] in "
        "(['headrace','engine'], ['headrace','tasks'], ['headrace','flows'])]);"
        "import headrace;"
        "print([n for n in headrace.__all__ if getattr(headrace, n, None) is None])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    engine, unresolved = done.stdout.splitlines()
    assert engine == "[]", f"the operator or the UI loaded {engine}"
    assert unresolved == "[]"
    from headrace import Flow, flow, task

    assert isinstance(flow(lambda: 1), Flow) and callable(task)
