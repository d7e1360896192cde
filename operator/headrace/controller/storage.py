"""The operator's reads of run records: only from allowed storage, bounded, never blocking.

A FlowRun's `resultStorage` is user input, so the operator reads a record only when its URL
lies under a prefix of its own `HEADRACE_READABLE_STORAGE` setting: it makes no request to a
host or a local path that a user chose. Reads run on their own small pool; a reconcile
never waits for one, so a storage server that accepts connections and never answers delays
the progress of the runs that use it, and nothing else.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from headrace.records.lines import SummaryLine

logger = logging.getLogger("headrace.operator")


class NotReadYet(Exception):
    """The read was started and has not finished: look again shortly."""


def readable(url: str, prefixes: tuple[str, ...]) -> bool:
    """Whether `url` lies under one of `prefixes` (no `..` segments to climb out)."""
    if not url or any(part in {"..", "."} for part in url.split("/")):
        return False
    return any(url.startswith(prefix.rstrip("/") + "/") for prefix in prefixes if prefix)


class StorageReads:
    """Time-bounded reads of allowed URLs, cached per URL, on a pool of their own."""

    def __init__(
        self,
        prefixes: tuple[str, ...],
        timeout: float,
        workers: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.prefixes = prefixes
        self.timeout = timeout
        self._clock = clock
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="headrace-storage")
        self._lock = threading.Lock()
        # (what, url) -> (future, started at); what is "summary" or "report"
        self._reads: dict[tuple[str, str], tuple[Future[Any], float]] = {}
        self._last: dict[str, SummaryLine | None] = {}

    def summary(self, url: str, read: Callable[[str], SummaryLine | None]) -> SummaryLine | None:
        """The newest summary read so far (None if none yet); starts a fresh read if idle."""
        if not readable(url, self.prefixes):
            return None
        with self._lock:
            key = ("summary", url)
            running = self._reads.get(key)
            if running is not None and running[0].done():
                del self._reads[key]
                self._last[url] = _value(running[0], url)
                running = None
            if running is None:
                self._reads[key] = (self._pool.submit(read, url), self._clock())
            return self._last.get(url)

    def report(self, url: str, read: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
        """The engine's report from its record; NotReadYet while the read is under way.

        A read that outlives the timeout, fails, or is not allowed gives {}: the outcome is
        then judged from the pod alone.
        """
        if not readable(url, self.prefixes):
            return {}
        with self._lock:
            key = ("report", url)
            running = self._reads.get(key)
            if running is None:
                self._reads[key] = (self._pool.submit(read, url), self._clock())
                raise NotReadYet(url)
            future, started = running
            if not future.done():
                if self._clock() - started < self.timeout:
                    raise NotReadYet(url)
                logger.warning(
                    "reading %s took over %.0fs; judging from the pod", url, self.timeout
                )
                return {}
            del self._reads[key]
            value = _value(future, url)
            return value if isinstance(value, dict) else {}

    def forget(self, url: str) -> None:
        with self._lock:
            self._last.pop(url, None)
            self._reads.pop(("summary", url), None)
            self._reads.pop(("report", url), None)


def _value(future: Future[Any], url: str) -> Any:
    try:
        return future.result()
    except Exception as error:  # storage the operator cannot read: no progress, no report
        logger.debug("cannot read %s: %s", url, error)
        return None
