"""Pytest fixtures for cluster tests (re-exported by ``tests/conftest.py``).

* ``cluster`` (session): the one cluster of the session, or the cluster of
  ``HEADRACE_TEST_KUBECONFIG``. Locally: the control plane (built and started on first use),
  a real node (kubelet, containerd, runc, CNI; the flow images loaded) whose kube-scheduler
  serves ``default-scheduler``, and an S3 server on the node's bridge that pods and this
  process reach. A control plane failure fails the tests; a node or S3 failure (say, not
  root) fails only the tests that run pods; ``HEADRACE_SKIP_CLUSTER=1`` skips them all.
* ``namespace`` (function): a fresh namespace with its ``default`` ServiceAccount;
  pods in it are force-deleted and the namespace removed afterwards.
* ``s3_server`` (session): a real S3 endpoint (SeaweedFS, see ``s3.py``) with auth on, a
  per-session key and one bucket, listening on ``HEADRACE_S3_BIND`` (default 127.0.0.1;
  0.0.0.0 or a bridge gateway IP lets containers reach it). A start failure fails the tests.
* ``real_node`` and ``real_cluster`` (session): the session cluster's node, and the cluster
  with its node and S3 server (``RealCluster``); they fail when the node did not start and
  skip on an external cluster (it brings no images and no S3 server of ours).
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
from cluster.helpers import IMAGE, install_crds
from cluster.kubeconfig import client_for_token, client_from_kubeconfig, write_kubeconfig
from cluster.node import RealNode, RealNodeError, free_subnet, start_real_node
from cluster.s3 import S3Server, S3ServerError


@dataclass
class Cluster:
    """What cluster tests get: an admin client plus helpers for other identities."""

    kubeconfig: Path
    api_client: client.ApiClient
    control_plane: ControlPlane | None  # None for an external cluster
    real_node: RealNode | None = None  # where pods run (local cluster)
    s3: S3Server | None = None  # results storage pods and this process reach (local cluster)
    node_error: str | None = None  # why the local node or S3 server is missing

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api_client)

    @property
    def pod_image(self) -> str:
        """An image with `sh` for plain test pods: the project image the node has loaded
        (nothing can be pulled here), or busybox on an external cluster."""
        return self.real_node.node_images.project.ref if self.real_node else IMAGE

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


def start_cluster() -> Cluster:
    """Connect to ``HEADRACE_TEST_KUBECONFIG`` or start the local cluster: control plane,
    real node and S3 server. The apiserver also listens on the node's bridge address (in
    its certificate), where pods reach it; the bridge's subnet is picked first for that."""
    external = os.environ.get("HEADRACE_TEST_KUBECONFIG")
    if external:
        path = Path(external).expanduser()
        return Cluster(path, client_from_kubeconfig(path), None)
    subnet = free_subnet()
    host_ip = str(subnet.network_address + 1)
    plane = ControlPlane(bind_address="0.0.0.0", serving_ips=(host_ip,)).start()
    try:
        api_client = client_from_kubeconfig(plane.kubeconfig_path)
    except BaseException:
        plane.stop()
        raise
    handle = Cluster(plane.kubeconfig_path, api_client, plane)
    try:
        handle.real_node = start_real_node(plane, plane.keep_workdir, subnet=subnet)
        handle.s3 = S3Server(bind_address=host_ip).start()
    except (RealNodeError, S3ServerError, OSError) as exc:
        handle.node_error = f"real node or S3 server unavailable: {exc}"
    except BaseException:
        stop_cluster(handle)
        raise
    return handle


def stop_cluster(handle: Cluster) -> None:
    """Stop what `start_cluster` started, the node before the control plane it joined."""
    handle.api_client.close()  # type: ignore[no-untyped-call]
    if handle.s3 is not None:
        handle.s3.stop()
    if handle.real_node is not None:
        handle.real_node.stop()
    if handle.control_plane is not None:
        handle.control_plane.stop()


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
        print(f"\ntest cluster up in {took:.1f}s: KUBECONFIG={handle.kubeconfig}")
        if handle.real_node is not None:
            timings = ", ".join(f"{k}={v:.1f}s" for k, v in handle.real_node.timings.items())
            print(f"real node Ready ({timings}); logs: {handle.real_node.workdir / 'logs'}")
        if handle.node_error:
            print(handle.node_error)
    try:
        yield handle
    finally:
        stop_cluster(handle)


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
    """Force-delete the pods (their containers are killed at once), then the namespace."""
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


def _node_of(cluster: Cluster) -> RealNode:
    """The session's real node; skips on an external cluster, fails when it did not start."""
    if cluster.control_plane is None:
        pytest.skip("needs the local real node, its images and S3 (HEADRACE_TEST_KUBECONFIG)")
    if cluster.real_node is None or cluster.s3 is None:
        pytest.fail(cluster.node_error or "no real node", pytrace=False)
    return cluster.real_node


@pytest.fixture(scope="session")
def real_node(cluster: Cluster) -> RealNode:
    """The session cluster's real node (kubelet, containerd, runc, CNI)."""
    return _node_of(cluster)


@dataclass
class RealCluster:
    """The session cluster seen from its real node: the default scheduler places every pod
    there, and its S3 server listens on the node's bridge, where pods reach it."""

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
def real_cluster(cluster: Cluster) -> RealCluster:
    """The session cluster with its real node and S3 server (see `RealCluster`), CRDs in."""
    node = _node_of(cluster)
    assert cluster.s3 is not None
    install_crds(cluster.api_client)
    return RealCluster(cluster, node, cluster.s3)
