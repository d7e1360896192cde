"""Operator settings, from the environment its Deployment (or a test) gives it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


@dataclass(frozen=True)
class OperatorConfig:
    # Where runs write results and records unless the FlowRun or Deployment says otherwise.
    default_result_storage: str = field(
        default_factory=lambda: os.environ.get(
            "HEADRACE_DEFAULT_RESULT_STORAGE", "file:///tmp/headrace"
        )
    )
    # A Secret (in each run's namespace) with the default storage's credentials, given to
    # flow pods that use the default storage.
    default_storage_secret: str = field(
        default_factory=lambda: os.environ.get("HEADRACE_DEFAULT_STORAGE_SECRET", "")
    )
    # The ServiceAccount flow pods run as unless their spec names one (no API rights).
    flow_service_account: str = field(
        default_factory=lambda: os.environ.get("HEADRACE_FLOW_SERVICE_ACCOUNT", "")
    )
    # The command that starts the engine inside the flow image.
    engine_command: tuple[str, ...] = field(
        default_factory=lambda: tuple(os.environ.get("HEADRACE_ENGINE_COMMAND", "headrace").split())
    )
    default_grace_seconds: int = field(default_factory=lambda: _int("HEADRACE_GRACE_SECONDS", 30))
    default_retry_delay_seconds: int = field(
        default_factory=lambda: _int("HEADRACE_RETRY_DELAY_SECONDS", 5)
    )
    # Bounds towards the API server: requests in flight, and reconciles at once.
    max_api_requests: int = field(default_factory=lambda: _int("HEADRACE_MAX_API_REQUESTS", 16))
    max_reconciles: int = field(default_factory=lambda: _int("HEADRACE_MAX_RECONCILES", 16))
    progress_interval_seconds: float = field(
        default_factory=lambda: float(os.environ.get("HEADRACE_PROGRESS_INTERVAL", "2"))
    )
    # URL prefixes of storage the operator may read run records from (comma-separated).
    # Default: the default result storage only. A FlowRun naming other storage still runs;
    # its live progress is just not shown.
    readable_storage: tuple[str, ...] = field(
        default_factory=lambda: tuple(
            prefix.strip()
            for prefix in os.environ.get("HEADRACE_READABLE_STORAGE", "").split(",")
            if prefix.strip()
        )
    )
    # Seconds a storage read may take before the operator judges a run from its pod alone.
    storage_read_timeout: float = field(
        default_factory=lambda: float(os.environ.get("HEADRACE_STORAGE_READ_TIMEOUT", "5"))
    )

    # How a FlowRun's spec.taskRunner.dask cluster is made: "pods" (the operator's own
    # scheduler and worker pods) or "dask-kubernetes" (a DaskCluster and a DaskWorkerGroup,
    # for the dask-kubernetes operator, which must be installed).
    dask_clusters: str = field(
        default_factory=lambda: os.environ.get("HEADRACE_DASK_CLUSTERS", "pods")
    )

    # Leader election: the namespace of the Lease (empty: off, one replica), and its name.
    leader_election_namespace: str = field(
        default_factory=lambda: os.environ.get("HEADRACE_LEADER_ELECTION_NAMESPACE", "")
    )
    leader_election_lease: str = field(
        default_factory=lambda: os.environ.get("HEADRACE_LEADER_ELECTION_LEASE", "headrace")
    )

    @property
    def readable_prefixes(self) -> tuple[str, ...]:
        return self.readable_storage or (self.default_result_storage,)


def load() -> OperatorConfig:
    return OperatorConfig()
