"""The operator on a real node: flows in real containers of the flow image, results in S3.

The default scheduler places every pod on the session cluster's real node (kubelet,
containerd, runc), whose pods reach the S3 server on the node's bridge. These are the faults
only real containers show: a memory limit, an image that cannot be pulled, a
pod deleted by hand, a flow that ignores SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from operator_harness import FlowRuns, OperatorProcess

from cluster.fixtures import Cluster, RealCluster, create_namespace, delete_namespace
from cluster.helpers import wait_for
from cluster.s3 import use_storage_env
from headrace.results import load_result

pytestmark = pytest.mark.cluster


@dataclass
class Real:
    cluster: Cluster
    flowruns: FlowRuns
    operator: OperatorProcess
    node_name: str

    def final(self, name: str, timeout: float = 120) -> dict[str, object]:
        return self.flowruns.wait_final(name, timeout=timeout, operator=self.operator)


@contextlib.contextmanager
def real_operator(
    real_cluster: RealCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str
) -> Iterator[Real]:
    """A namespace with the storage's Secret, and the operator as the chart would set it up:
    the engine is the image's `headrace`, results go to S3 with that Secret."""
    cluster = real_cluster.cluster
    namespace = create_namespace(cluster)
    storage = real_cluster.storage_env()
    secret = client.V1Secret(metadata=client.V1ObjectMeta(name="s3-creds"), string_data=storage)
    cluster.core.create_namespaced_secret(namespace, secret)
    prefix = real_cluster.s3.url(f"runs-{namespace}")
    operator = OperatorProcess(
        cluster.kubeconfig,
        namespace,
        tmp_path,
        HEADRACE_ENGINE_COMMAND="headrace",
        HEADRACE_DEFAULT_RESULT_STORAGE=prefix,
        HEADRACE_DEFAULT_STORAGE_SECRET="s3-creds",
        HEADRACE_READABLE_STORAGE=prefix,
        HEADRACE_GRACE_SECONDS="3",
        HEADRACE_START_ERROR_GRACE_SECONDS="20",
        **storage,
        **env,
    ).start()
    use_storage_env(monkeypatch, storage)  # this test reads results as a user would
    image = real_cluster.node.node_images.flows.ref
    flowruns = FlowRuns(cluster.api_client, namespace, image=image)
    try:
        yield Real(cluster, flowruns, operator, real_cluster.node.name)
    finally:
        flowruns.delete_all()
        operator.stop()
        delete_namespace(cluster, namespace)


@pytest.fixture
def real(
    real_cluster: RealCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Real]:
    with real_operator(real_cluster, tmp_path, monkeypatch) as made:
        yield made


def create_spread(real: Real, name: str, n: int, seconds: float, dask: dict[str, int]) -> None:
    """A FlowRun of `cluster_flows.py:spread` (n task runs of `seconds` each, reporting their
    hosts) on a Dask cluster of the given shape."""
    spec = real.flowruns.flow_spec("cluster_flows.py:spread")
    body = real.flowruns.manifest(
        "flowrun-hello",
        flow=spec,
        parameters={"n": n, "seconds": seconds},
        taskRunner={"dask": dask},
    )
    real.flowruns.create(body, name=name)


def test_a_flowrun_runs_in_a_real_container_and_its_result_lands_in_s3(real: Real) -> None:
    real.flowruns.create(real.flowruns.manifest("flowrun-hello"))
    status = real.final("hello")
    assert status["state"] == "Completed", status
    assert str(status["resultLocation"]).startswith("s3://")
    assert load_result(str(status["resultLocation"])) == {"greeting": "hello cluster", "total": 20}
    assert status["progress"] == {"total": 5, "counts": {"Completed": 5}, "running": []}
    (pod,) = real.flowruns.pods("hello")
    assert pod.spec.node_name == real.node_name
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 0 and '"state": "Completed"' in terminated.message
    logs = real.cluster.core.read_namespaced_pod_log(pod.metadata.name, real.flowruns.namespace)
    assert "hello, cluster" in logs


def bind_run_deployments(real: Real) -> None:
    """The chart's Role for `run_deployment` (flowServiceAccount.runDeployments; test_chart
    checks its rules are these), bound to the account the namespace's flow pods run as."""
    namespace = real.flowruns.namespace
    rbac = client.RbacAuthorizationV1Api(real.cluster.api_client)
    rules = [
        client.V1PolicyRule(api_groups=["headrace.dev"], resources=["deployments"], verbs=["get"]),
        client.V1PolicyRule(
            api_groups=["headrace.dev"], resources=["flowruns"], verbs=["create", "get"]
        ),
    ]
    role = client.V1Role(metadata=client.V1ObjectMeta(name="runs-deployments"), rules=rules)
    rbac.create_namespaced_role(namespace, role)
    binding = client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="runs-deployments"),
        role_ref=client.V1RoleRef(
            api_group="rbac.authorization.k8s.io", kind="Role", name="runs-deployments"
        ),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name="default", namespace=namespace)],
    )
    rbac.create_namespaced_role_binding(namespace, binding)


def with_token(real: Real, real_cluster: RealCluster, entry: str) -> dict[str, Any]:
    """A flow spec whose pods mount their account's token and reach the API server (no
    kube-proxy here: its address on the node's bridge)."""
    host, port = real_cluster.apiserver_for_pods()
    spec = real.flowruns.flow_spec(entry)
    spec["pod"] = {
        **spec.get("pod", {}),
        "automountServiceAccountToken": True,
        "env": [
            {"name": "KUBERNETES_SERVICE_HOST", "value": host},
            {"name": "KUBERNETES_SERVICE_PORT", "value": str(port)},
        ],
    }
    return spec


def test_a_flow_pods_token_gives_only_what_its_account_was_granted(
    real: Real, real_cluster: RealCluster
) -> None:
    """What a user who may create FlowRuns gets by asking for the token: nothing, until the
    flow account is given run_deployment's rights, and then only those."""
    spec = with_token(real, real_cluster, "cluster_flows.py:asks_the_api")
    real.flowruns.create(
        real.flowruns.manifest("flowrun-hello", flow=spec, parameters={}), name="bare"
    )
    status = real.final("bare")
    assert status["state"] == "Completed", status
    denied = {"list secrets": 403, "list pods": 403, "list flowruns": 403, "create flowrun": 403}
    assert load_result(str(status["resultLocation"])) == denied
    bind_run_deployments(real)
    real.flowruns.create(
        real.flowruns.manifest("flowrun-hello", flow=spec, parameters={}), name="bound"
    )
    status = real.final("bound")
    assert load_result(str(status["resultLocation"])) == {**denied, "create flowrun": 200}


def test_a_flow_runs_a_deployment_and_gets_its_result(
    real: Real, real_cluster: RealCluster
) -> None:
    """Prefect 2's `run_deployment` from a flow pod, with the token of its ServiceAccount and
    only the rights it needs."""
    bind_run_deployments(real)
    real.flowruns.deployment("child", entry="cluster_flows.py:hello")
    spec = with_token(real, real_cluster, "cluster_flows.py:runs_a_deployment")
    body = real.flowruns.manifest("flowrun-hello", flow=spec, parameters={"n": 3})
    parent = real.flowruns.create(body, name="parent")
    status = real.final("parent", timeout=300)
    assert status["state"] == "Completed", status
    made = load_result(str(status["resultLocation"]))
    assert made["state"] == "Completed"
    assert made["result"] == {"greeting": "hello child", "total": 6}
    child = real.flowruns.get(made["name"])
    assert child["spec"]["deploymentRef"] == {"name": "child"}
    annotations = child["metadata"]["annotations"]
    assert (
        json.loads(annotations["headrace.dev/parent-flow-run"])["id"] == parent["metadata"]["uid"]
    )
    (pod,) = real.flowruns.pods(made["name"])
    assert pod.spec.automount_service_account_token is False  # the Deployment's pods: no token


def test_a_failing_flow_fails_with_its_message(real: Real) -> None:
    spec = real.flowruns.flow_spec("cluster_flows.py:fails")
    body = real.flowruns.manifest("flowrun-hello", flow=spec, parameters={"reason": "boom"})
    real.flowruns.create(body, name="fails")
    status = real.final("fails")
    assert status["state"] == "Failed"
    assert status["message"] == "ValueError: boom"


def test_a_timeout_sends_sigterm_to_the_container_and_the_engine_records_it(real: Real) -> None:
    real.flowruns.sleeper("slow", 600)
    real.flowruns.patch_spec("slow", {"timeoutSeconds": 6})
    status = real.final("slow")
    assert status["state"] == "TimedOut"
    assert status["attempts"][0]["exitCode"] == 143
    assert status["attempts"][0]["message"] == "stopped after SIGTERM"


def test_a_flow_that_ignores_sigterm_is_killed_after_its_grace_period(real: Real) -> None:
    spec = real.flowruns.flow_spec("cluster_flows.py:stubborn")
    spec["pod"]["terminationGracePeriodSeconds"] = 2
    body = real.flowruns.manifest("flowrun-hello", flow=spec, parameters={}, timeoutSeconds=6)
    real.flowruns.create(body, name="stubborn")
    status = real.final("stubborn")
    assert status["state"] == "TimedOut"
    assert status["attempts"][0]["exitCode"] == 137
    assert "by SIGKILL after its grace period" in status["attempts"][0]["message"]


def test_a_flow_over_its_memory_limit_ends_crashed_oomkilled(real: Real) -> None:
    spec = real.flowruns.flow_spec("cluster_flows.py:hog")
    spec["pod"]["resources"] = {"limits": {"memory": "128Mi"}}
    body = real.flowruns.manifest("flowrun-hello", flow=spec, parameters={"megabytes": 400})
    real.flowruns.create(body, name="hog")
    status = real.final("hog")
    assert status["state"] == "Crashed"
    assert "OOMKilled" in status["message"]


def test_an_image_that_cannot_be_pulled_ends_the_run_with_the_reason(real: Real) -> None:
    spec = real.flowruns.flow_spec("cluster_flows.py:hello")
    spec["image"] = "127.0.0.1:9/headrace/missing:1"  # nothing listens there
    spec["pod"]["imagePullPolicy"] = "IfNotPresent"
    real.flowruns.create(real.flowruns.manifest("flowrun-hello", flow=spec), name="no-image")

    def told() -> bool:  # while the kubelet retries, the status says why the pod waits
        status = real.flowruns.status("no-image")
        message = str(status.get("message"))
        pulling = "ErrImagePull" in message or "ImagePullBackOff" in message
        return status.get("state") == "Pending" and pulling and "kubelet retries" in message

    wait_for(told, 60, "the pull error in the status of the pending run")
    status = real.final("no-image", timeout=90)
    assert status["state"] == "Crashed"
    assert "ErrImagePull" in status["message"] or "ImagePullBackOff" in status["message"]
    assert not real.flowruns.pods("no-image") or all(
        p.metadata.deletion_timestamp is None for p in real.flowruns.pods("no-image")
    )


def test_a_pod_deleted_by_hand_ends_the_run_crashed(real: Real) -> None:
    real.flowruns.sleeper("deleted", 600)
    real.flowruns.wait_running("deleted", real.operator)
    (pod,) = real.flowruns.pods("deleted")
    real.cluster.core.delete_namespaced_pod(pod.metadata.name, real.flowruns.namespace)
    status = real.final("deleted")
    assert status["state"] == "Crashed"
    # SIGTERM from the deletion; SIGKILL too if the engine's goodbye outlasts the grace period
    assert "the engine process was killed (signal" in status["message"], status["message"]


def test_a_deployment_runs_on_the_real_node(real: Real) -> None:
    real.flowruns.deployment("etl", entry="cluster_flows.py:hello", parameters={"n": 2})
    real.flowruns.run_of("etl", "etl-now", parameters={"name": "deployment"})
    status = real.final("etl-now")
    assert status["state"] == "Completed", status
    assert load_result(str(status["resultLocation"])) == {
        "greeting": "hello deployment",
        "total": 2,
    }


def _dask_objects(real: Real, cluster: str) -> list[str]:
    """The run's Dask pods and Service that still exist (deleting ones included)."""
    selector = f"headrace.dev/dask-cluster={cluster}"
    namespace = real.flowruns.namespace
    pods = real.cluster.core.list_namespaced_pod(namespace, label_selector=selector).items
    services = real.cluster.core.list_namespaced_service(namespace, label_selector=selector)
    return [p.metadata.name for p in pods] + [s.metadata.name for s in services.items]


def test_a_flowrun_with_a_dask_task_runner_runs_its_tasks_in_worker_pods(real: Real) -> None:
    """`spec.taskRunner.dask`: the mapped task runs ran in the run's worker pods (their
    hostnames are the pods' names), and the cluster is gone once the run has ended."""
    create_spread(real, "spread", 8, 0.5, {"workers": 2, "threadsPerWorker": 1})
    status = real.final("spread", timeout=240)
    assert status["state"] == "Completed", status
    dask = status["dask"]
    assert dask["state"] == "Deleted"
    assert str(dask["scheduler"]).startswith("tcp://")
    assert dask["dashboardService"] == dask["cluster"]
    result = load_result(str(status["resultLocation"]))
    assert result["total"] == sum(range(8))
    assert result["hosts"], result
    assert set(result["hosts"]) <= set(dask["workers"]), (result, dask)
    assert result["flow_host"] not in dask["workers"]
    wait_for(lambda: not _dask_objects(real, dask["cluster"]), 60, "the Dask cluster to go")


def test_a_cancelled_dask_run_takes_its_cluster_with_it(real: Real) -> None:
    create_spread(real, "cancelled-spread", 2, 600, {"workers": 1})
    running = real.flowruns.wait(
        "cancelled-spread",
        lambda s: s.get("state") == "Running" and (s.get("dask") or {}).get("state") == "Running",
        180,
        "Running on its Dask cluster",
        real.operator,
    )
    cluster = running["dask"]["cluster"]
    assert _dask_objects(real, cluster)
    real.flowruns.patch_spec("cancelled-spread", {"cancel": True})
    status = real.final("cancelled-spread")
    assert status["state"] == "Cancelled"
    assert status["dask"]["state"] == "Deleted"
    wait_for(lambda: not _dask_objects(real, cluster), 60, "the Dask cluster to go")


@pytest.fixture
def dask_kubernetes(real_cluster: RealCluster, tmp_path: Path) -> Iterator[Path]:
    """The dask-kubernetes operator (its Python package, run by kopf as its image would) and
    its CRDs; the operator image itself cannot be pulled here. Yields its log's path."""
    import dask_kubernetes
    from kubernetes import utils

    cluster = real_cluster.cluster
    crds = Path(dask_kubernetes.__file__).parent / "operator/deployment/helm"
    for path in sorted(crds.glob("dask-kubernetes-operator/crds/*.yaml")):
        with contextlib.suppress(utils.FailToCreateError):  # there from an earlier test
            utils.create_from_yaml(cluster.api_client, str(path))
    log = tmp_path / "dask-kubernetes-operator.log"
    kopf = Path(sys.executable).parent / "kopf"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(kopf), "run", "-m", "dask_kubernetes.operator.controller", "--all-namespaces"],
            env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield log
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_with_dask_kubernetes_the_run_gets_a_daskcluster_and_its_tasks_run_on_it(
    real_cluster: RealCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    dask_kubernetes: Path,
) -> None:
    """HEADRACE_DASK_CLUSTERS=dask-kubernetes: a DaskCluster (scheduler and Service) made by
    that operator, and a DaskWorkerGroup pointed at the scheduler pod's address; the task runs
    ran in the group's pods, and both resources are gone after the run."""
    with real_operator(
        real_cluster, tmp_path, monkeypatch, HEADRACE_DASK_CLUSTERS="dask-kubernetes"
    ) as real:
        create_spread(real, "dk-spread", 6, 0.5, {"workers": 2})
        status = real.final("dk-spread", timeout=300)
        assert status["state"] == "Completed", (status, dask_kubernetes.read_text()[-3000:])
        dask = status["dask"]
        assert dask["kind"] == "DaskCluster" and dask["state"] == "Deleted"
        result = load_result(str(status["resultLocation"]))
        assert result["total"] == sum(range(6))
        group = dask["workerGroup"]
        assert result["hosts"] and all(host.startswith(group) for host in result["hosts"])
        assert not result["flow_host"].startswith(group)
        api = client.CustomObjectsApi(real.cluster.api_client)
        namespace = real.flowruns.namespace

        def gone() -> bool:
            clusters = api.list_namespaced_custom_object(
                "kubernetes.dask.org", "v1", namespace, "daskclusters"
            )["items"]
            selector = f"dask.org/cluster-name={dask['cluster']}"
            pods = real.cluster.core.list_namespaced_pod(namespace, label_selector=selector)
            return not clusters and not pods.items

        wait_for(gone, 90, "the DaskCluster and its pods to go")
