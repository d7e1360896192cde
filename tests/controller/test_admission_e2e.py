"""The chart's admission policy on the real API server: a FlowRun gives no more than its
creator already has. Two users: alice may only create FlowRuns and Deployments; bob has also
been granted a ServiceAccount, a Secret, a ConfigMap and any image."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from operator_harness import GROUP, VERSION, FlowRuns, poll

from cluster.fixtures import Cluster
from shipping import CHART, helm

pytestmark = pytest.mark.cluster

ALLOWED = "registry.example.com/flows/"


def policy_documents(home: Path, namespace: str) -> list[dict[str, Any]]:
    out = helm(
        "template",
        "headrace",
        str(CHART),
        "--namespace",
        "headrace-system",
        "--show-only",
        "templates/admission.yaml",
        "--set",
        f"admission.allowedImages={{{ALLOWED}}}",
        "--set",
        f"watchNamespaces={{{namespace}}}",  # binds the policy to this test's namespace only
        home=home,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.fixture
def policy(crds: Cluster, namespace: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    api = client.AdmissionregistrationV1Api(crds.api_client)
    policy_doc, binding_doc = policy_documents(tmp_path, namespace)
    api.create_validating_admission_policy(policy_doc)
    api.create_validating_admission_policy_binding(binding_doc)
    try:
        yield policy_doc
    finally:
        # No operator runs here: delete what the users made, or a cluster-wide operator of a
        # later test would find them in this namespace while it is being deleted.
        FlowRuns(crds.api_client, namespace).delete_all()
        name = policy_doc["metadata"]["name"]
        with contextlib.suppress(ApiException):
            api.delete_validating_admission_policy_binding(name)
        with contextlib.suppress(ApiException):
            api.delete_validating_admission_policy(name)


def grant(cluster: Cluster, namespace: str, user: str, rules: list[dict[str, Any]]) -> Any:
    """A Role with `rules` bound to ServiceAccount `user`; returns the user's CustomObjectsApi."""
    rbac = client.RbacAuthorizationV1Api(cluster.api_client)
    rbac.create_namespaced_role(namespace, {"metadata": {"name": user}, "rules": rules})
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": user},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": user},
            "subjects": [{"kind": "ServiceAccount", "name": user, "namespace": namespace}],
        },
    )
    return client.CustomObjectsApi(cluster.service_account_client(namespace, user))


CREATE_RUNS = {
    "apiGroups": [GROUP],
    "resources": ["flowruns", "deployments"],
    "verbs": ["create", "get"],
}
BOB_EXTRA = [
    {
        "apiGroups": [""],
        "resources": ["serviceaccounts"],
        "resourceNames": ["robot"],
        "verbs": ["use"],
    },
    {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["db"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cfg"], "verbs": ["get"]},
    {"apiGroups": [GROUP], "resources": ["images"], "verbs": ["use"]},
]


def flowrun(name: str, image: str = ALLOWED + "etl:1", **pod: Any) -> dict[str, Any]:
    flow: dict[str, Any] = {"image": image, "entrypoint": "/opt/flows/etl.py:etl"}
    if pod:
        flow["pod"] = pod
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "FlowRun",
        "metadata": {"name": name},
        "spec": {"flow": flow},
    }


def deployment(name: str, **pod: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"image": ALLOWED + "etl:1", "entrypoint": "/opt/flows/etl.py:etl", "pod": pod},
    }


def env_from(kind: str, name: str) -> list[dict[str, Any]]:
    return [{"name": "X", "valueFrom": {kind: {"name": name, "key": "k"}}}]


def create(api: Any, namespace: str, body: dict[str, Any]) -> str | None:
    """Create as that user: None if allowed, else the API server's message."""
    plural = {"FlowRun": "flowruns", "Deployment": "deployments"}[body["kind"]]
    try:
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)
    except ApiException as error:
        assert error.status in (403, 422), error.body
        return str(json.loads(error.body)["message"])
    return None


def test_a_flowrun_gives_its_creator_no_rights_they_do_not_have(
    crds: Cluster, namespace: str, policy: dict[str, Any]
) -> None:
    alice = grant(crds, namespace, "alice", [CREATE_RUNS])
    bob = grant(crds, namespace, "bob", [CREATE_RUNS, *BOB_EXTRA])
    risky = {
        "as-robot": (
            flowrun("as-robot", serviceAccountName="robot"),
            'spec.flow.pod.serviceAccountName: running as ServiceAccount robot needs the "use" '
            "verb on serviceaccounts/robot",
        ),
        "reads-db": (
            flowrun("reads-db", env=env_from("secretKeyRef", "db")),
            'spec.flow.pod.env: reading Secret db needs "get" on it',
        ),
        "secret-block": (  # Prefect's Secret.load("db") in the flow reads this variable
            flowrun(
                "secret-block",
                env=[
                    {
                        "name": "HEADRACE_BLOCK_SECRET__DB",
                        "valueFrom": {"secretKeyRef": {"name": "db", "key": "k"}},
                    }
                ],
            ),
            'spec.flow.pod.env: reading Secret db needs "get" on it',
        ),
        "reads-cfg": (
            flowrun("reads-cfg", env=env_from("configMapKeyRef", "cfg")),
            'spec.flow.pod.env: reading ConfigMap cfg needs "get" on it',
        ),
        "storage-secret": (
            {
                **flowrun("storage-secret"),
                "spec": {**flowrun("x")["spec"], "resultStorageSecret": "db"},
            },
            'spec.resultStorageSecret: reading Secret db needs "get" on it',
        ),
        "any-image": (
            flowrun("any-image", image="evil.example.com/miner:1"),
            'spec.flow.image: evil.example.com/miner:1 is not under an allowed prefix (registry.example.com/flows/); running it needs the "use" verb on images.headrace.dev',
        ),
        "deploy-robot": (
            deployment("deploy-robot", serviceAccountName="robot"),
            "spec.pod.serviceAccountName: running as ServiceAccount robot",
        ),
    }
    # The policy is loaded asynchronously: wait until it refuses a probe.
    probe = flowrun("", serviceAccountName="robot")
    probe["metadata"] = {"generateName": "probe-"}
    poll(lambda: create(alice, namespace, probe), 30, "the admission policy to take effect")
    for body, complaint in risky.values():
        message = create(alice, namespace, body)
        assert message is not None and complaint in message, (body["metadata"]["name"], message)

    # What alice may do without any grant: an allowed image, the flow account, plain env.
    assert create(alice, namespace, flowrun("plain", env=[{"name": "A", "value": "b"}])) is None
    assert create(alice, namespace, flowrun("flow-sa", serviceAccountName="headrace-flow")) is None
    # bob holds each right, so each of alice's refusals is his to make.
    for name, (body, _) in risky.items():
        assert create(bob, namespace, body) is None, name


def test_the_policy_type_checks_cleanly(crds: Cluster, policy: dict[str, Any]) -> None:
    api = client.AdmissionregistrationV1Api(crds.api_client)
    name = policy["metadata"]["name"]

    def checked() -> Any:
        status = api.read_validating_admission_policy(name).status
        return status if status and status.observed_generation else None

    status = poll(checked, 30, "the policy's type check")
    warnings = (status.type_checking and status.type_checking.expression_warnings) or []
    assert warnings == [], [w.warning for w in warnings]
