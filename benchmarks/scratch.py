"""A scratch `HEADRACE_HOME` for a benchmark run, removed when the run ends.

The engine's flows write their run records there: a full `engine_overhead.py` run writes
about 400 MB, and scratch directories left behind once filled this machine's disk.
"""

from __future__ import annotations

import atexit
import os
import shutil
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
