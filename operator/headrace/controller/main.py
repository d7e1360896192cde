"""`headrace operator`: run the controller against the current kubeconfig or in-cluster."""

from __future__ import annotations

import asyncio
import http.server
import logging
import sys
import threading
import urllib.parse

import kopf
from kubernetes import client, config

from headrace.controller import (
    handlers,  # registers the handlers
    metrics,
)
from headrace.controller.leader import LeaderElection, identity
from headrace.settings import Settings

# The API server accepts objects nested thousands of levels deep (parameters are free-form
# JSON). Parsing, copying and serialising them recurses once per level, in kopf and the
# kubernetes client as in our own code, so the operator raises Python's recursion limit and
# gives every thread a stack deep enough for it: one such object must not stop the operator.
RECURSION_LIMIT = 60_000
THREAD_STACK_BYTES = 256 * 1024 * 1024


def run_operator(
    namespaces: list[str], liveness: str | None, verbose: bool, metrics_port: int | None = None
) -> int:
    handlers.watched_namespaces[:] = namespaces

    sys.setrecursionlimit(RECURSION_LIMIT)
    threading.stack_size(THREAD_STACK_BYTES)  # address space only, until a thread uses it

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # kopf says "Handler ... succeeded" at INFO for every watch event: ten lines per run, which
    # cost CPU and bury the operator's own lines. Its warnings and errors still show.
    logging.getLogger("kopf.objects").setLevel(logging.DEBUG if verbose else logging.WARNING)
    log = logging.getLogger("headrace.operator")
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        log.info("using the in-cluster service account")
    except config.ConfigException as in_cluster:
        log.info("not in a cluster (%s); using the kubeconfig", in_cluster)
        config.load_kube_config()  # type: ignore[no-untyped-call]
    # Prometheus metrics (controller/metrics.py) on --metrics-port or HEADRACE_METRICS_PORT
    # (the chart sets 9090); off by default so a local `headrace operator` takes no port.
    port = metrics_port if metrics_port is not None else Settings.from_environ().metrics_port
    if port:
        metrics.serve(port)
        log.info("serving metrics on port %d", port)
    # Build the reconciler (importing the kubernetes client's API modules takes seconds)
    # before waiting to lead: a replica in waiting is then ready to act the moment it leads.
    handlers.reconciler()
    leading, election = _elect(liveness)
    if not leading:
        return 0
    lost = threading.Event()

    async def operate() -> None:
        # An asyncio flag of this loop: kopf waits for a threading.Event on an executor
        # thread, which would hold up the exit after a SIGTERM.
        stop = asyncio.Event()
        if election is not None:
            loop = asyncio.get_running_loop()

            def on_lost() -> None:
                lost.set()
                loop.call_soon_threadsafe(stop.set)

            election.keep_leading(lost=on_lost)
            handlers.on_stop.append(election.release)
        await kopf.operator(
            standalone=True,
            clusterwide=not namespaces,
            namespaces=namespaces,
            liveness_endpoint=liveness,
            stop_flag=stop,
        )

    try:
        asyncio.run(operate())
    except asyncio.CancelledError:
        pass
    finally:
        if election is not None:
            election.release()
    return 1 if lost.is_set() else 0


def _elect(liveness: str | None) -> tuple[bool, LeaderElection | None]:
    """With leader election on, wait to hold the Lease (answering liveness meanwhile).

    Whether to go on, and the election (None when it is off: a single replica).
    """
    settings = Settings.from_environ()
    if not settings.leader_election_namespace:
        return True, None
    election = LeaderElection(
        client.CoordinationV1Api(),
        settings.leader_election_namespace,
        settings.leader_election_lease,
        identity(),
    )
    probe = _serve_liveness(liveness)
    try:
        return election.wait_until_leader(), election
    finally:
        if probe is not None:
            probe.shutdown()
            probe.server_close()


def _serve_liveness(url: str | None) -> http.server.HTTPServer | None:
    """Answer the liveness probe while waiting: a replica in waiting is healthy."""
    if not url:
        return None
    parts = urllib.parse.urlsplit(url)

    class Healthy(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"waiting for the leader Lease\n")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((parts.hostname or "", parts.port or 80), Healthy)
    server.allow_reuse_address = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
