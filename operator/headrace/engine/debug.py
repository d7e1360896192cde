"""Concurrency tracing, on with `HEADRACE_DEBUG=1`; a constant check when off."""

from __future__ import annotations

import logging
import threading

from headrace import settings

try:
    ENABLED = settings.current().debug
except ValueError:  # importing never fails: the run or command that reads it says why
    ENABLED = False
_logger = logging.getLogger("headrace.engine.debug")


def trace(message: str, *args: object) -> None:
    if ENABLED:
        _logger.debug("[%s] " + message, threading.current_thread().name, *args)


def enable_logging() -> None:
    if ENABLED and not _logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        _logger.addHandler(handler)
        _logger.setLevel(logging.DEBUG)
        _logger.propagate = False
