"""Two replicas, one active: the operator that holds a coordination.k8s.io Lease acts.

The holder renews the Lease every `retry` seconds. A replica in waiting takes it once it has
seen the same record, unrenewed, for `lease` seconds by its own clock (never comparing clocks
between machines). A holder that cannot renew for `renew_deadline` seconds, which is less
than `lease`, stops acting before anyone else may start. On a clean shutdown the holder lets
the Lease go, so its successor (a restarted pod, or the replica in waiting) starts at once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from headrace.timestamps import now_iso

logger = logging.getLogger("headrace.operator")
MERGE_PATCH = "application/merge-patch+json"


def identity() -> str:
    """This process: the pod's name (its hostname) and a random tail for restarts."""
    return f"{os.environ.get('HOSTNAME') or socket.gethostname()}-{uuid.uuid4().hex[:6]}"


class LeaderElection:
    def __init__(
        self,
        api: client.CoordinationV1Api,
        namespace: str,
        name: str,
        me: str,
        lease: float = 10.0,
        renew_deadline: float = 7.0,
        retry: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self.me = me
        self.lease = lease
        self.renew_deadline = renew_deadline
        self.retry = retry
        self._clock = clock
        self._observed: tuple[str, str] | None = None  # (holder, renewTime) last seen
        self._observed_at = 0.0
        self._renewed_at = 0.0
        self._stop = threading.Event()

    # -- one attempt ----------------------------------------------------------------------
    def try_acquire(self) -> bool:
        """One look at the Lease: take or renew it if we may. True while we hold it."""
        lease = self._read()
        if lease is None:
            return self._create()
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        renewed = str(spec.get("renewTime") or "")
        record = (holder, renewed)
        now = self._clock()
        if record != self._observed:
            self._observed, self._observed_at = record, now
        free = not holder or holder == self.me or now - self._observed_at >= self.lease
        if not free:
            return False
        transitions = (spec.get("leaseTransitions") or 0) + (0 if holder == self.me else 1)
        body: dict[str, Any] = {
            "metadata": {"resourceVersion": lease["metadata"]["resourceVersion"]},
            "spec": {
                "holderIdentity": self.me,
                "leaseDurationSeconds": int(self.lease),
                "renewTime": now_iso(),
                "leaseTransitions": transitions,
            },
        }
        if holder != self.me:
            body["spec"]["acquireTime"] = body["spec"]["renewTime"]
        try:
            self.api.patch_namespaced_lease(
                self.name, self.namespace, body, _content_type=MERGE_PATCH
            )
        except ApiException as error:
            if error.status == 409:  # someone else wrote it first
                return False
            raise
        self._renewed_at = now
        return True

    def _read(self) -> dict[str, Any] | None:
        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        found: dict[str, Any] = self.api.api_client.sanitize_for_serialization(lease)
        return found

    def _create(self) -> bool:
        stamp = now_iso()
        body = {
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.me,
                "leaseDurationSeconds": int(self.lease),
                "acquireTime": stamp,
                "renewTime": stamp,
                "leaseTransitions": 0,
            },
        }
        try:
            self.api.create_namespaced_lease(self.namespace, body)  # type: ignore[arg-type]
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        self._renewed_at = self._clock()
        return True

    # -- the life of a replica ------------------------------------------------------------
    def wait_until_leader(self) -> bool:
        """Block until this replica holds the Lease (False if stopped first)."""
        logged = False
        while not self._stop.is_set():
            try:
                if self.try_acquire():
                    logger.info("leading: holding Lease %s/%s", self.namespace, self.name)
                    return True
            except Exception as error:  # the API may be away for a while: keep trying
                logger.warning("cannot read Lease %s/%s: %s", self.namespace, self.name, error)
            if not logged:
                logger.info("waiting: another replica holds Lease %s/%s", self.namespace, self.name)
                logged = True
            self._stop.wait(self.retry)
        return False

    def keep_leading(self, lost: Callable[[], None]) -> threading.Thread:
        """Renew in the background; call `lost` once if renewing fails past the deadline."""

        def renew() -> None:
            while not self._stop.wait(self.retry):
                try:
                    held = self.try_acquire()
                except Exception as error:
                    logger.warning("cannot renew Lease %s/%s: %s", self.namespace, self.name, error)
                    held = True  # not lost yet: the deadline decides
                if not held or self._clock() - self._renewed_at > self.renew_deadline:
                    logger.error("lost Lease %s/%s: stopping", self.namespace, self.name)
                    lost()
                    return

        thread = threading.Thread(target=renew, name="headrace-lease", daemon=True)
        thread.start()
        return thread

    def release(self) -> None:
        """Stop renewing and let the Lease go, so a successor need not wait it out."""
        self._stop.set()
        try:
            lease = self._read()
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.me:
                return
            body = {
                "metadata": {"resourceVersion": lease["metadata"]["resourceVersion"]},
                "spec": {"holderIdentity": None, "renewTime": None, "acquireTime": None},
            }
            self.api.patch_namespaced_lease(
                self.name, self.namespace, body, _content_type=MERGE_PATCH
            )
        except ApiException as error:
            logger.warning("could not release Lease %s/%s: %s", self.namespace, self.name, error)
