"""A pool of daemon worker threads for sync task runs.

Not `concurrent.futures.ThreadPoolExecutor`: its threads are joined at interpreter exit, so a
task stuck in a blocking call would keep a SIGTERMed pod alive past its grace period. Each
worker also exposes what it runs, so a timed-out run can be interrupted in its own thread.
"""

from __future__ import annotations

import ctypes
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from headrace.engine import debug

_SetAsyncExc = ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
_set_async_exc = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.py_object)(_SetAsyncExc)
_clear_async_exc = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)(_SetAsyncExc)


def raise_in_thread(ident: int, exc_type: type[BaseException] | None) -> None:
    """Make `exc_type` raise in thread `ident` at its next bytecode (None clears a pending one)."""
    if exc_type is None:
        _clear_async_exc(ident, None)
    else:
        _set_async_exc(ident, exc_type)


class Worker(threading.Thread):
    def __init__(self, pool: WorkerPool, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.pool = pool
        self.lock = threading.Lock()
        self.current: object | None = None
        self.interrupted = False

    def run(self) -> None:
        pool = self.pool
        get = pool._queue.get
        count_lock = pool._count_lock
        while True:
            fn, arg = get()
            if fn is None:
                return
            try:
                fn(self, arg)
            except BaseException as error:  # an interrupt that arrived after its run ended
                if isinstance(error, Exception):
                    logging.getLogger("headrace.engine").exception("worker item failed")
                debug.trace("worker dropped %r", error)
            # An idle worker must not hold its last item: through the task run, that would
            # keep a finished flow's whole run tree alive until the worker's next item.
            fn = arg = None
            if not pool._full:
                with count_lock:
                    pool._idle += 1

    def enter(self, run: object) -> None:
        """Mark `run` as this worker's (a plain store: `interrupt` reads it under the lock
        and sees either the old run or this one, both consistent)."""
        self.current = run

    def leave(self) -> None:
        with self.lock:
            self.current = None
            if self.interrupted and self.ident is not None:
                self.interrupted = False
                raise_in_thread(self.ident, None)

    def interrupt(self, run: object, exc_type: type[BaseException]) -> bool:
        """Raise `exc_type` in this worker if, and only if, it is still running `run`."""
        with self.lock:
            if self.current is run and self.ident is not None:
                self.interrupted = True
                raise_in_thread(self.ident, exc_type)
                return True
        return False


class WorkerPool:
    def __init__(self, max_workers: int, name: str = "headrace-worker") -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self.max_workers = max_workers
        self.name = name
        self._queue: queue.SimpleQueue[tuple[Any, Any]] = queue.SimpleQueue()
        # Workers waiting for an item, claimed by each submit: an int under a plain lock, not a
        # `threading.Semaphore` (a Python-level Condition: two microseconds a run, both sides).
        self._idle = 0
        self._count_lock = threading.Lock()
        self._threads: list[Worker] = []
        self._lock = threading.Lock()
        # Every thread started: the idle count only decides whether to start one, so it is
        # no longer kept (its lock, taken on both sides of each run, cost 3% of a submit).
        self._full = False

    def submit(self, fn: Callable[[Worker, Any], None], arg: Any) -> None:
        self._queue.put((fn, arg))
        if self._full:
            return
        with self._count_lock:
            idle = self._idle
            if idle:
                self._idle = idle - 1
        if not idle and len(self._threads) < self.max_workers:
            with self._lock:
                if len(self._threads) < self.max_workers:
                    worker = Worker(self, f"{self.name}-{len(self._threads)}")
                    self._threads.append(worker)
                    worker.start()
                    self._full = len(self._threads) >= self.max_workers
                    debug.trace("started %s", worker.name)

    def shutdown(self) -> None:
        for _ in self._threads:
            self._queue.put((None, None))
