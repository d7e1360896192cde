"""Pytest fixtures for cluster tests (re-exported by ``tests/conftest.py``).

* ``cluster`` (session): the local control plane (built and started on first
  use, process kubelet included), or the cluster of ``HEADRACE_TEST_KUBECONFIG``.
  Failing to start it fails the tests; ``HEADRACE_SKIP_CLUSTER=1`` skips them.
* ``namespace`` (function): a fresh namespace with its ``default`` ServiceAccount;
  pods in it are force-deleted and the namespace removed afterwards.
* ``s3_server`` (session): a real S3 endpoint (SeaweedFS, see ``s3.py``) with auth on, a
  per-session key and one bucket, listening on ``HEADRACE_S3_BIND`` (default 127.0.0.1;
  0.0.0.0 or a bridge gateway IP lets containers reach it). A start failure fails the tests.
* ``real_node`` (session): a real kubelet + containerd node (``node.py``) joined to
  the local control plane, with the pause, project and flow images loaded; also set
  as ``cluster.real_node``. Started only by tests that ask for it; the process
  kubelet keeps running pods that do not use ``real_node.pod_placement()``.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from cluster.controlplane import ControlPlane, ControlPlaneError
from cluster.helpers import install_crds
from cluster.kubeconfig import client_for_token, client_from_kubeconfig, write_kubeconfig
from cluster.node import RealNode, RealNodeError, free_subnet, start_real_node
from cluster.s3 import S3Server, S3ServerError

PROCESS_KUBELET_LABEL = "headrace.dev/process-kubelet"


@dataclass
class Cluster:
    """What cluster tests get: an admin client plus helpers for other identities."""

    kubeconfig: Path
    api_client: client.ApiClient
    control_plane: ControlPlane | None  # None for an external cluster
    process_kubelet: bool  # pods run as local processes (files they write are visible)
    real_node: RealNode | None = None  # set by the ``real_node`` fixture once it runs

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api_client)

    def service_account_token(self, namespace: str, name: str, seconds: int = 3600) -> str:
        """Create ServiceAccount ``name`` (if needed) and mint a token via TokenRequest."""
        account = client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
        with contextlib.suppress(ApiException):
            self.core.create_namespaced_service_account(namespace, account)
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=seconds)
        )
        response = self.core.create_namespaced_service_account_token(name, namespace, request)
        if response.status is None:
            raise RuntimeError(f"TokenRequest for {namespace}/{name} returned no token")
        return str(response.status.token)

    def service_account_client(self, namespace: str, name: str) -> client.ApiClient:
        """An ApiClient acting as ``system:serviceaccount:<namespace>:<name>`` (RBAC applies)."""
        return client_for_token(self.api_client, self.service_account_token(namespace, name))

    def service_account_kubeconfig(self, namespace: str, name: str, path: Path) -> Path:
        """A kubeconfig file for that ServiceAccount (for subprocesses, kubectl, kopf)."""
        config = self.api_client.configuration
        return write_kubeconfig(
            path,
            config.host,
            Path(config.ssl_ca_cert),
            self.service_account_token(namespace, name),
            user=f"{namespace}-{name}",
        )


def _has_process_kubelet(api_client: client.ApiClient) -> bool:
    nodes = client.CoreV1Api(api_client).list_node(label_selector=PROCESS_KUBELET_LABEL)
    return bool(nodes.items)


def start_cluster() -> Cluster:
    """Connect to ``HEADRACE_TEST_KUBECONFIG`` or start the local control plane."""
    external = os.environ.get("HEADRACE_TEST_KUBECONFIG")
    if external:
        path = Path(external).expanduser()
        api_client = client_from_kubeconfig(path)
        return Cluster(path, api_client, None, _has_process_kubelet(api_client))
    plane = ControlPlane().start()
    try:
        api_client = client_from_kubeconfig(plane.kubeconfig_path)
    except BaseException:
        plane.stop()
        raise
    return Cluster(plane.kubeconfig_path, api_client, plane, True)


_failure: str | None = None


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """The session's cluster; a start failure fails (never skips) dependent tests."""
    global _failure
    if os.environ.get("HEADRACE_SKIP_CLUSTER") == "1":
        pytest.skip("HEADRACE_SKIP_CLUSTER=1")
    if _failure is not None:
        pytest.fail(_failure, pytrace=False)
    started = time.monotonic()
    try:
        handle = start_cluster()
    except (ControlPlaneError, OSError, ApiException) as exc:
        _failure = f"test cluster unavailable: {exc}"
    if _failure is not None:  # outside the except block: no chained traceback noise
        pytest.fail(_failure, pytrace=False)
    if handle.control_plane is not None:
        took = time.monotonic() - started
        print(f"\ntest control plane up in {took:.1f}s: KUBECONFIG={handle.kubeconfig}")
    try:
        yield handle
    finally:
        handle.api_client.close()  # type: ignore[no-untyped-call]
        if handle.control_plane is not None:
            handle.control_plane.stop()


def _ensure_default_service_account(core: client.CoreV1Api, namespace: str) -> None:
    """Pods need it (ServiceAccount admission). Creating it ourselves instead of waiting
    for the controller is harmless (it tolerates AlreadyExists) and works without one."""
    body = client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="default"))
    try:
        core.create_namespaced_service_account(namespace, body)
    except ApiException as exc:
        if exc.status != 409:
            raise


def create_namespace(cluster: Cluster, prefix: str = "hr-test") -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    _ensure_default_service_account(cluster.core, name)
    return name


def delete_namespace(cluster: Cluster, name: str) -> None:
    """Force-delete the pods (their processes die at once), then the namespace."""
    core = cluster.core
    with contextlib.suppress(ApiException):
        core.delete_collection_namespaced_pod(name, grace_period_seconds=0)
    with contextlib.suppress(ApiException):
        core.delete_namespace(name)


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace for one test, cleaned up afterwards."""
    name = create_namespace(cluster)
    try:
        yield name
    finally:
        delete_namespace(cluster, name)


_s3_failure: str | None = None


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """The session's S3 server; a start failure fails (never skips) dependent tests."""
    global _s3_failure
    if _s3_failure is not None:
        pytest.fail(_s3_failure, pytrace=False)
    server = S3Server(bind_address=os.environ.get("HEADRACE_S3_BIND", "127.0.0.1"))
    try:
        server.start()
    except (S3ServerError, OSError) as exc:
        _s3_failure = f"test S3 server unavailable: {exc}"
    if _s3_failure is not None:  # outside the except block: no chained traceback noise
        pytest.fail(_s3_failure, pytrace=False)
    timings = ", ".join(f"{name} {took:.2f}s" for name, took in server.timings.items())
    print(f"\ntest S3 server up at {server.endpoint_url} ({timings})")
    try:
        yield server
    finally:
        server.stop()


_real_node_failure: str | None = None


@pytest.fixture(scope="session")
def real_node(cluster: Cluster) -> Iterator[RealNode]:
    """A real node (kubelet, containerd, runc, CNI) for the session; fails if it cannot start."""
    global _real_node_failure
    if cluster.control_plane is None:
        pytest.skip("the real node joins the local control plane (HEADRACE_TEST_KUBECONFIG is set)")
    if _real_node_failure is not None:
        pytest.fail(_real_node_failure, pytrace=False)
    try:
        node = start_real_node(
            cluster.control_plane, keep_workdir=cluster.control_plane.keep_workdir
        )
    except (RealNodeError, OSError) as exc:
        _real_node_failure = f"real node unavailable: {exc}"
    if _real_node_failure is not None:
        pytest.fail(_real_node_failure, pytrace=False)
    timings = ", ".join(f"{k}={v:.1f}s" for k, v in node.timings.items())
    print(f"\nreal node {node.name} Ready ({timings}); logs: {node.workdir / 'logs'}")
    cluster.real_node = node
    try:
        yield node
    finally:
        cluster.real_node = None
        node.stop()  # first: a running kubelet would register the Node again
        with contextlib.suppress(ApiException):
            cluster.core.delete_node(node.name)


@dataclass
class RealCluster:
    """A cluster whose only node is real: no process kubelet, the default scheduler places
    every pod on the real node, and an S3 server the pods can reach (on the node's bridge)."""

    cluster: Cluster
    node: RealNode
    s3: S3Server

    def apiserver_for_pods(self) -> tuple[str, int]:
        """Where pods reach the API server: the node's bridge address (in the apiserver's
        certificate) and its port. There is no kube-proxy, so the `kubernetes` Service's
        ClusterIP leads nowhere; an in-cluster client is pointed here with
        KUBERNETES_SERVICE_HOST/PORT."""
        assert self.cluster.control_plane is not None
        return self.node.host_ip, self.cluster.control_plane.port

    def storage_env(self) -> dict[str, str]:
        """The storage's credentials as flow pods and the operator use them."""
        return {**self.s3.env(), "AWS_ENDPOINT_URL_S3": self.s3.endpoint_for(self.node.host_ip)}


@pytest.fixture(scope="session")
def real_cluster() -> Iterator[RealCluster]:
    """A second control plane for the session, whose one node is real (see `RealCluster`).

    Its apiserver listens on every address and its certificate names the node's bridge
    address, so pods (an operator in-cluster) reach it there; the subnet is picked first.
    """
    if os.environ.get("HEADRACE_SKIP_CLUSTER") == "1":
        pytest.skip("HEADRACE_SKIP_CLUSTER=1")
    if os.environ.get("HEADRACE_TEST_KUBECONFIG"):
        pytest.skip("starts its own control plane and real node (HEADRACE_TEST_KUBECONFIG is set)")
    subnet = free_subnet()
    host_ip = str(subnet.network_address + 1)
    plane = ControlPlane(with_kubelet=False, bind_address="0.0.0.0", serving_ips=(host_ip,))
    plane.start()
    node: RealNode | None = None
    s3: S3Server | None = None
    api_client: client.ApiClient | None = None
    try:
        node = start_real_node(plane, scheduler_name="default-scheduler", subnet=subnet)
        s3 = S3Server(bind_address=node.host_ip).start()
        api_client = client_from_kubeconfig(plane.kubeconfig_path)
        install_crds(api_client)
        cluster = Cluster(plane.kubeconfig_path, api_client, plane, False, node)
        yield RealCluster(cluster, node, s3)
    finally:
        if api_client is not None:
            api_client.close()  # type: ignore[no-untyped-call]
        if s3 is not None:
            s3.stop()
        if node is not None:
            node.stop()
        plane.stop()
