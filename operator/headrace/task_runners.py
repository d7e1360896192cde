"""Task runners decide where submitted task runs execute: threads of this process, or (with
`DaskTaskRunner`) the workers of a Dask cluster."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Protocol

from headrace import settings
from headrace.engine.workers import WorkerPool

if TYPE_CHECKING:
    from headrace.engine.orchestrator import Engine
    from headrace.engine.task_run import TaskRun


class RemoteExecutor(Protocol):
    """What the engine asks of a runner that runs attempts in other processes.

    The engine keeps the run's life (states, retries, cache, results, record); the executor
    only moves an attempt there and its outcome back, through `engine.attempt_done`.
    """

    def inputs(self, parameters: dict[str, Any]) -> Any:
        """The run's parameters as sent: upstream results as the executor's own futures."""

    def send(self, engine: Engine, task_run: TaskRun, token: int) -> None:
        """Start attempt `token` of `task_run` (its inputs are in `task_run.remote`)."""


class TaskRunner:
    """Base class; `concurrent` says whether `submit` returns before the run ends."""

    concurrent = True
    # Set by runners that run submitted task runs in other processes.
    remote: RemoteExecutor | None = None

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is None:
            max_workers = settings.current().max_workers
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self.max_workers = max_workers
        self._pool: WorkerPool | None = None

    @property
    def pool(self) -> WorkerPool:
        if self._pool is None:
            self._pool = WorkerPool(self.max_workers)
        return self._pool

    def enter(self) -> None:
        """A flow run using this runner begins (a runner with a cluster counts them)."""

    def exit(self) -> None:
        """A flow run using this runner has ended: its task runs are all final."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_workers={self.max_workers})"


BaseTaskRunner = TaskRunner  # Prefect 2's name for the base class


class ConcurrentTaskRunner(TaskRunner):
    """Runs submitted sync tasks on a pool of threads; async tasks on the engine's loop."""


class SequentialTaskRunner(TaskRunner):
    """Runs each submitted task to its end before `submit` returns, in the caller's thread."""

    concurrent = False


class DaskTaskRunner(TaskRunner):
    """Runs submitted task runs, sync and async, on the workers of a Dask cluster.

    Prefect 2's signature: connect to a running scheduler with `address=`, or have a cluster
    made for each flow run with `cluster_class=` (a class or its import path; a
    `distributed.LocalCluster` by default), `cluster_kwargs=` and `adapt_kwargs=` (for
    `cluster.adapt(...)`). `client_kwargs=` go to `distributed.Client`.

    Only the task's function runs on a worker: states, retries, timeouts, caching, results and
    the run record stay with the engine in the flow's process. Upstream results reach
    downstream runs as Dask futures, worker to worker. Direct calls of tasks run in the flow's
    process, as in Prefect 2. Needs the `dask` extra: `pip install "headrace[dask]"`.
    """

    def __init__(
        self,
        address: str | None = None,
        cluster_class: str | type[Any] | None = None,
        cluster_kwargs: dict[str, Any] | None = None,
        adapt_kwargs: dict[str, Any] | None = None,
        client_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if address is not None and (cluster_class is not None or cluster_kwargs):
            raise ValueError(
                "DaskTaskRunner takes address= (a running cluster) or cluster_class= / "
                "cluster_kwargs= (a cluster made per flow run), not both"
            )
        # Only here: without the dask extra, this is the line that says so.
        from headrace.engine.dask_executor import DaskExecutor  # noqa: PLC0415

        self.address = address
        self.cluster_class = cluster_class
        self.cluster_kwargs = dict(cluster_kwargs or {})
        self.adapt_kwargs = dict(adapt_kwargs or {})
        self.client_kwargs = dict(client_kwargs or {})
        self._executor = DaskExecutor(self)
        self.remote = self._executor
        self._flow_runs = 0
        self._flow_runs_lock = threading.Lock()

    @property
    def client(self) -> Any:
        """The `distributed.Client` of the current flow run (connecting, or making the
        cluster, on first use)."""
        return self._executor.client

    def enter(self) -> None:
        with self._flow_runs_lock:
            self._flow_runs += 1

    def exit(self) -> None:
        """When the last flow run using it ends: close the client, and the cluster if it
        made one (so runs that never finish on a worker end with it)."""
        with self._flow_runs_lock:
            self._flow_runs -= 1
            if self._flow_runs > 0:
                return
        self._executor.close()

    def __repr__(self) -> str:
        if self.address is not None:
            return f"DaskTaskRunner(address={self.address!r})"
        return f"DaskTaskRunner(cluster_class={self.cluster_class!r})"


_pod_runner: DaskTaskRunner | None = None
_pod_runner_lock = threading.Lock()


def effective(runner: TaskRunner) -> TaskRunner:
    """The runner a flow run uses: its flow's, unless the operator made a Dask cluster for this
    pod's run (`spec.taskRunner.dask`, told as HEADRACE_DASK_ADDRESS): then one
    `DaskTaskRunner` connected to it, for every flow run in the pod. The manifest decides,
    so the flow's code does not change."""
    address = settings.current().dask_address
    if not address:
        return runner
    global _pod_runner
    with _pod_runner_lock:
        if _pod_runner is None or _pod_runner.address != address:
            _pod_runner = DaskTaskRunner(address=address)
        return _pod_runner
