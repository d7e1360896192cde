"""The chart's web UI (`ui.enabled`): its own Deployment running `headrace ui --auth
kubernetes`, a Service, an optional Ingress, and a read-only account."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shipping import CHART, helm, of_kind, render


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "helm"


def ui_docs(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["metadata"]["name"].endswith("-ui")]


def test_ui_is_off_by_default(home: Path) -> None:
    assert ui_docs(render(home)) == []


def test_ui_deployment_service_and_read_only_rights(home: Path) -> None:
    docs = ui_docs(render(home, "ui.enabled=true"))
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Service",
        "ServiceAccount",
    ]
    (deployment,) = of_kind(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == [
        "ui", "--host", "0.0.0.0", "--port", "8420", "--auth", "kubernetes"
    ]  # fmt: skip
    assert pod["serviceAccountName"] == "headrace-ui"
    assert pod["enableServiceLinks"] is False  # the metrics Service's link vars read as settings
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    labels = deployment["spec"]["selector"]["matchLabels"]
    assert labels["app.kubernetes.io/component"] == "ui"
    (service,) = of_kind(docs, "Service")
    assert service["spec"]["selector"] == labels
    (role,) = of_kind(docs, "ClusterRole")
    verbs = {
        (group, resource): set(rule["verbs"])
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    # Reads only, plus asking the cluster who a caller is and what it may do.
    assert verbs == {
        ("headrace.dev", "flowruns"): {"get", "list", "watch"},
        ("headrace.dev", "deployments"): {"get", "list", "watch"},
        ("", "pods"): {"get", "list", "watch"},
        ("", "pods/log"): {"get", "list", "watch"},
        ("authentication.k8s.io", "tokenreviews"): {"create"},
        ("authorization.k8s.io", "subjectaccessreviews"): {"create"},
        ("", "namespaces"): {"list"},
    }


def test_ui_ingress_and_storage_credentials(home: Path) -> None:
    docs = ui_docs(
        render(
            home,
            "ui.enabled=true",
            "ui.ingress.enabled=true",
            "ui.ingress.host=runs.example.com",
            "config.resultStorageSecret=s3-creds",
        )
    )
    (ingress,) = of_kind(docs, "Ingress")
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "runs.example.com"
    assert rule["http"]["paths"][0]["backend"]["service"]["name"] == "headrace-ui"
    (deployment,) = of_kind(docs, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["envFrom"] == [{"secretRef": {"name": "s3-creds"}}]
    result = helm(
        "template", "headrace", str(CHART), "--set", "ui.enabled=true",
        "--set", "ui.ingress.enabled=true", home=home, check=False,
    )  # fmt: skip
    assert result.returncode != 0 and "ui.ingress.host is required" in result.stderr


def test_ui_extra_env_reaches_the_ui_container_only(home: Path) -> None:
    docs = render(
        home,
        "ui.enabled=true",
        "ui.extraEnv[0].name=HTTPS_PROXY",
        "ui.extraEnv[0].value=http://proxy:3128",
    )
    (ui,) = of_kind(ui_docs(docs), "Deployment")
    (container,) = ui["spec"]["template"]["spec"]["containers"]
    assert container["env"] == [{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}]
    (operator,) = [d for d in of_kind(docs, "Deployment") if d is not ui]
    names = {
        e["name"] for c in operator["spec"]["template"]["spec"]["containers"] for e in c["env"]
    }
    assert "HTTPS_PROXY" not in names
