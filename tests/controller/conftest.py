"""Fixtures for operator end-to-end tests: CRDs, the operator process, FlowRun helpers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from operator_harness import FlowRuns, OperatorProcess, install_crds

from cluster.fixtures import Cluster


@pytest.fixture(scope="session")
def crds(cluster: Cluster) -> Cluster:
    install_crds(cluster.api_client)
    return cluster


@pytest.fixture
def operator_process(crds: Cluster, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    if not crds.process_kubelet:
        pytest.skip("these tests run flows from this checkout: they need the process kubelet")
    process = OperatorProcess(crds.kubeconfig, namespace, tmp_path).start()
    try:
        yield process
    finally:
        # While the operator still runs, so it can release its finalizers: otherwise the
        # FlowRuns (and so the namespace) would stay Terminating after the test.
        FlowRuns(crds.api_client, namespace).delete_all()
        process.stop()


@pytest.fixture
def flowruns(crds: Cluster, namespace: str) -> FlowRuns:
    return FlowRuns(crds.api_client, namespace)
