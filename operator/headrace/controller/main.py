"""`headrace operator`: run the controller against the current kubeconfig or in-cluster."""

from __future__ import annotations

import logging
import os


def run_operator(
    namespaces: list[str], liveness: str | None, verbose: bool, metrics_port: int | None = None
) -> int:
    import kopf
    from kubernetes import config

    from headrace.controller import handlers  # noqa: F401 - registers the handlers

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
