"""Running the real operator as a process against the test cluster, and driving FlowRuns.

Flow pods run on the cluster's real node, in containers of the flow image (examples/flows
in /opt/flows), and keep their results and run records in the cluster's S3 server; a test
reads them back from there, as a user would."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from prometheus_client.parser import text_string_to_metric_families

from cluster.fixtures import Cluster
from cluster.helpers import install_crds

__all__ = ["install_crds"]  # re-exported: the tests' one way to install the CRDs

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "crds"
EXAMPLES = REPO / "examples"
GROUP, VERSION = "headrace.dev", "v1alpha1"
FINAL = {"Completed", "Failed", "Crashed", "Cancelled", "TimedOut"}
EXAMPLE_IMAGE = "ghcr.io/headrace/examples:0.1.0"  # the examples' image: never run here
STORAGE_SECRET = "s3-creds"


def storage_env(cluster: Cluster) -> dict[str, str]:
    """The S3 server's credentials and endpoint as pods (and this process) use them."""
    assert cluster.s3 is not None and cluster.real_node is not None
    endpoint = cluster.s3.endpoint_for(cluster.real_node.host_ip)
    return {**cluster.s3.env(), "AWS_ENDPOINT_URL_S3": endpoint}


def operator_storage(cluster: Cluster, namespace: str) -> dict[str, str]:
    """Results in S3, as the chart sets the operator up for it: a Secret with the storage's
    credentials in `namespace` for the flow pods, a default prefix of this namespace's own,
    which the operator may read (for live progress), and the credentials for that read."""
    assert cluster.s3 is not None
    storage = storage_env(cluster)
    secret = client.V1Secret(metadata=client.V1ObjectMeta(name=STORAGE_SECRET), string_data=storage)
    with contextlib.suppress(ApiException):  # a second operator in the same namespace
        cluster.core.create_namespaced_secret(namespace, secret)
    prefix = cluster.s3.url(f"runs-{namespace}")
    return {
        "HEADRACE_DEFAULT_RESULT_STORAGE": prefix,
        "HEADRACE_DEFAULT_STORAGE_SECRET": STORAGE_SECRET,
        "HEADRACE_READABLE_STORAGE": prefix,
        **storage,
    }


def poll(
    predicate: Callable[[], Any],
    timeout: float,
    what: str,
    operator: OperatorProcess | None = None,
    interval: float = 0.2,
) -> Any:
    """Call `predicate` until it returns something truthy; fail naming `what` (and the
    operator's log tail, when there is an operator to blame)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            log = f"\noperator log tail:\n{operator.log()[-4000:]}" if operator else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{log}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape_metrics(port: int) -> dict[str, list[Any]]:
    """Samples of every metric family the operator serves on `port`, by family name."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {f.name: list(f.samples) for f in text_string_to_metric_families(text)}


def api_requests(port: int) -> int:
    """How many API requests the operator has made through its client so far."""
    samples = scrape_metrics(port).get("headrace_kube_api_request_duration_seconds", [])
    return int(sum(s.value for s in samples if s.name.endswith("_count")))


class OperatorProcess:
    """`headrace operator` in a subprocess, as it would run in its own pod; its flow pods
    run the image's `headrace` (pass `operator_storage(...)` for results that outlive them)."""

    def __init__(self, kubeconfig: Path, namespace: str, workdir: Path, **env: str) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.workdir = workdir
        self.log_path = workdir / "operator.log"
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "HEADRACE_ENGINE_COMMAND": "headrace",  # the image's entrypoint program
            "HEADRACE_PROGRESS_INTERVAL": "0.5",
            "HEADRACE_GRACE_SECONDS": "5",
            "HEADRACE_RETRY_DELAY_SECONDS": "1",
            **self.env,
        }
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "headrace", "operator", "-n", self.namespace],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class FlowRuns:
    """Create and watch FlowRuns in one namespace.

    Flows run from `/opt/flows` in `image` (the flow image, loaded into the node); without
    one, manifests keep the examples' image, for tests that run no pod.
    """

    def __init__(
        self, api_client: client.ApiClient, namespace: str, image: str | None = None
    ) -> None:
        self.api = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self.namespace = namespace
        self.image = image
        self.flows_dir = "/opt/flows"

    def manifests(self, name: str) -> list[dict[str, Any]]:
        """The documents of examples/manifests/NAME.yaml, pointed at the flow image."""
        text = (EXAMPLES / "manifests" / f"{name}.yaml").read_text()
        docs = [doc for doc in yaml.safe_load_all(text) if doc]
        for doc in docs:
            flow = doc["spec"].get("flow") if doc["kind"] == "FlowRun" else doc["spec"]
            if flow and self.image:
                spec = self.flow_spec(flow["entrypoint"].rsplit("/", 1)[-1])
                flow.update(spec, pod={**flow.get("pod", {}), **spec["pod"]})  # keeps its own
        return docs

    def manifest(self, name: str, **overrides: Any) -> dict[str, Any]:
        """The one FlowRun of an example manifest, with spec fields overridden."""
        body = self.manifests(name)[0]
        body["spec"].update(overrides)
        return body

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        plural = {"FlowRun": "flowruns", "Deployment": "deployments"}[body["kind"]]
        created: dict[str, Any] = self.api.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, body
        )
        return created

    def deployment(self, name: str, **spec: Any) -> dict[str, Any]:
        """Create a Deployment of an example flow (`entry` is FILE.py:FLOW under examples/flows)."""
        entry = spec.pop("entry", "cluster_flows.py:hello")
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {**self.flow_spec(entry), **spec},
        }
        return self.apply(body)

    def run_of(self, deployment: str, name: str, **spec: Any) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "FlowRun",
            "metadata": {"name": name},
            "spec": {"deploymentRef": {"name": deployment}, **spec},
        }
        return self.apply(body)

    def deployment_status(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.api.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "deployments", name
        )
        return found.get("status") or {}

    def wait_deployment(
        self,
        name: str,
        predicate: Callable[[dict[str, Any]], Any],
        operator: OperatorProcess | None = None,
        timeout: float = 30,
    ) -> Any:
        """Poll the Deployment's status until `predicate` returns something truthy."""
        return poll(
            lambda: predicate(self.deployment_status(name)),
            timeout,
            f"Deployment {name} status",
            operator,
        )

    def patch_deployment(self, name: str, spec: dict[str, Any]) -> None:
        self.api.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "deployments", name, {"spec": spec}
        )

    def names(self) -> list[str]:
        listed = self.api.list_namespaced_custom_object(GROUP, VERSION, self.namespace, "flowruns")
        return sorted(item["metadata"]["name"] for item in listed["items"])

    def delete_all(self, timeout: float = 30) -> None:
        """Delete every FlowRun and Deployment here and wait until they are gone."""
        for plural in ("deployments", "flowruns"):
            with contextlib.suppress(ApiException):
                self.api.delete_collection_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, plural
                )

        def gone() -> bool:
            left = self.api.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "flowruns"
            )
            return not left["items"]

        with contextlib.suppress(AssertionError):  # best effort: a teardown must not fail
            poll(gone, timeout, "FlowRuns to be deleted")

    def delete(self, name: str) -> None:
        self.api.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, "flowruns", name)

    def flow_spec(self, entry: str) -> dict[str, Any]:
        if self.image:
            return {
                "image": self.image,
                "entrypoint": f"{self.flows_dir}/{entry}",
                "pod": {"imagePullPolicy": "Never"},  # loaded into the node's containerd
            }
        return {"image": EXAMPLE_IMAGE, "entrypoint": f"{self.flows_dir}/{entry}"}

    def sleeper(self, name: str, seconds: float, **parameters: Any) -> dict[str, Any]:
        """A FlowRun of `cluster_flows.py:sleeps`: a run that stays Running for a while."""
        body = self.manifest(
            "flowrun-hello",
            flow=self.flow_spec("cluster_flows.py:sleeps"),
            parameters={"seconds": seconds, **parameters},
        )
        return self.create(body, name=name)

    def wait_running(self, name: str, operator: OperatorProcess | None = None) -> dict[str, Any]:
        return self.wait(name, lambda s: s.get("state") == "Running", 60, "Running", operator)

    def create(self, body: dict[str, Any], name: str | None = None) -> dict[str, Any]:
        if name:
            body["metadata"]["name"] = name
        created: dict[str, Any] = self.api.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "flowruns", body
        )
        return created

    def get(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.api.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "flowruns", name
        )
        return found

    def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        self.api.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "flowruns", name, {"spec": spec}
        )

    def status(self, name: str) -> dict[str, Any]:
        return self.get(name).get("status") or {}

    def wait(
        self,
        name: str,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float = 90,
        what: str = "",
        operator: OperatorProcess | None = None,
    ) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        def reached() -> dict[str, Any] | None:
            seen["status"] = status = self.status(name)
            return status if predicate(status) else None

        try:
            found: dict[str, Any] = poll(reached, timeout, "", operator, interval=0.1)
        except AssertionError as error:
            raise AssertionError(
                f"FlowRun {name} did not reach {what or 'the expected status'}; "
                f"status={seen.get('status')}\n{error}"
            ) from None
        return found

    def wait_final(
        self, name: str, timeout: float = 90, operator: OperatorProcess | None = None
    ) -> dict[str, Any]:
        return self.wait(
            name, lambda s: s.get("state") in FINAL, timeout, "a final state", operator
        )

    def pods(self, name: str) -> list[client.V1Pod]:
        selector = f"headrace.dev/flow-run={name}"
        return list(self.core.list_namespaced_pod(self.namespace, label_selector=selector).items)
