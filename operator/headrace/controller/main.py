"""`headrace operator`: run the controller against the current kubeconfig or in-cluster."""

from __future__ import annotations

import logging
import os
import sys
import threading

# The API server accepts objects nested thousands of levels deep (parameters are free-form
# JSON). Parsing, copying and serialising them recurses once per level, in kopf and the
# kubernetes client as in our own code, so the operator raises Python's recursion limit and
# gives every thread a stack deep enough for it: one such object must not stop the operator.
RECURSION_LIMIT = 60_000
THREAD_STACK_BYTES = 256 * 1024 * 1024


def run_operator(
    namespaces: list[str], liveness: str | None, verbose: bool, metrics_port: int | None = None
) -> int:
    import kopf
    from kubernetes import config

    from headrace.controller import handlers  # registers the handlers

    handlers.watched_namespaces[:] = namespaces

    sys.setrecursionlimit(RECURSION_LIMIT)
    threading.stack_size(THREAD_STACK_BYTES)  # address space only, until a thread uses it

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    log = logging.getLogger("headrace.operator")
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        log.info("using the in-cluster service account")
    except config.ConfigException as in_cluster:
        log.info("not in a cluster (%s); using the kubeconfig", in_cluster)
        config.load_kube_config()  # type: ignore[no-untyped-call]
    # Prometheus metrics (controller/metrics.py) on --metrics-port or HEADRACE_METRICS_PORT
    # (the chart sets 9090); off by default so a local `headrace operator` takes no port.
    port = (
        metrics_port
        if metrics_port is not None
        else int(os.environ.get("HEADRACE_METRICS_PORT") or 0)
    )
    if port:
        from headrace.controller import metrics

        metrics.serve(port)
        log.info("serving metrics on port %d", port)
    kopf.run(
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=liveness,
    )
    return 0
