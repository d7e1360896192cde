"""The Helm chart on the real control plane: install as the README says, then run the operator
with exactly the chart's RBAC (a kubeconfig for its ServiceAccount) and see flows complete on
the real node, their results in S3.

The operator under test runs the chart Deployment's own `args`, `env` and `envFrom` (the
storage Secret) as a host process, so its metrics and health ports can be read here. The
chart's own operator pod lands on the real node too, but its image (`headrace:0.1.0`, the
README's tag) is not there and cannot be pulled, so it never starts; test_helm_realnode_e2e
runs that pod for real.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from operator_harness import FlowRuns, free_port, operator_storage, poll, scrape_metrics

from cluster.fixtures import Cluster, RealCluster
from cluster.helpers import wait_for, wait_namespace_gone
from cluster.s3 import use_storage_env
from headrace.results import load_result
from shipping import (
    CHART,
    commands,
    fenced_blocks,
    helm,
    kubectl_binary,
    readme_section,
    render,
)
from test_argocd_health import argo_health

pytestmark = pytest.mark.cluster

# What an RBAC denial looks like in the API's answer (not, say, a terminating namespace).
RBAC_DENIAL = re.compile(r'forbidden: User "system:serviceaccount:[^"]+" cannot', re.I)


@dataclass
class ChartOperator:
    """`headrace <the Deployment's args>` with its env, as the chart's ServiceAccount."""

    process: subprocess.Popen[bytes]
    log_path: Path
    metrics_port: int
    health_port: int

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metrics(self) -> dict[str, list[Any]]:
        """Samples of every metric family, by family name."""
        return scrape_metrics(self.metrics_port)

    def healthz(self) -> int:
        url = f"http://127.0.0.1:{self.health_port}/healthz"
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def secret_env(cluster: Cluster, namespace: str, name: str) -> dict[str, str]:
    """What a container's `envFrom: secretRef` gives it: the Secret's keys as variables."""
    data = cluster.core.read_namespaced_secret(name, namespace).data or {}
    return {key: base64.b64decode(value).decode() for key, value in data.items()}


@contextlib.contextmanager
def chart_operator(
    cluster: Cluster, namespace: str, release: str, workdir: Path
) -> Iterator[ChartOperator]:
    """Run the operator the chart's Deployment describes, with its ServiceAccount's token."""
    apps = client.AppsV1Api(cluster.api_client)
    (deployment,) = apps.list_namespaced_deployment(
        namespace, label_selector=f"app.kubernetes.io/instance={release}"
    ).items
    pod = deployment.spec.template.spec
    (container,) = pod.containers
    kubeconfig = cluster.service_account_kubeconfig(
        namespace, pod.service_account_name, workdir / "operator.kubeconfig"
    )
    metrics_port, health_port = free_port(), free_port()
    # Only what cannot be the same on this machine is changed: the ports (free ones), and
    # how often progress is read (the tests wait less).
    args = [
        re.sub(r":\d+/healthz$", f":{health_port}/healthz", arg) for arg in container.args or []
    ]
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("HEADRACE_", "KUBECONFIG", "AWS_"))
    }
    for source in container.env_from or []:
        env.update(secret_env(cluster, namespace, source.secret_ref.name))
    env.update({item.name: item.value for item in container.env or []})
    assert env["HEADRACE_METRICS_PORT"] and env["HEADRACE_FLOW_SERVICE_ACCOUNT"]
    assert env["HEADRACE_DEFAULT_RESULT_STORAGE"].startswith("s3://"), "results in the bucket"
    env.update(
        KUBECONFIG=str(kubeconfig),
        HEADRACE_METRICS_PORT=str(metrics_port),
        HEADRACE_PROGRESS_INTERVAL="0.5",
    )
    log_path = workdir / "operator.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "headrace", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    operator = ChartOperator(process, log_path, metrics_port, health_port)
    try:
        yield operator
    finally:
        operator.stop()


PLACEHOLDER_BUCKET = "s3://BUCKET/headrace"  # the README's, as each user's own bucket


def install_commands(storage: dict[str, str], bucket: str) -> list[list[str]]:
    """The README's install commands, word for word: the storage Secret's `kubectl create`s
    and the `helm` commands, with this cluster's S3 credentials and bucket in place of the
    placeholders. Not its `kubectl wait` for the operator: that pod's image is not here."""
    blocks = fenced_blocks(readme_section("Install with Helm"), "bash")
    found = [shlex.split(line) for block in blocks for line in commands(block)]
    found = [w for w in found if w[0] == "helm" or w[:2] == ["kubectl", "create"]]
    assert [w[0] for w in found].count("helm") >= 2 and ["kubectl", "create"] in [
        w[:2] for w in found
    ], found
    filled = []
    for words in found:
        line = []
        for word in words:
            if word.startswith("--from-literal="):
                name = word.removeprefix("--from-literal=").split("=", 1)[0]
                word = f"--from-literal={name}={storage[name]}"
            line.append(word.replace(PLACEHOLDER_BUCKET, bucket))
        filled.append(line)
    assert any(bucket in word for line in filled for word in line), "the README names a bucket"
    return filled


def flow_image(real_cluster: RealCluster) -> str:
    return real_cluster.node.node_images.flows.ref


def delete_flowrun(flowruns: FlowRuns, name: str, operator: ChartOperator) -> None:
    """Delete while the operator runs, so its finalizer goes and the namespace can go too."""
    try:
        flowruns.delete(name)
    except ApiException as error:
        if error.status != 404:  # already going (history limit, garbage collection)
            raise

    def gone() -> bool:
        try:
            flowruns.get(name)
        except ApiException as error:
            return error.status == 404
        return False

    wait_for(gone, 30, f"FlowRun {name} deleted; operator log:\n{operator.log()[-2000:]}")


def test_readme_install_then_a_flow_runs_with_exactly_the_charts_rbac(
    cluster: Cluster, real_cluster: RealCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "helm"
    namespace = "headrace-system"
    installed = False
    storage = real_cluster.storage_env()
    bucket = real_cluster.s3.url("readme-install")
    try:
        for words in install_commands(storage, bucket):
            if words[0] == "kubectl":
                kubectl = [str(kubectl_binary()), f"--kubeconfig={cluster.kubeconfig}"]
                subprocess.run([*kubectl, *words[1:]], check=True, capture_output=True)
                continue
            helm(*words[1:], home=home, kubeconfig=cluster.kubeconfig)
            installed = installed or words[1] == "install"
        assert installed
        extensions = client.ApiextensionsV1Api(cluster.api_client)
        for name in ("flowruns.headrace.dev", "deployments.headrace.dev"):
            conditions = extensions.read_custom_resource_definition(name).status.conditions
            assert any(c.type == "Established" and c.status == "True" for c in conditions)

        with chart_operator(cluster, namespace, "headrace", tmp_path) as operator:
            flowruns = FlowRuns(cluster.api_client, namespace, image=flow_image(real_cluster))
            flowruns.create(flowruns.manifest("flowrun-hello"))
            status = flowruns.wait("hello", lambda s: s.get("state") == "Completed", 90)
            assert status["progress"]["counts"] == {"Completed": 5}
            assert status["resultLocation"].startswith(bucket + "/")
            use_storage_env(monkeypatch, storage)  # read back as a user would
            assert load_result(status["resultLocation"]) == {
                "greeting": "hello cluster",
                "total": 20,
            }
            (pod,) = flowruns.pods("hello")
            assert pod.spec.service_account_name == "headrace-flow"
            assert argo_health(flowruns.get("hello"))[0] == "Healthy"

            assert operator.healthz() == 200
            samples = operator.metrics()
            finished = {
                (s.labels["state"], s.labels["namespace"]): s.value
                for s in samples["headrace_flowruns_finished"]
                if s.name.endswith("_total")
            }
            assert finished == {("Completed", namespace): 1.0}
            latency = {
                s.name: s.value for s in samples["headrace_flowrun_pod_creation_latency_seconds"]
            }
            assert latency["headrace_flowrun_pod_creation_latency_seconds_count"] == 1
            assert latency["headrace_flowrun_pod_creation_latency_seconds_sum"] < 30
            durations = samples["headrace_flowrun_duration_seconds"]
            assert any(s.name.endswith("_count") and s.value == 1 for s in durations)
            in_flight = {s.labels["state"]: s.value for s in samples["headrace_flowruns_in_flight"]}
            assert "Running" in in_flight and sum(in_flight.values()) == 0  # was, and is no more
            api_calls = {
                (s.labels["method"], s.labels["resource"])
                for s in samples["headrace_kube_api_request_duration_seconds"]
                if s.name.endswith("_count") and s.value > 0
            }
            assert {("POST", "pods"), ("PATCH", "flowruns/status"), ("POST", "events")} <= api_calls
            assert not RBAC_DENIAL.search(operator.log()), operator.log()[-3000:]
            delete_flowrun(flowruns, "hello", operator)
    finally:
        if installed:
            helm(
                "uninstall",
                "headrace",
                "--namespace",
                namespace,
                home=home,
                kubeconfig=cluster.kubeconfig,
                check=False,
            )
            with contextlib.suppress(ApiException):
                cluster.core.delete_namespace(namespace)
            wait_namespace_gone(cluster.core, namespace)  # test_helm_realnode_e2e's too


def access(cluster: Cluster, user: str, verb: str, resource: str, namespace: str) -> bool:
    """SubjectAccessReview: may `user` do `verb` on `resource` (group/plural[/sub]) there?"""
    group, _, rest = resource.partition("/")
    plural, _, subresource = rest.partition("/")
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=user,
            groups=["system:serviceaccounts", "system:authenticated"],
            resource_attributes=client.V1ResourceAttributes(
                group=group,
                resource=plural,
                subresource=subresource or None,
                verb=verb,
                namespace=namespace,
            ),
        )
    )
    answer = client.AuthorizationV1Api(cluster.api_client).create_subject_access_review(review)
    return bool(answer.status.allowed)


def test_watch_namespaces_confines_the_operator_and_flow_pods_get_no_api_rights(
    cluster: Cluster, real_cluster: RealCluster, namespace: str, tmp_path: Path
) -> None:
    home = tmp_path / "helm"
    release = f"hr-{namespace.rsplit('-', 1)[-1]}"
    storage = operator_storage(cluster, namespace)  # the Secret, and where it leads
    helm(
        "install", release, str(CHART), "--namespace", namespace,
        "--set", f"watchNamespaces={{{namespace}}}", "--set", "replicas=0",
        "--set", f"config.defaultResultStorage={storage['HEADRACE_DEFAULT_RESULT_STORAGE']}",
        "--set", f"config.resultStorageSecret={storage['HEADRACE_DEFAULT_STORAGE_SECRET']}",
        home=home, kubeconfig=cluster.kubeconfig,
    )  # fmt: skip
    try:
        with chart_operator(cluster, namespace, release, tmp_path) as operator:
            flowruns = FlowRuns(cluster.api_client, namespace, image=flow_image(real_cluster))
            flowruns.create(flowruns.manifest("flowrun-hello"))
            status = flowruns.wait("hello", lambda s: s.get("state") == "Completed", 90)
            assert status["attempts"][0]["exitCode"] == 0
            delete_flowrun(flowruns, "hello", operator)

            # A schedule with a history limit: the operator creates FlowRuns, deletes the
            # older ended ones and writes the Deployment's status, all with the chart's RBAC.
            flowruns.deployment(
                "ticker",
                schedule={"intervalSeconds": 2},
                successfulRunsHistoryLimit=1,
                parameters={"n": 1},
            )
            seen: set[str] = set()

            def one_run_came_and_went() -> bool:
                names = set(flowruns.names())
                seen.update(names)
                return len(seen) >= 2 and bool(seen - names)

            wait_for(one_run_came_and_went, 60, f"scheduled runs; log:\n{operator.log()[-2000:]}")
            assert flowruns.deployment_status("ticker").get("lastScheduleTime")
            assert not RBAC_DENIAL.search(operator.log()), operator.log()[-3000:]
            flowruns.api.delete_namespaced_custom_object(
                "headrace.dev", "v1alpha1", namespace, "deployments", "ticker"
            )

            def deployment_gone() -> bool:
                try:
                    flowruns.deployment_status("ticker")
                except ApiException as error:
                    return error.status == 404
                return False

            wait_for(deployment_gone, 30, "the Deployment deleted (its finalizer removed)")
            for name in flowruns.names():
                delete_flowrun(flowruns, name, operator)

        operator_user = f"system:serviceaccount:{namespace}:{release}-headrace"
        assert access(cluster, operator_user, "create", "/pods", namespace)
        assert access(cluster, operator_user, "patch", "headrace.dev/flowruns/status", namespace)
        assert not access(cluster, operator_user, "list", "/pods", "default")
        assert not access(cluster, operator_user, "list", "headrace.dev/flowruns", "default")
        assert not access(cluster, operator_user, "get", "/secrets", namespace)

        flow_user = f"system:serviceaccount:{namespace}:headrace-flow"
        for verb, resource in [
            ("get", "/secrets"),
            ("list", "/secrets"),
            ("get", "headrace.dev/flowruns"),
            ("list", "headrace.dev/flowruns"),
            ("list", "/pods"),
        ]:
            assert not access(cluster, flow_user, verb, resource, namespace), (verb, resource)
        # And with a real token for the flow account: the API server says 403.
        flow_api = cluster.service_account_client(namespace, "headrace-flow")
        for call in (
            lambda: client.CoreV1Api(flow_api).list_namespaced_secret(namespace),
            lambda: client.CustomObjectsApi(flow_api).list_namespaced_custom_object(
                "headrace.dev", "v1alpha1", namespace, "flowruns"
            ),
        ):
            with pytest.raises(ApiException) as denied:
                call()
            assert denied.value.status == 403
    finally:
        helm("uninstall", release, "--namespace", namespace, home=home,
             kubeconfig=cluster.kubeconfig, check=False)  # fmt: skip


def test_users_with_kubernetes_edit_or_view_can_use_headrace(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """The chart's headrace-edit/-view fold into the built-in edit and view roles."""
    docs = render(tmp_path / "helm", "rbac.userRoles=true")
    roles = [d for d in docs if d["metadata"]["name"] in {"headrace-view", "headrace-edit"}]
    rbac = client.RbacAuthorizationV1Api(cluster.api_client)
    for role in roles:
        rbac.create_cluster_role(role)
    try:
        for user, builtin in (("carol", "edit"), ("dave", "view")):
            rbac.create_namespaced_role_binding(
                namespace,
                {
                    "metadata": {"name": user},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": builtin,
                    },
                    "subjects": [{"kind": "User", "name": user}],
                },
            )
        poll(
            lambda: access(cluster, "carol", "create", "headrace.dev/flowruns", namespace),
            30,
            "edit to include creating FlowRuns (the aggregation controller)",
        )
        assert access(cluster, "carol", "delete", "headrace.dev/deployments", namespace)
        # `view` is aggregated on its own, and may lag behind `edit` (seen once in CI).
        poll(
            lambda: access(cluster, "dave", "list", "headrace.dev/flowruns", namespace),
            30,
            "view to include listing FlowRuns (the aggregation controller)",
        )
        assert not access(cluster, "dave", "create", "headrace.dev/flowruns", namespace)
        # Neither may pick images, ServiceAccounts or Secrets for flows: that stays an admin's.
        assert not access(cluster, "carol", "use", "headrace.dev/images", namespace)
    finally:
        for role in roles:
            with contextlib.suppress(ApiException):
                rbac.delete_cluster_role(role["metadata"]["name"])
