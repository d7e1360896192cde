"""The cluster demo: a real API server, the operator, a FlowRun from apply to Completed.

    scripts/demo-cluster

Starts the test cluster (kube-apiserver + etcd + controller-manager built from Go modules,
a real node: kubelet + containerd + runc, and an S3 server; needs root), installs the CRDs,
runs `headrace operator`, applies examples/manifests/flowrun-hello.yaml with 2,000 mapped
tasks in a container of the flow image, and prints the FlowRun's status as the operator
writes it, then the run's logs newest first, read from S3.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "controller")]

from operator_harness import (  # noqa: E402
    FINAL,
    FlowRuns,
    OperatorProcess,
    install_crds,
    operator_storage,
    storage_env,
)

from cluster.fixtures import create_namespace, start_cluster, stop_cluster  # noqa: E402


def main() -> int:
    print("starting the control plane (the first run builds it from Go modules: minutes)")
    cluster = start_cluster()
    workdir = Path(tempfile.mkdtemp(prefix="headrace-demo-"))
    try:
        if cluster.real_node is None:
            print(cluster.node_error or "no real node", file=sys.stderr)
            return 1
        install_crds(cluster.api_client)
        namespace = create_namespace(cluster, "demo")
        storage = operator_storage(cluster, namespace)
        operator = OperatorProcess(cluster.kubeconfig, namespace, workdir, **storage).start()
        try:
            image = cluster.real_node.node_images.flows.ref
            flowruns = FlowRuns(cluster.api_client, namespace, image=image)
            flowruns.create(
                flowruns.manifest("flowrun-hello", parameters={"name": "demo", "n": 2000})
            )
            print(f"applied flowrun/hello in namespace {namespace}")
            shown = None
            status: dict[str, object] = {}
            deadline = time.monotonic() + 120
            while status.get("state") not in FINAL and time.monotonic() < deadline:
                status = flowruns.status("hello")
                line = (
                    status.get("state"),
                    json.dumps(status.get("progress", {}).get("counts", {})),
                )
                if line != shown and line[0]:
                    print(f"  {line[0]:<10} task runs {line[1]}")
                    shown = line
                time.sleep(0.2)
            keep = (
                "state",
                "message",
                "startTime",
                "completionTime",
                "duration",
                "progress",
                "resultLocation",
                "recordLocation",
                "attempts",
            )
            print("status:")
            print(json.dumps({k: status.get(k) for k in keep}, indent=2))
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "headrace",
                    "logs",
                    str(status["recordLocation"]),
                    "--reverse",
                    "--limit",
                    "5",
                ],
                check=False,
                env={**os.environ, **storage_env(cluster)},  # the record is in S3
            )
            return 0 if status.get("state") == "Completed" else 1
        finally:
            operator.stop()
    finally:
        stop_cluster(cluster)


if __name__ == "__main__":
    sys.exit(main())
