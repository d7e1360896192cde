"""Scratch places for a benchmark run, removed when the run ends: a `HEADRACE_HOME`, and the
compiled build of the engine.

The engine's flows write their run records into the home: a full `engine_overhead.py` run writes
about 400 MB, and scratch directories left behind once filled this machine's disk.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile


def scratch_home() -> str:
    """The `HEADRACE_HOME` to use: the one set already (a child process keeps its parent's,
    which the parent removes), else a new scratch directory, removed at exit."""
    home = os.environ.get("HEADRACE_HOME")
    if home:
        return home
    home = tempfile.mkdtemp(prefix="headrace-bench-")
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    return home


def compiled_build() -> str:
    """A scratch directory holding the build the image ships (`scripts/build-compiled`: the
    wheel with the mypyc hook on, unpacked), removed at exit; `PYTHONPATH` it to import it."""
    build = tempfile.mkdtemp(prefix="headrace-compiled-")
    atexit.register(shutil.rmtree, build, ignore_errors=True)
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts")
    print("building the compiled engine (scripts/build-compiled) ...", flush=True)
    subprocess.run([os.path.join(script, "build-compiled"), build], check=True)
    return build
