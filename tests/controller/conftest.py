"""Fixtures for operator end-to-end tests: CRDs, the operator process, FlowRun helpers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from operator_harness import FlowRuns, OperatorProcess, install_crds, operator_storage, storage_env

from cluster.fixtures import Cluster
from cluster.node import RealNode
from cluster.s3 import use_storage_env


@pytest.fixture(scope="session")
def crds(cluster: Cluster) -> Cluster:
    install_crds(cluster.api_client)
    return cluster


@pytest.fixture
def operator_process(
    crds: Cluster,
    real_node: RealNode,
    namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[OperatorProcess]:
    """The operator for this test's namespace; its flows run on the real node and keep
    their results in S3, which this test then reads as a user would."""
    env = operator_storage(crds, namespace)
    process = OperatorProcess(crds.kubeconfig, namespace, tmp_path, **env).start()
    use_storage_env(monkeypatch, storage_env(crds))
    try:
        yield process
    finally:
        # While the operator still runs, so it can release its finalizers: otherwise the
        # FlowRuns (and so the namespace) would stay Terminating after the test.
        FlowRuns(crds.api_client, namespace).delete_all()
        process.stop()


@pytest.fixture
def flowruns(crds: Cluster, namespace: str) -> FlowRuns:
    """FlowRuns of the flow image (examples/flows), loaded into the real node."""
    image = crds.real_node.node_images.flows.ref if crds.real_node else None
    return FlowRuns(crds.api_client, namespace, image=image)


@pytest.fixture
def idle_flowruns(crds: Cluster, namespace: str) -> Iterator[FlowRuns]:
    """FlowRuns of this namespace for tests that run no operator: none is left at the end,
    for a later test's cluster-wide operator to find in a namespace being deleted."""
    runs = FlowRuns(crds.api_client, namespace)
    try:
        yield runs
    finally:
        runs.delete_all()
