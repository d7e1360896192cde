"""Kubernetes Events, posted off the reconcile path.

An Event is what `kubectl describe` shows a person; no decision reads it back. So a reconcile
only hands it over, and one thread posts them, as client-go's event broadcaster does: a run's
final status write never waits for its Event, and a slow or refusing API server delays or
drops Events, never reconciles.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from typing import Any

from headrace.crd.models import GROUP, VERSION

logger = logging.getLogger("headrace.operator")

MAX_PENDING = 5000  # beyond this (the API server is not keeping up), new Events are dropped
MESSAGE_LIMIT = 1000


def build_event(
    obj: dict[str, Any], kind: str, reason: str, message: str, stamp: str
) -> dict[str, Any]:
    """A core/v1 Event about `obj` (a FlowRun or Deployment, or anything with metadata)."""
    meta = obj["metadata"]
    return {
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": obj.get("apiVersion", f"{GROUP}/{VERSION}"),
            "kind": obj.get("kind", "FlowRun"),
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
        },
        "type": kind,
        "reason": reason,
        "message": message[:MESSAGE_LIMIT],
        "source": {"component": "headrace-operator"},
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "reportingComponent": "headrace-operator",
    }


class EventSender:
    """A queue of Events and the one thread that posts them, in order."""

    def __init__(self, post: Callable[[dict[str, Any]], None]) -> None:
        self._post = post
        self._pending: collections.deque[dict[str, Any]] = collections.deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._posting = False
        self._dropped = 0

    def send(self, event: dict[str, Any]) -> None:
        with self._cond:
            if len(self._pending) >= MAX_PENDING:
                self._dropped += 1
                if self._dropped == 1 or self._dropped % 1000 == 0:
                    logger.warning(
                        "%d Events dropped: the API server is not keeping up", self._dropped
                    )
                return
            self._pending.append(event)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="headrace-events", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def flush(self, timeout: float) -> bool:
        """Wait until every Event handed over so far is posted (or `timeout` passes)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._posting, timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._pending))
                event = self._pending.popleft()
                self._posting = True
            try:
                self._post(event)
            except Exception as error:  # a courtesy: losing one is logged, never raised
                reason = event.get("reason")
                logger.warning("could not record event %s: %s", reason, error)
            finally:
                with self._cond:
                    self._posting = False
                    self._cond.notify_all()
