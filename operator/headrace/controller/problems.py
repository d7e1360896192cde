"""Logging trouble once, not once per run: an API outage with 1,000 runs in flight is a line
a minute saying how often it recurred, not 1,000 tracebacks every pass."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

# Errors of the API or the network: their message says it all, a traceback adds nothing.
EXPECTED = (ApiException, HTTPError, ConnectionError, TimeoutError)


class ProblemLog:
    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._repeats: dict[str, int] = {}

    def problem(self, what: str, error: BaseException) -> bool:
        """Log `error` while doing `what`, unless the same problem was logged lately.

        Returns whether a line was written. Problems are told apart by the error's type and
        first line, not by the run they hit."""
        summary = f"{type(error).__name__}: {_first_line(error)}"
        if isinstance(error, ApiException):
            summary = f"API error {error.status} {error.reason}"
        now = self._clock()
        with self._lock:
            last = self._last.get(summary)
            if last is not None and now - last < self._interval:
                self._repeats[summary] = self._repeats.get(summary, 0) + 1
                return False
            self._last[summary] = now
            repeats = self._repeats.pop(summary, 0)
        again = f" (and {repeats} more times since)" if repeats else ""
        self._logger.error(
            "%s failed: %s%s; retrying",
            what,
            summary,
            again,
            exc_info=None if isinstance(error, EXPECTED) else error,
        )
        return True


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else ""
