"""The Helm chart: lint, what it renders in each mode, and values it refuses.

What the RBAC is worth is proven on a real API server in tests/controller/test_chart_e2e.py;
these tests pin down the rendered objects users review before installing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from shipping import CHART, REPO, helm, of_kind, render

FLOW_SA = "headrace-flow"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "helm"


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = of_kind(docs, "Deployment")
    (operator,) = deployment["spec"]["template"]["spec"]["containers"]
    return operator  # type: ignore[no-any-return]


def env_of(docs: list[dict[str, Any]]) -> dict[str, str]:
    return {item["name"]: item.get("value", "") for item in container(docs)["env"]}


@pytest.mark.parametrize(
    "sets",
    [
        [],
        ["watchNamespaces={team-a,team-b}"],
        ["metrics.serviceMonitor.enabled=true", "config.defaultResultStorage=s3://b/hr"],
    ],
    ids=["clusterwide", "namespaced", "servicemonitor"],
)
def test_helm_lint_is_clean(home: Path, sets: list[str]) -> None:
    args = ["lint", "--strict", str(CHART)]
    for value in sets:
        args += ["--set", value]
    out = helm(*args, home=home).stdout
    assert "0 chart(s) failed" in out and "[WARNING]" not in out and "[ERROR]" not in out, out


def test_chart_metadata_names_its_home_sources_and_an_icon_in_this_repository() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["home"].startswith("https://") and chart["sources"] == [chart["home"]]
    raw = chart["icon"].replace("https://raw.githubusercontent.com/", "https://github.com/")
    repo, _, path = raw.partition("/main/")
    assert repo == chart["home"] and (REPO / path).is_file(), chart["icon"]


def test_the_notes_point_only_at_what_the_chart_ships() -> None:
    """NOTES.txt is read after `helm install` from a chart repository: no file of this
    repository (examples/...) is at hand there."""
    notes = (CHART / "templates" / "NOTES.txt").read_text()
    assert "examples/" not in notes and " -f - <<EOF" in notes
    service = (CHART / "templates" / "service.yaml").read_text()
    assert "-metrics.{{ .Release.Namespace }}" in notes
    assert 'name: {{ include "headrace.fullname" . }}-metrics' in service
    ui = (CHART / "templates" / "ui.yaml").read_text()
    ui_name = (
        '{{- $ui := printf "%s-ui" (include "headrace.fullname" .) | trunc 63 | trimSuffix "-" }}'
    )
    assert ui_name in notes and "svc/{{ $ui }} {{ .Values.ui.port }}" in notes
    assert ui_name.replace("$ui :=", "$fullname :=").replace(" }}", " -}}") in ui
    assert "port: {{ .Values.ui.port }}" in ui


def test_default_install_is_clusterwide_with_a_rightless_flow_account(home: Path) -> None:
    docs = render(home)
    kinds = sorted(doc["kind"] for doc in docs)
    assert kinds == [
        "ClusterRole",
        "ClusterRole",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
        "ServiceAccount",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ]
    users = {r["metadata"]["name"]: r for r in of_kind(docs, "ClusterRole")}
    assert (
        users["headrace-edit"]["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"]
        == "true"
    )
    assert (
        users["headrace-view"]["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"]
        == "true"
    )
    (lease_role,) = of_kind(docs, "Role")  # leader election: its one Lease, nothing more
    assert [r["resources"] for r in lease_role["rules"]] == [["leases"], ["leases"]]
    (binding,) = of_kind(docs, "ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "headrace", "namespace": "headrace-system"}
    ]
    flow = next(sa for sa in of_kind(docs, "ServiceAccount") if sa["metadata"]["name"] == FLOW_SA)
    assert flow["automountServiceAccountToken"] is False
    assert all(
        s["name"] != FLOW_SA for b in of_kind(docs, "ClusterRoleBinding") for s in b["subjects"]
    )
    assert env_of(docs)["HEADRACE_FLOW_SERVICE_ACCOUNT"] == FLOW_SA


def test_run_deployments_gives_the_flow_account_only_what_run_deployment_calls(
    home: Path,
) -> None:
    docs = render(home, "flowServiceAccount.runDeployments=true")
    (role,) = [r for r in of_kind(docs, "Role") if r["metadata"]["name"].endswith("deployments")]
    assert role["rules"] == [
        {"apiGroups": ["headrace.dev"], "resources": ["deployments"], "verbs": ["get"]},
        {"apiGroups": ["headrace.dev"], "resources": ["flowruns"], "verbs": ["create", "get"]},
    ]
    (binding,) = [
        b for b in of_kind(docs, "RoleBinding") if b["roleRef"]["name"] == role["metadata"]["name"]
    ]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": FLOW_SA, "namespace": "headrace-system"}
    ]
    assert not [r for r in of_kind(render(home), "Role") if "deployments" in r["metadata"]["name"]]


def operator_rbac(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The operator's own roles of `kind`: not the users' roles, not the leader's Lease."""
    return [
        doc
        for doc in of_kind(docs, kind)
        if doc["metadata"]["name"] not in {"headrace-view", "headrace-edit"}
        and not doc["metadata"]["name"].endswith("-leader")
    ]


def test_rbac_grants_only_what_the_operator_calls(home: Path) -> None:
    (role,) = operator_rbac(render(home), "ClusterRole")
    granted = {
        (group, resource): sorted(rule["verbs"])
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert granted == {
        ("headrace.dev", "flowruns"): sorted(["get", "list", "watch", "create", "patch", "delete"]),
        ("headrace.dev", "deployments"): sorted(["get", "list", "watch", "patch"]),
        ("headrace.dev", "flowruns/status"): ["patch"],
        ("headrace.dev", "deployments/status"): ["patch"],
        ("", "pods"): sorted(["get", "list", "watch", "create", "delete", "patch"]),
        # the Service of a run's Dask cluster (spec.taskRunner.dask), made and deleted
        ("", "services"): ["create", "delete"],
        ("", "events"): ["create"],
        # kopf's observer of resources (it runs clusterwide): read-only.
        ("apiextensions.k8s.io", "customresourcedefinitions"): ["list", "watch"],
    }
    assert not any("*" in rule["verbs"] or "*" in rule["resources"] for rule in role["rules"])


def test_dask_kubernetes_clusters_add_only_rights_on_their_resources(home: Path) -> None:
    """`config.daskClusters=dask-kubernetes`: the operator makes DaskClusters and
    DaskWorkerGroups (and is told so); the default grants nothing on them."""
    (role,) = operator_rbac(render(home, "config.daskClusters=dask-kubernetes"), "ClusterRole")
    rules = [r for r in role["rules"] if r["apiGroups"] == ["kubernetes.dask.org"]]
    assert rules == [
        {
            "apiGroups": ["kubernetes.dask.org"],
            "resources": ["daskclusters", "daskworkergroups"],
            "verbs": ["create", "delete"],
        }
    ]
    docs = render(home, "config.daskClusters=dask-kubernetes")
    (deployment,) = of_kind(docs, "Deployment")
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["HEADRACE_DASK_CLUSTERS"] == "dask-kubernetes"


def test_operator_deployment_runs_one_safe_replica_with_probes_and_metrics(home: Path) -> None:
    docs = render(home)
    (deployment,) = of_kind(docs, "Deployment")
    spec = deployment["spec"]
    # Leader election (on by default) lets a new pod wait for the Lease the old one lets go.
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "RollingUpdate"}
    assert env_of(docs)["HEADRACE_LEADER_ELECTION_NAMESPACE"] == "headrace-system"
    (single,) = of_kind(render(home, "leaderElection.enabled=false"), "Deployment")
    assert single["spec"]["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "headrace"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    operator = container(docs)
    assert operator["image"] == "headrace:0.1.0"
    assert "command" not in operator  # the image's entrypoint, `headrace`
    assert operator["args"][:3] == ["operator", "--liveness", "http://0.0.0.0:8080/healthz"]
    ports = {p["name"]: p["containerPort"] for p in operator["ports"]}
    assert ports == {"health": 8080, "metrics": 9090}
    for probe in ("livenessProbe", "readinessProbe"):
        assert operator[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert operator["securityContext"]["readOnlyRootFilesystem"] is True
    assert operator["securityContext"]["allowPrivilegeEscalation"] is False
    env = env_of(docs)
    assert env["HEADRACE_METRICS_PORT"] == "9090"
    assert env["HEADRACE_ENGINE_COMMAND"] == "headrace"
    assert "HEADRACE_DEFAULT_RESULT_STORAGE" not in env  # the operator's own default
    (service,) = of_kind(docs, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert service["spec"]["selector"].items() <= spec["template"]["metadata"]["labels"].items()


def test_settings_reach_the_operator_as_environment(home: Path) -> None:
    env = env_of(
        render(
            home,
            "config.defaultResultStorage=s3://bucket/headrace",
            "config.graceSeconds=7",
            "config.retryDelaySeconds=3",
            "config.progressIntervalSeconds=0.5",
            "extraEnv[0].name=HEADRACE_MAX_RECONCILES",
            "extraEnv[0].value=4",
        )
    )
    assert env["HEADRACE_DEFAULT_RESULT_STORAGE"] == "s3://bucket/headrace"
    assert env["HEADRACE_GRACE_SECONDS"] == "7"
    assert env["HEADRACE_RETRY_DELAY_SECONDS"] == "3"
    assert env["HEADRACE_PROGRESS_INTERVAL"] == "0.5"
    assert env["HEADRACE_MAX_RECONCILES"] == "4"


def test_watch_namespaces_gives_roles_there_and_nothing_clusterwide(home: Path) -> None:
    docs = render(home, "watchNamespaces={team-a,team-b}")
    # Cluster-wide, only what kopf's observers read: namespace names and CRDs.
    (discovery,) = operator_rbac(docs, "ClusterRole")
    assert discovery["rules"] == [
        {
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": ["list", "watch"],
        },
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
    ]
    (binding,) = of_kind(docs, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == discovery["metadata"]["name"]
    strict = render(home, "watchNamespaces={team-a,team-b}", "rbac.discovery=false")
    assert not operator_rbac(strict, "ClusterRole") and not of_kind(strict, "ClusterRoleBinding")
    roles = {r["metadata"]["namespace"]: r for r in operator_rbac(docs, "Role")}
    assert sorted(roles) == ["team-a", "team-b"]
    (clusterwide,) = operator_rbac(render(home), "ClusterRole")
    assert roles["team-a"]["rules"] == clusterwide["rules"][:-1]  # all but kopf's observer
    bindings = operator_rbac(docs, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    assert all(b["subjects"][0]["namespace"] == "headrace-system" for b in bindings)
    args = container(docs)["args"]
    assert args[3:] == ["--namespace", "team-a", "--namespace", "team-b"]
    flow_accounts = [
        sa["metadata"]["namespace"]
        for sa in of_kind(docs, "ServiceAccount")
        if sa["metadata"]["name"] == FLOW_SA
    ]
    assert sorted(flow_accounts) == ["headrace-system", "team-a", "team-b"]


def test_service_monitor_scrapes_the_metrics_service(home: Path) -> None:
    assert not of_kind(render(home), "ServiceMonitor")
    docs = render(
        home, "metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=prom"
    )
    (monitor,) = of_kind(docs, "ServiceMonitor")
    (service,) = of_kind(docs, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    without = render(home, "metrics.enabled=false")
    assert not of_kind(without, "Service") and "HEADRACE_METRICS_PORT" not in env_of(without)


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("leaderElection.enabled=false,replicas=2", "two operators would act at once"),
        ("replicas=-1", "minimum"),
        ("watchNamespaces={Not_A_Namespace}", "does not match pattern"),
        ("image.pullPolicy=Sometimes", "image/pullPolicy"),
        ("metricz.enabled=true", "additional properties 'metricz' not allowed"),
    ],
)
def test_schema_refuses_bad_values(home: Path, value: str, complaint: str) -> None:
    result = helm("template", "headrace", str(CHART), "--set", value, home=home, check=False)
    assert result.returncode != 0 and complaint in result.stderr, result.stderr


def test_helm_installs_the_generated_crds(home: Path) -> None:
    out = helm("template", "headrace", str(CHART), "--include-crds", home=home).stdout
    crds = [d for d in yaml.safe_load_all(out) if d and d["kind"] == "CustomResourceDefinition"]
    expected = [yaml.safe_load(p.read_text()) for p in sorted((REPO / "crds").glob("*.yaml"))]
    assert sorted(crds, key=lambda d: d["metadata"]["name"]) == expected
    assert not of_kind(render(home), "CustomResourceDefinition")  # crds/: never templated
