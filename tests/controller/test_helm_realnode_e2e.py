"""The README's "Install with Helm", word for word, on a real node, the operator in-cluster.

Every command of that section's bash blocks runs as written (kubectl, helm, headrace), with
only what a user must fill in for their own cluster: the storage's credentials and bucket,
where the images are (the project and flow images loaded into the node's containerd, so
`pullPolicy=Never`), and where pods reach the API server. That last one is this test
cluster's: there is no kube-proxy, so the `kubernetes` Service's ClusterIP leads nowhere;
the apiserver listens on the node's bridge address too (in its certificate), and the
operator pod is pointed there with `extraEnv` KUBERNETES_SERVICE_HOST/PORT, which win over
the ones the kubelet injects. Everything else is the chart's: the operator pod made by its
Deployment from the project image, its ServiceAccount token and RBAC, uid 65532, a
read-only root filesystem, probes on kopf's /healthz.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from prometheus_client.parser import text_string_to_metric_families

from cluster.fixtures import RealCluster
from cluster.helpers import wait_for, wait_namespace_gone
from cluster.s3 import use_storage_env
from headrace.results import load_result
from shipping import REPO, commands, fenced_blocks, helm, kubectl_binary, readme_section

pytestmark = pytest.mark.cluster

NAMESPACE = "headrace-system"
RELEASE = "headrace"
MANIFEST = "examples/manifests/flowrun-hello.yaml"
# The README's placeholders for what each user has: storage credentials, bucket, endpoint.
PLACEHOLDER_BUCKET = "s3://BUCKET/headrace"


def readme_steps() -> list[list[str]]:
    """Every command of the section's bash blocks, in order, split into words."""
    blocks = fenced_blocks(readme_section("Install with Helm"), "bash")
    steps = [shlex.split(line) for block in blocks for line in commands(block)]
    assert steps, "no commands in the README's Install with Helm section"
    return steps


def fill_in(words: list[str], real: RealCluster, bucket: str, manifest: Path) -> list[str]:
    """One README command with the user's own values in place of the placeholders."""
    filled = []
    image = real.node.node_images.project.ref
    repository, _, tag = image.rpartition(":")
    storage = real.storage_env()
    for word in words:
        if word.startswith("--from-literal="):
            name = word.removeprefix("--from-literal=").split("=", 1)[0]
            assert name in storage, f"the README asks for {name}, which S3 storage does not use"
            word = f"--from-literal={name}={storage[name]}"
        elif word.endswith(f"={PLACEHOLDER_BUCKET}"):
            word = word.replace(PLACEHOLDER_BUCKET, bucket)
        elif word == MANIFEST:
            word = str(manifest)
        filled.append(word)
    if words[:2] == ["kubectl", "create"] and "secret" in words:
        literals = [w.removeprefix("--from-literal=") for w in words if w.startswith("--from-")]
        given = {literal.split("=", 1)[0] for literal in literals}
        assert given >= set(storage), f"the README's Secret lacks {set(storage) - given}"
    if words[:2] == ["helm", "install"]:
        host, port = real.apiserver_for_pods()
        filled += [
            "--set", f"image.repository={repository}",
            "--set", f"image.tag={tag}",
            "--set", "image.pullPolicy=Never",  # loaded into the node, no registry
            "--set", "extraEnv[0].name=KUBERNETES_SERVICE_HOST",
            "--set-string", f"extraEnv[0].value={host}",
            "--set", "extraEnv[1].name=KUBERNETES_SERVICE_PORT",
            "--set-string", f"extraEnv[1].value={port}",
        ]  # fmt: skip
    return filled


def flow_manifest(real: RealCluster, directory: Path) -> Path:
    """examples/manifests/flowrun-hello.yaml with its `image` set to the flow image (loaded
    into the node: `imagePullPolicy: Never`), edited as text so the rest is the file as is
    (a YAML round trip would change how kubectl reads it: a bare `n` key is false to it)."""
    text = (REPO / MANIFEST).read_text()
    image_line = "    image: ghcr.io/headrace/examples:0.1.0\n"
    assert text.count(image_line) == 1, text
    flows = real.node.node_images.flows.ref
    text = text.replace(image_line, f"    image: {flows}\n    pod:\n      imagePullPolicy: Never\n")
    path = directory / "flowrun-hello.yaml"
    path.write_text(text)
    return path


def operator_pods(core: client.CoreV1Api) -> list[client.V1Pod]:
    selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=operator"
    return list(core.list_namespaced_pod(NAMESPACE, label_selector=selector).items)


def diagnosis(core: client.CoreV1Api) -> str:
    """What the operator pods and the namespace's events say, for a failure message."""
    out = []
    with contextlib.suppress(ApiException):
        for pod in core.list_namespaced_pod(NAMESPACE).items:
            statuses = pod.status.container_statuses or []
            out.append(f"pod {pod.metadata.name} {pod.status.phase}: {statuses}")
            with contextlib.suppress(ApiException):
                log = core.read_namespaced_pod_log(pod.metadata.name, NAMESPACE, tail_lines=40)
                out.append(f"--- log of {pod.metadata.name}\n{log}")
        for event in core.list_namespaced_event(NAMESPACE).items[-30:]:
            out.append(f"event {event.involved_object.name}: {event.reason} {event.message}")
    return "\n".join(out)


class Steps:
    """Runs README commands: kubectl and helm against the cluster, headrace as a user would."""

    def __init__(self, real: RealCluster, workdir: Path) -> None:
        self.real = real
        self.kubeconfig = real.cluster.kubeconfig
        self.home = workdir / "helm"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("HEADRACE_", "AWS_"))},
            "KUBECONFIG": str(self.kubeconfig),
            **real.storage_env(),  # `headrace logs/graph` read the record in the bucket
        }
        self.outputs: list[tuple[list[str], str]] = []

    def run(self, words: list[str]) -> str:
        if words[:2] == ["docker", "build"]:
            # The fixture built this Dockerfile (with buildah, no Docker here) into the
            # project image and loaded it into the node: the image the chart is given.
            assert words[-1] == ".", words
            return ""
        if words[0] == "helm":
            out = helm(*words[1:], home=self.home, kubeconfig=self.kubeconfig).stdout
        else:
            program = {
                "kubectl": [str(kubectl_binary())],
                "headrace": [sys.executable, "-m", "headrace"],
            }[words[0]]
            result = subprocess.run(
                [*program, *words[1:]],
                cwd=REPO,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=330,  # past the README's `kubectl wait --timeout=5m`
                check=False,
            )
            out = result.stdout
            if result.returncode != 0:
                core = self.real.cluster.core
                raise AssertionError(
                    f"{shlex.join(words)} exited {result.returncode}:\n{result.stdout}\n"
                    f"{result.stderr}\n{diagnosis(core)}"
                )
        self.outputs.append((words, out))
        return out


@pytest.fixture
def steps(real_cluster: RealCluster, tmp_path: Path) -> Iterator[Steps]:
    """The README's runner; afterwards the FlowRun goes (while its operator still runs, so
    the finalizer is removed), then the release, its operator pod and the namespace."""
    runner = Steps(real_cluster, tmp_path)
    core = real_cluster.cluster.core
    api = client.CustomObjectsApi(real_cluster.cluster.api_client)
    try:
        yield runner
    finally:
        with contextlib.suppress(ApiException):
            api.delete_namespaced_custom_object(
                "headrace.dev", "v1alpha1", NAMESPACE, "flowruns", "hello"
            )

        def flowrun_gone() -> bool:
            try:
                api.get_namespaced_custom_object(
                    "headrace.dev", "v1alpha1", NAMESPACE, "flowruns", "hello"
                )
            except ApiException as error:
                return error.status == 404
            return False

        with contextlib.suppress(AssertionError):
            wait_for(flowrun_gone, 30, "FlowRun hello deleted")
        if not flowrun_gone():  # no operator to remove the finalizer: do it, or the ns stays
            with contextlib.suppress(ApiException):
                api.patch_namespaced_custom_object(
                    "headrace.dev", "v1alpha1", NAMESPACE, "flowruns", "hello",
                    {"metadata": {"finalizers": None}},
                )  # fmt: skip
        helm("uninstall", RELEASE, "--namespace", NAMESPACE, home=runner.home,
             kubeconfig=runner.kubeconfig, check=False)  # fmt: skip
        # The operator watches every namespace: it must be gone before other tests run
        # their own operator on this cluster.
        wait_for(lambda: not operator_pods(core), 60, "the operator pod gone after uninstall")
        with contextlib.suppress(ApiException):
            core.delete_namespace(NAMESPACE)
        wait_namespace_gone(core, NAMESPACE)  # test_chart_e2e installs there too


# The session's real cluster may start here: images built cold take minutes.
@pytest.mark.timeout(900)
def test_readme_helm_install_runs_a_flow_with_the_operator_in_cluster(
    real_cluster: RealCluster, steps: Steps, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = real_cluster.s3.url("helm-readme")
    manifest = flow_manifest(real_cluster, tmp_path)
    core = real_cluster.cluster.core
    timings: dict[str, float] = {}
    started: dict[str, float] = {}
    location = ""
    for words in readme_steps():
        filled = fill_in(words, real_cluster, bucket, manifest)
        if words[:2] in (["helm", "install"], ["kubectl", "apply"]):
            started[words[0]] = time.monotonic()
        out = steps.run(filled)
        if words[:2] == ["kubectl", "wait"] and "deployment/headrace" in words:
            timings["helm install -> operator Available"] = time.monotonic() - started["helm"]
        if words[:2] == ["kubectl", "wait"] and "flowrun/hello" in words:
            timings["apply -> Succeeded"] = time.monotonic() - started["kubectl"]
        if "jsonpath={.status.resultLocation}" in words:
            location = out.strip()
    print(f"\nREADME Helm path on the real node: {timings}")
    assert set(timings) == {"helm install -> operator Available", "apply -> Succeeded"}

    # The operator ran in-cluster as the chart made it: its pod, its account, its limits.
    (pod,) = operator_pods(core)
    assert pod.spec.node_name == real_cluster.node.name
    assert pod.spec.service_account_name == "headrace"
    (container,) = pod.spec.containers
    assert container.image == real_cluster.node.node_images.project.ref
    assert container.security_context.read_only_root_filesystem is True
    assert pod.spec.security_context.run_as_user == 65532
    ready = {c.type: c.status for c in pod.status.conditions}
    assert ready["Ready"] == "True", diagnosis(core)
    log = core.read_namespaced_pod_log(pod.metadata.name, NAMESPACE)
    # Its metrics, scraped from the pod's address as Prometheus does through the Service's
    # endpoints (the host is on the pod bridge; there is no kube-proxy for the ClusterIP).
    url = f"http://{pod.status.pod_ip}:9090/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        families = {f.name: f for f in text_string_to_metric_families(response.read().decode())}
    finished = {
        (s.labels["state"], s.labels["namespace"]): s.value
        for s in families["headrace_flowruns_finished"].samples
        if s.name.endswith("_total")
    }
    assert finished == {("Completed", NAMESPACE): 1.0}
    assert "using the in-cluster service account" in log, log[-3000:]
    assert "forbidden" not in log.lower(), log[-3000:]

    # The result: where the status says, in the bucket, readable with the storage's env.
    assert location.startswith(f"{bucket}/"), location
    use_storage_env(
        monkeypatch, real_cluster.storage_env()
    )  # this test reads results as a user would
    assert load_result(location) == {"greeting": "hello cluster", "total": 20}
    (flow_pod,) = [
        p for p in core.list_namespaced_pod(NAMESPACE).items if p.metadata.name.startswith("hello-")
    ]
    assert flow_pod.spec.node_name == real_cluster.node.name
    assert flow_pod.spec.service_account_name == "headrace-flow"

    # `headrace logs` and `headrace graph` found the run's record through its status.
    shown = {words[1]: out for words, out in steps.outputs if words[0] == "headrace"}
    assert set(shown) == {"logs", "graph"}, list(shown)
    lines = [line for line in shown["logs"].splitlines() if line.strip()]
    assert any("hello, cluster" in line for line in lines), shown["logs"]
    assert "Completed" in shown["graph"] and "double" in shown["graph"], shown["graph"]

    ui_in_cluster(real_cluster, steps)


def service_account_token(core: client.CoreV1Api, name: str, view: bool) -> str:
    """The README's `kubectl create serviceaccount`, `rolebinding --clusterrole=headrace-view`
    (when `view`) and `create token`, through the API."""
    meta = client.V1ObjectMeta(name=name)
    core.create_namespaced_service_account(NAMESPACE, client.V1ServiceAccount(metadata=meta))
    if view:
        rbac = client.RbacAuthorizationV1Api(core.api_client)
        rbac.create_namespaced_role_binding(
            NAMESPACE,
            client.V1RoleBinding(
                metadata=client.V1ObjectMeta(name=f"{name}-view"),
                role_ref=client.V1RoleRef(
                    api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="headrace-view"
                ),
                subjects=[
                    client.RbacV1Subject(kind="ServiceAccount", name=name, namespace=NAMESPACE)
                ],
            ),
        )
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[]))
    token: str = core.create_namespaced_service_account_token(name, NAMESPACE, request).status.token
    return token


def ui_in_cluster(real: RealCluster, steps: Steps) -> None:
    """`--set ui.enabled=true` on the same release: the chart's UI pod, with its own read-only
    account, shows the run to a token that may list FlowRuns there, reads its record and result
    from the bucket with the storage Secret, and lets no one else in. Reached at the pod's
    address, as the Service's endpoint would be (no kube-proxy here, so the README's
    port-forward is the one step not taken as written)."""
    core = real.cluster.core
    host, port = real.apiserver_for_pods()
    helm(
        "upgrade", RELEASE, "charts/headrace", "--namespace", NAMESPACE, "--reuse-values",
        "--set", "ui.enabled=true",
        "--set", "ui.extraEnv[0].name=KUBERNETES_SERVICE_HOST",
        "--set-string", f"ui.extraEnv[0].value={host}",
        "--set", "ui.extraEnv[1].name=KUBERNETES_SERVICE_PORT",
        "--set-string", f"ui.extraEnv[1].value={port}",
        home=steps.home, kubeconfig=steps.kubeconfig,
    )  # fmt: skip
    selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=ui"

    def ready_ui() -> client.V1Pod | None:
        for pod in core.list_namespaced_pod(NAMESPACE, label_selector=selector).items:
            conditions = {c.type: c.status for c in pod.status.conditions or []}
            if conditions.get("Ready") == "True":
                return pod
        return None

    pod = wait_for(ready_ui, 300, "the UI pod Ready")  # its image starts slowly on a busy node
    assert pod.spec.service_account_name == "headrace-ui"
    base = f"http://{pod.status.pod_ip}:8420"
    alice = service_account_token(core, "alice", view=True)
    mallory = service_account_token(core, "mallory", view=False)

    def get(path: str, token: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(f"{base}{path}", headers=headers, timeout=30)

    assert get("/api/flowruns", None).status_code == 401
    assert get(f"/api/flowruns/{NAMESPACE}/hello", mallory).status_code == 403
    runs = get(f"/api/flowruns?namespace={NAMESPACE}", alice)
    assert runs.status_code == 200, runs.text
    assert {(r["name"], r["state"]) for r in runs.json()["items"]} == {("hello", "Completed")}
    graph = get(f"/api/flowruns/{NAMESPACE}/hello/graph", alice)
    assert graph.status_code == 200, graph.text
    assert "double" in " ".join(graph.json()["tasks"]["name"]), graph.text[:2000]
    result = get(f"/api/flowruns/{NAMESPACE}/hello/results/file?id=flow", alice)
    assert result.status_code == 200, result.text
    assert "hello cluster" in result.text
