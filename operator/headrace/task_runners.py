"""Task runners decide where submitted sync task runs execute."""

from __future__ import annotations

from headrace import settings
from headrace.engine.workers import WorkerPool


class TaskRunner:
    """Base class; `concurrent` says whether `submit` returns before the run ends."""

    concurrent = True

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

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_workers={self.max_workers})"


BaseTaskRunner = TaskRunner  # Prefect 2's name for the base class


class ConcurrentTaskRunner(TaskRunner):
    """Runs submitted sync tasks on a pool of threads; async tasks on the engine's loop."""


class SequentialTaskRunner(TaskRunner):
    """Runs each submitted task to its end before `submit` returns, in the caller's thread."""

    concurrent = False
