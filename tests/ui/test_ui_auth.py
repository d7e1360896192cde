"""`headrace ui --auth kubernetes` on the real test control plane: no one gets in without a
Kubernetes identity, and two users with rights in different namespaces see different runs.

Each user is a ServiceAccount with a Role to list FlowRuns in its own namespace only; its
token comes from the TokenRequest API (what `kubectl create token` calls). The UI itself runs
with the admin kubeconfig, as the chart's UI account would with its read-only rights."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from kubernetes import client
from operator_harness import FlowRuns, install_crds

from cluster.fixtures import Cluster, create_namespace, delete_namespace

pytestmark = pytest.mark.cluster


@pytest.fixture
def auth_ui(cluster: Cluster, ui_server: Callable[..., str]) -> str:
    """`headrace ui --auth kubernetes` with the admin kubeconfig; its base URL."""
    return ui_server("--auth", "kubernetes", KUBECONFIG=str(cluster.kubeconfig))


@pytest.fixture
def other_namespace(cluster: Cluster) -> Iterator[str]:
    name = create_namespace(cluster)
    try:
        yield name
    finally:
        delete_namespace(cluster, name)


def reader_token(api_client: Any, namespace: str) -> str:
    """A ServiceAccount `reader` that may list FlowRuns in `namespace` only, and its token."""
    core = client.CoreV1Api(api_client)
    rbac = client.RbacAuthorizationV1Api(api_client)
    meta = client.V1ObjectMeta(name="reader")
    core.create_namespaced_service_account(namespace, client.V1ServiceAccount(metadata=meta))
    rule = client.V1PolicyRule(
        api_groups=["headrace.dev"], resources=["flowruns"], verbs=["get", "list", "watch"]
    )
    rbac.create_namespaced_role(namespace, client.V1Role(metadata=meta, rules=[rule]))
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=meta,
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="reader"
            ),
            subjects=[
                client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=namespace)
            ],
        ),
    )
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
    )
    token: str = core.create_namespaced_service_account_token(
        "reader", namespace, request
    ).status.token
    return token


def test_tokens_and_namespace_rights_decide_what_is_seen(
    cluster: Cluster, namespace: str, other_namespace: str, auth_ui: str, page: Any
) -> None:
    install_crds(cluster.api_client)
    for ns, name in ((namespace, "run-a"), (other_namespace, "run-b")):
        flowruns = FlowRuns(cluster.api_client, ns)
        flowruns.create(flowruns.manifest("flowrun-stages"), name=name)
    alice = reader_token(cluster.api_client, namespace)
    bob = reader_token(cluster.api_client, other_namespace)
    base = auth_ui

    def get(path: str, token: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(f"{base}{path}", headers=headers, timeout=30)

    # No token, or one the cluster does not accept: 401.
    assert get("/api/flowruns").status_code == 401
    assert get("/api/flowruns", "not-a-token").status_code == 401
    assert get("/api/config").json()["auth"] is True  # the page may ask how to sign in

    # Each sees the runs of the namespace it may list, and nothing else.
    def names(token: str) -> set[str]:
        response = get("/api/flowruns", token)
        assert response.status_code == 200, response.text
        return {r["name"] for r in response.json()["items"]}

    assert names(alice) == {"run-a"}
    assert names(bob) == {"run-b"}
    assert get(f"/api/flowruns?namespace={other_namespace}", alice).status_code == 403
    assert get(f"/api/flowruns/{other_namespace}/run-b", alice).status_code == 403
    assert get(f"/api/flowruns/{namespace}/run-a", alice).status_code == 200
    assert get(f"/api/flowruns/{other_namespace}/run-b/graph", bob).status_code == 200
    assert get("/api/local", alice).status_code == 403  # this machine's files: no one's

    # In the browser: a sign-in form, then only Alice's run.
    page.goto(f"{base}/#/")
    page.wait_for_selector("form.sign-in")
    page.fill("form.sign-in textarea", alice)
    page.click("form.sign-in button[type=submit]")
    page.wait_for_selector("#flowruns tbody tr")
    assert page.locator("#flowruns tbody tr").all_inner_texts()[0].startswith("run-a")
    assert page.locator("#flowruns tbody tr").count() == 1
    page.goto(f"{base}/#/flowrun/{other_namespace}/run-b")
    page.wait_for_selector("text=this token may not list FlowRuns")
    page.click("a.sign-out")
    page.wait_for_selector("form.sign-in")
