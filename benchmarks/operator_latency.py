"""Operator latency on the real test cluster: apply to pod, to Completed, and timeouts.

    uv run python benchmarks/operator_latency.py [--runs 20]

Starts the test cluster (tests/cluster: control plane, real node, S3; needs root), installs
the CRDs, runs the operator as a process, then applies trivial FlowRuns one at a time (real
containers of the flow image, results in S3) and prints the medians.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "controller")]

from operator_harness import (  # noqa: E402
    FlowRuns,
    OperatorProcess,
    install_crds,
    operator_storage,
)

from cluster.fixtures import create_namespace, start_cluster, stop_cluster  # noqa: E402
from headrace.timestamps import parse_time  # noqa: E402


def pod_created_at(flowruns: FlowRuns, name: str, timeout: float = 60) -> float:
    """When a pod of run ``name`` is first seen. Pods are named ``<run>-<uid prefix>-<attempt>``
    (podspec.pod_name), so look for the run's label rather than guess the name."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if flowruns.pods(name):
            return time.perf_counter()
        time.sleep(0.01)
    raise TimeoutError(f"no pod for {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    started = time.perf_counter()
    cluster = start_cluster()
    cluster_up = time.perf_counter() - started
    workdir = Path(tempfile.mkdtemp(prefix="headrace-bench-op-"))
    try:
        if cluster.real_node is None:
            raise SystemExit(cluster.node_error or "no real node")
        install_crds(cluster.api_client)
        namespace = create_namespace(cluster, "hr-bench")
        storage = operator_storage(cluster, namespace)
        operator = OperatorProcess(cluster.kubeconfig, namespace, workdir, **storage).start()
        flowruns = FlowRuns(cluster.api_client, namespace, cluster.real_node.node_images.flows.ref)
        to_pod, to_done = [], []
        try:
            for index in range(args.runs):
                name = f"bench-{index}-{uuid.uuid4().hex[:4]}"
                body = flowruns.manifest("flowrun-hello", parameters={"name": name, "n": 1})
                start = time.perf_counter()
                flowruns.create(body, name=name)
                to_pod.append(pod_created_at(flowruns, name) - start)
                status = flowruns.wait_final(name, timeout=120, operator=operator)
                to_done.append(time.perf_counter() - start)
                assert status["state"] == "Completed", status
            # Timeout: from the deadline in the status to the run ending TimedOut, through
            # SIGTERM to the engine, its exit and the operator reading the pod.
            late = []
            for index in range(3):
                name = f"timeout-{index}-{uuid.uuid4().hex[:4]}"
                flowruns.create(flowruns.manifest("flowrun-timeout"), name=name)
                status = flowruns.wait_final(name, timeout=60, operator=operator)
                assert status["state"] == "TimedOut", status
                deadline = parse_time(status["deadline"])
                ended = parse_time(status["completionTime"])
                assert deadline is not None and ended is not None
                late.append(ended - deadline)
            # Restart: a FlowRun applied while the operator is down, then the operator started;
            # from its start to that run's pod (imports, first lists, watches, one reconcile).
            restarts = []
            for index in range(3):
                operator.stop()
                name = f"restart-{index}-{uuid.uuid4().hex[:4]}"
                body = flowruns.manifest("flowrun-hello", parameters={"name": name, "n": 1})
                flowruns.create(body, name=name)
                start = time.perf_counter()
                operator.start()
                restarts.append(pod_created_at(flowruns, name) - start)
                flowruns.wait_final(name, timeout=120, operator=operator)
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import kopf, kubernetes.client"], check=True)
            imports = time.perf_counter() - started
        finally:
            operator.stop()
        node = ", ".join(f"{k} {v:.1f} s" for k, v in cluster.real_node.timings.items())
        print(f"test cluster up in {cluster_up:.1f} s (control plane, real node, S3 server)")
        print(f"  real node to Ready: {node}")
        print(f"{args.runs} trivial FlowRuns, one at a time, in real containers of the flow image")
        print(
            f"  apply -> pod created   median {statistics.median(to_pod) * 1000:.0f} ms"
            f"   max {max(to_pod) * 1000:.0f} ms"
        )
        print(
            f"  apply -> Completed     median {statistics.median(to_done):.2f} s"
            f"   max {max(to_done):.2f} s"
        )
        print("operator restart with a FlowRun waiting")
        print(
            f"  start -> its pod       median {statistics.median(restarts):.2f} s"
            f"   max {max(restarts):.2f} s   (floor: importing kopf and the client "
            f"{imports:.2f} s; goal: under 3 s)"
        )
        print("timeoutSeconds=2, grace period 10 s; the engine exits on SIGTERM")
        print(
            f"  deadline -> TimedOut   median {statistics.median(late) * 1000:.0f} ms"
            f"   max {max(late) * 1000:.0f} ms   (goal: within grace + 1 s)"
        )
    finally:
        stop_cluster(cluster)


if __name__ == "__main__":
    main()
