"""Shared pytest setup: cluster fixtures from ``tests/cluster`` (see its README.md)."""

from __future__ import annotations

import sys
from pathlib import Path

# Make ``tests/cluster`` importable as ``cluster`` whatever pytest's import mode.
# Only tests/ is added, never the repo root (whose operator/ must not shadow
# the stdlib module of that name).
_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

from cluster.fixtures import (  # noqa: E402
    Cluster,
    cluster,
    namespace,
    real_cluster,
    real_node,
    s3_server,
)

__all__ = ["Cluster", "cluster", "namespace", "real_cluster", "real_node", "s3_server"]
