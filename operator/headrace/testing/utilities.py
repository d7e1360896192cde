"""`prefect_test_harness()`: what Prefect 2 users wrap their tests in, with Headrace's meaning.

Prefect starts a throwaway API server with a temporary database. Headrace has no server; what
a run leaves behind is its record and its results under `HEADRACE_HOME`, so the harness points
that at a temporary directory for as long as it is open, and removes it after.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

from headrace import settings


@contextlib.contextmanager
def prefect_test_harness() -> Iterator[None]:
    """Runs inside keep their records and results in a temporary `HEADRACE_HOME`."""
    variable = settings.env_name("home")
    before = os.environ.get(variable)
    with tempfile.TemporaryDirectory(prefix="headrace-test-") as home:
        os.environ[variable] = home
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(variable, None)
            else:
                os.environ[variable] = before


__all__ = ["prefect_test_harness"]
