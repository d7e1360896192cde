"""Keys waiting to be reconciled: each at most once at a time, each when it asked to be.

Watch events add a key at once; a reconcile that wants another look (a deadline, a retry, the
next progress read) adds its key again with a delay. A key added while it is being reconciled
is reconciled once more afterwards, so no event is lost, and however many events arrive for a
key, it waits in the queue only once. One pool of workers serves every run: no thread or task
per run.

Keys added with `first=True` (a FlowRun that has no pod yet) go ahead of every other key that
is due: with a thousand runs in flight, a new run's pod is not made to wait behind the others'
progress reads and final writes. `first_workers` more workers take only those keys: under a
burst every other worker can be waiting on the API server for earlier runs' writes, and a new
run's pod should not wait for one of them to come back.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Hashable

logger = logging.getLogger("headrace.operator")

Reconcile = Callable[[Hashable], "float | None"]
MAX_BACKOFF_SECONDS = 60.0


class WorkQueue:
    def __init__(
        self,
        reconcile: Reconcile,
        workers: int,
        on_error: Callable[[Hashable, Exception], None],
        clock: Callable[[], float] = time.monotonic,
        on_wait: Callable[[float, bool], None] | None = None,
        first_workers: int = 0,
    ) -> None:
        """`on_wait(seconds, first)` learns how long each key waited once due (for a
        `first` key: since it was added), the queue's own share of a run's latency."""
        self._reconcile = reconcile
        self._on_error = on_error
        self._on_wait = on_wait
        self._clock = clock
        self._workers = workers
        self._first_workers = first_workers
        lock = threading.Lock()
        self._cond = threading.Condition(lock)  # workers of every key wait on it
        self._first_cond = threading.Condition(lock)  # the first keys' own workers wait on it
        self._heap: list[tuple[float, int, Hashable]] = []
        self._first: collections.deque[Hashable] = collections.deque()  # due now, go first
        self._due: dict[Hashable, float] = {}  # queued keys and when they are due
        self._added: dict[Hashable, float] = {}  # when each queued `first` key was added
        self._busy: set[Hashable] = set()
        self._again: dict[Hashable, float] = {}  # added while busy: when to run again
        self._failures: dict[Hashable, int] = {}
        self._order = itertools.count()
        self._threads: list[threading.Thread] = []
        self._stopped = False

    def add(self, key: Hashable, delay: float = 0.0, first: bool = False) -> None:
        """Reconcile `key` in `delay` seconds, or sooner if it is already due sooner; with
        `first`, now and ahead of the keys already due."""
        due = -math.inf if first else self._clock() + max(0.0, delay)
        with self._cond:
            if key in self._busy:
                self._again[key] = min(due, self._again.get(key, due))
                return
            if key in self._due and self._due[key] <= due:
                return
            self._due[key] = due
            if first:
                self._added[key] = self._clock()
                self._first.append(key)
                self._first_cond.notify()
            else:
                heapq.heappush(self._heap, (due, next(self._order), key))
            self._cond.notify()

    def __len__(self) -> int:
        with self._cond:
            return len(self._due) + len(self._busy)

    def start(self) -> None:
        for index in range(self._workers + self._first_workers):
            first_only = index >= self._workers
            thread = threading.Thread(
                target=self._work,
                args=(first_only,),
                name=f"headrace-{'start' if first_only else 'reconcile'}-{index}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
            self._first_cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)

    def _next(self, first_only: bool = False) -> tuple[Hashable, float, bool] | None:
        """The next key to reconcile, how long it waited once due, and whether it was first."""
        with self._cond:
            while not self._stopped:
                while self._first:
                    key = self._first.popleft()
                    if self._due.get(key) == -math.inf:  # else taken or re-added since
                        del self._due[key]
                        self._busy.add(key)
                        return key, self._clock() - self._added.pop(key), True
                if first_only:
                    self._first_cond.wait()
                    continue
                while self._heap and self._due.get(self._heap[0][2]) != self._heap[0][0]:
                    heapq.heappop(self._heap)  # superseded by an earlier due time
                if self._heap:
                    due, _, key = self._heap[0]
                    wait = due - self._clock()
                    if wait <= 0:
                        heapq.heappop(self._heap)
                        del self._due[key]
                        self._busy.add(key)
                        return key, -wait, False
                    self._cond.wait(wait)
                else:
                    self._cond.wait()
            return None

    def _work(self, first_only: bool = False) -> None:
        while (taken := self._next(first_only)) is not None:
            key, waited, first = taken
            if self._on_wait is not None:  # told outside the queue's lock
                self._on_wait(waited, first)
            try:
                wait = self._reconcile(key)
                self._failures.pop(key, None)
            except Exception as error:
                failures = self._failures[key] = self._failures.get(key, 0) + 1
                wait = min(MAX_BACKOFF_SECONDS, 0.5 * 2**failures)
                self._on_error(key, error)
            with self._cond:
                self._busy.discard(key)
                again = self._again.pop(key, None)
            if again is not None:
                if again == -math.inf:
                    self.add(key, first=True)
                else:
                    self.add(key, max(0.0, again - self._clock()))
            if wait is not None:
                self.add(key, wait)
