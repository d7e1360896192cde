"""Durable result storage under the operator: a real S3 server, credentials from a Secret."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from operator_harness import FlowRuns, OperatorProcess

from cluster.fixtures import Cluster, RealCluster
from cluster.s3 import use_storage_env
from headrace.records import RunRecord
from headrace.results import load_result

pytestmark = pytest.mark.cluster


@pytest.fixture
def s3_operator(
    crds: Cluster, namespace: str, real_cluster: RealCluster, tmp_path: Path
) -> Iterator[OperatorProcess]:
    """The operator with the storage's credentials, allowed to read this test's prefix;
    no default storage: the FlowRun names its own, and the Secret that opens it."""
    prefix = real_cluster.s3.url(f"runs-{namespace}")
    process = OperatorProcess(
        crds.kubeconfig,
        namespace,
        tmp_path,
        HEADRACE_READABLE_STORAGE=prefix,
        **real_cluster.storage_env(),
    ).start()
    try:
        yield process
    finally:
        FlowRuns(crds.api_client, namespace).delete_all()
        process.stop()


def test_results_and_records_land_in_object_storage_with_credentials_from_a_secret(
    s3_operator: OperatorProcess,
    flowruns: FlowRuns,
    crds: Cluster,
    namespace: str,
    real_cluster: RealCluster,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    storage = real_cluster.storage_env()
    crds.core.create_namespaced_secret(
        namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name="s3-creds"), string_data=storage),
    )
    prefix = real_cluster.s3.url(f"runs-{namespace}")
    body = flowruns.manifest("flowrun-hello", resultStorage=prefix, resultStorageSecret="s3-creds")
    flowruns.create(body)
    status = flowruns.wait_final("hello", operator=s3_operator)

    assert status["state"] == "Completed", status
    assert status["resultLocation"].startswith(prefix + "/results/")
    assert status["recordLocation"].startswith(prefix + "/runs/")
    assert status["progress"]["counts"] == {"Completed": 5}
    assert "ResultsKept" not in {c["type"] for c in status["conditions"]}
    use_storage_env(monkeypatch, storage)  # this test reads results as a user would
    assert load_result(status["resultLocation"]) == {"greeting": "hello cluster", "total": 20}
    assert RunRecord.load(status["recordLocation"]).root["state"]["name"] == "Completed"

    (pod,) = flowruns.pods("hello")
    assert [source.secret_ref.name for source in pod.spec.containers[0].env_from] == ["s3-creds"]
    seen = str(flowruns.get("hello")) + s3_operator.log()
    assert real_cluster.s3.secret_key not in seen
