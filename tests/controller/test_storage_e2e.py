"""Durable result storage under the operator: a real S3 server, credentials from a Secret."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from operator_harness import FlowRuns, OperatorProcess

from cluster.fixtures import Cluster
from cluster.s3 import S3Server, use_storage_env
from headrace.records import RunRecord
from headrace.results import load_result

pytestmark = pytest.mark.cluster


@pytest.fixture
def s3_operator(
    crds: Cluster, namespace: str, s3_server: S3Server, tmp_path: Path
) -> Iterator[OperatorProcess]:
    """The operator with the storage's credentials, allowed to read this test's prefix."""
    if not crds.process_kubelet:
        pytest.skip("these tests run flows from this checkout: they need the process kubelet")
    prefix = s3_server.url(f"runs-{namespace}")
    process = OperatorProcess(
        crds.kubeconfig, namespace, tmp_path, HEADRACE_READABLE_STORAGE=prefix, **s3_server.env()
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
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    crds.core.create_namespaced_secret(
        namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name="s3-creds"), string_data=s3_server.env()),
    )
    prefix = s3_server.url(f"runs-{namespace}")
    body = flowruns.manifest("flowrun-hello", resultStorage=prefix, resultStorageSecret="s3-creds")
    flowruns.create(body)
    status = flowruns.wait_final("hello", operator=s3_operator)

    assert status["state"] == "Completed", status
    assert status["resultLocation"].startswith(prefix + "/results/")
    assert status["recordLocation"].startswith(prefix + "/runs/")
    assert status["progress"]["counts"] == {"Completed": 5}
    assert "ResultsKept" not in {c["type"] for c in status["conditions"]}
    use_storage_env(monkeypatch, s3_server.env())  # this test reads results as a user would
    assert load_result(status["resultLocation"]) == {"greeting": "hello cluster", "total": 20}
    assert RunRecord.load(status["recordLocation"]).root["state"]["name"] == "Completed"

    (pod,) = flowruns.pods("hello")
    assert [source.secret_ref.name for source in pod.spec.containers[0].env_from] == ["s3-creds"]
    seen = str(flowruns.get("hello")) + s3_operator.log()
    assert s3_server.secret_key not in seen
