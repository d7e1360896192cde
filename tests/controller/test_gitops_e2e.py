"""GitOps on the real control plane: a sync loop that re-applies manifests, history limits
with git-applied and scheduled runs mixed, edits of ended runs, and docs/gitops.md's
manifests, with the Argo CD health checks of docs/argocd-health.md evaluated on the objects
as the API server returns them.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from operator_harness import (
    EXAMPLE_IMAGE,
    GROUP,
    REPO,
    VERSION,
    FlowRuns,
    OperatorProcess,
    poll,
)

from cluster.fixtures import Cluster
from shipping import kubectl_binary
from test_argocd_health import argo_health

pytestmark = pytest.mark.cluster

DOC = REPO / "docs" / "gitops.md"
ARGOCD = "argocd-controller"  # the field manager Argo CD applies with
PLURALS = {"FlowRun": "flowruns", "Deployment": "deployments"}
RANK = {"Scheduled": 0, "Pending": 1, "Running": 2, "Completed": 3}


def doc_manifests(image: str | None = None) -> list[dict[str, Any]]:
    """Every YAML document of docs/gitops.md's ```yaml blocks; with `image`, its flows come
    from that image (the flow image loaded into the real node: /opt/flows as in the doc)."""
    text = DOC.read_text()
    if image:
        assert text.count(EXAMPLE_IMAGE) == 1, "the doc names the examples' image once"
        text = text.replace(EXAMPLE_IMAGE, image)
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    return [doc for block in blocks for doc in yaml.safe_load_all(block) if doc]


def doc_manifest(kind: str, generated: bool = False, image: str | None = None) -> dict[str, Any]:
    """The doc's one manifest of `kind` (a FlowRun with generateName when `generated`)."""
    found = [
        doc
        for doc in doc_manifests(image)
        if doc["kind"] == kind and ("generateName" in doc["metadata"]) == generated
    ]
    assert len(found) == 1, f"docs/gitops.md should have one {kind} (generated={generated})"
    return copy.deepcopy(found[0])


def apply(api: client.CustomObjectsApi, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    """Server-side apply as Argo CD does it: its field manager, conflicts forced."""
    applied: dict[str, Any] = api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURALS[body["kind"]],
        body["metadata"]["name"],
        body,
        field_manager=ARGOCD,
        force=True,
        _content_type="application/apply-patch+yaml",
    )
    return applied


def tracked(body: dict[str, Any]) -> dict[str, Any]:
    """The manifest with Argo CD's tracking label, as Argo CD applies it."""
    body = copy.deepcopy(body)
    body["metadata"].setdefault("labels", {})["app.kubernetes.io/instance"] = "flows-production"
    return body


def get(flowruns: FlowRuns, kind: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = flowruns.api.get_namespaced_custom_object(
        GROUP, VERSION, flowruns.namespace, PLURALS[kind], name
    )
    return found


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for found in (obj.get("status") or {}).get("conditions") or []:
        if found["type"] == kind:
            return dict(found)
    return {}


def test_a_sync_loop_never_reruns_a_flowrun_nor_flaps_its_status(
    operator_process: OperatorProcess, flowruns: FlowRuns
) -> None:
    """Argo CD with self-heal applies the same Deployment and named FlowRun every second."""
    deployment = tracked(doc_manifest("Deployment", image=flowruns.image))
    run = tracked(doc_manifest("FlowRun", image=flowruns.image))
    name, namespace = run["metadata"]["name"], flowruns.namespace
    samples: list[tuple[dict[str, Any], dict[str, Any]]] = []
    began = time.monotonic()
    while time.monotonic() - began < 30:
        apply(flowruns.api, namespace, deployment)
        apply(flowruns.api, namespace, run)
        for _ in range(4):
            samples.append(
                (get(flowruns, "FlowRun", name), get(flowruns, "Deployment", "nightly-hello"))
            )
            time.sleep(0.25)

    final = flowruns.wait_final(name, operator=operator_process)
    assert final["state"] == "Completed", final
    assert len(final["attempts"]) == 1 and len(flowruns.pods(name)) == 1, "ran once"
    runs = [r for r, _ in samples]
    assert len({r["metadata"]["uid"] for r in runs}) == 1, "never deleted and re-created"
    assert {r["metadata"]["generation"] for r in runs} == {1}, "the applies changed no spec"
    managers = {(m["manager"], m["operation"]) for m in runs[-1]["metadata"]["managedFields"]}
    assert (ARGOCD, "Apply") in managers

    states = [(r.get("status") or {}).get("state") for r in runs]
    ranks = [RANK[s] for s in states if s is not None]
    assert ranks == sorted(ranks), f"the state only moves forward: {states}"
    ended = [r for r in runs if (r.get("status") or {}).get("state") == "Completed"]
    assert len(ended) > 10, "the loop went on well after the run ended"
    assert len({r["metadata"]["resourceVersion"] for r in ended}) == 1, (
        "once ended, nothing is written to the FlowRun again"
    )
    health = [argo_health(r)[0] for r in runs]
    assert "Degraded" not in health and health[-1] == "Healthy", health

    first = next(i for i, (_, d) in enumerate(samples) if condition(d, "Ready"))
    assert first < 40, "the Deployment is Ready within the operator's first seconds"
    deployments = [d for _, d in samples[first:]]
    ready = [condition(d, "Ready") for d in deployments]
    assert {(c["status"], c["reason"]) for c in ready} == {("True", "Scheduled")}
    assert len({c["lastTransitionTime"] for c in ready}) == 1, "Ready never flapped"
    assert {d["metadata"]["generation"] for d in deployments} == {1}
    assert {d["status"]["observedGeneration"] for d in deployments} == {1}
    assert {argo_health(d) for d in deployments} == {
        ("Healthy", "Scheduled: creating runs on schedule")
    }
    # Counts of what is there now, no stale state kept (a cron time may add a run).
    counts = Counter(flowruns.status(n).get("state") or "Scheduled" for n in flowruns.names())
    assert counts["Completed"] >= 1
    poll(
        lambda: get(flowruns, "Deployment", "nightly-hello")["status"]["runs"] == dict(counts),
        5,
        f"status.runs to be {counts}",
        operator_process,
    )


SCHEDULED = re.compile(r"^mixed-\d{8}-\d{6}$")


def test_history_limits_trim_only_scheduled_runs_and_gc_follows_the_owner(
    operator_process: OperatorProcess, flowruns: FlowRuns
) -> None:
    namespace = flowruns.namespace
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    mixed = flowruns.deployment(
        "mixed",
        parameters={"n": 1},
        parameterSchema=schema,
        schedule={"intervalSeconds": 2},
        successfulRunsHistoryLimit=1,
        failedRunsHistoryLimit=0,
    )
    git_runs = {"git-1": {"n": 1}, "git-2": {"n": 2}, "git-bad": {"n": "many"}}
    for name, parameters in git_runs.items():
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "FlowRun",
            "metadata": {"name": name},
            "spec": {"deploymentRef": {"name": "mixed"}, "parameters": parameters},
        }
        apply(flowruns.api, namespace, tracked(body))
    assert flowruns.wait_final("git-bad", operator=operator_process)["state"] == "Failed"
    seen: set[str] = set()

    def completed(name: str) -> bool:
        try:
            return flowruns.status(name).get("state") == "Completed"
        except ApiException as error:
            if error.status == 404:
                return False  # trimmed between the list and this read
            raise

    def trimmed() -> bool:
        names = flowruns.names()
        scheduled = [n for n in names if SCHEDULED.match(n)]
        seen.update(scheduled)
        ended = [n for n in scheduled if completed(n)]
        return len(seen) >= 4 and len(ended) == 1 and len(seen - set(scheduled)) >= 2

    poll(trimmed, 60, "four scheduled runs, all but the newest ended one trimmed", operator_process)
    names = flowruns.names()
    assert {"git-1", "git-2", "git-bad"} <= set(names), "runs applied from git are never deleted"
    assert flowruns.status("git-1")["state"] == "Completed"
    assert set(seen) - set(names), "older scheduled runs were deleted"

    scheduled = [get(flowruns, "FlowRun", n) for n in names if SCHEDULED.match(n)]
    for run in scheduled:
        meta = run["metadata"]
        assert meta["labels"]["headrace.dev/created-by"] == "schedule"
        assert meta["annotations"]["argocd.argoproj.io/compare-options"] == "IgnoreExtraneous"
        assert meta["annotations"]["argocd.argoproj.io/sync-options"] == "Prune=false"
        [owner] = meta["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
            "Deployment",
            "mixed",
            mixed["metadata"]["uid"],
            True,
        )
        assert "app.kubernetes.io/instance" not in meta["labels"], "not Argo CD's to track"
    assert argo_health(get(flowruns, "FlowRun", "git-bad"))[0] == "Degraded"
    done = [r for r in scheduled if (r.get("status") or {}).get("state") == "Completed"]
    assert argo_health(done[0])[0] == "Healthy"
    assert argo_health(get(flowruns, "Deployment", "mixed"))[0] == "Healthy"

    flowruns.patch_deployment("mixed", {"suspend": True})
    poll(
        lambda: (
            argo_health(get(flowruns, "Deployment", "mixed"))
            == ("Suspended", "Suspended: the schedule is suspended")
        ),
        20,
        "Argo CD health Suspended",
        operator_process,
    )

    # Argo CD prunes the Deployment: the garbage collector takes its scheduled runs along.
    flowruns.api.delete_namespaced_custom_object(GROUP, VERSION, namespace, "deployments", "mixed")
    poll(
        lambda: not [n for n in flowruns.names() if SCHEDULED.match(n)],
        60,
        "the scheduled runs to be garbage collected",
        operator_process,
    )
    assert {"git-1", "git-2", "git-bad"} <= set(flowruns.names())


def test_an_edit_of_an_ended_flowrun_is_refused_and_a_timeout_edit_is_acknowledged(
    operator_process: OperatorProcess, flowruns: FlowRuns
) -> None:
    namespace = flowruns.namespace
    apply(flowruns.api, namespace, doc_manifest("Deployment", image=flowruns.image))
    run = doc_manifest("FlowRun", image=flowruns.image)
    name = run["metadata"]["name"]
    apply(flowruns.api, namespace, run)
    before = flowruns.wait_final(name, operator=operator_process)
    assert before["state"] == "Completed"

    edited = copy.deepcopy(run)
    edited["spec"]["parameters"]["name"] = "run it again"
    with pytest.raises(ApiException) as refused:
        apply(flowruns.api, namespace, edited)
    assert refused.value.status == 422
    body = str(refused.value.body)
    assert "a FlowRun runs once, and an edit never runs it again" in body
    assert "metadata.generateName with kubectl create" in body
    assert flowruns.status(name) == before and len(flowruns.pods(name)) == 1

    # timeoutSeconds may change (it moves a running run's deadline); on an ended run it
    # does nothing, and the operator says it has seen it.
    edited = copy.deepcopy(run)
    edited["spec"]["timeoutSeconds"] = 60
    assert apply(flowruns.api, namespace, edited)["metadata"]["generation"] == 2
    seen = poll(
        lambda: (s := flowruns.status(name)).get("observedGeneration") == 2 and s,
        20,
        "observedGeneration 2",
        operator_process,
    )
    assert {c["observedGeneration"] for c in seen["conditions"]} == {2}
    assert condition({"status": seen}, "Ready") == {
        **condition({"status": before}, "Ready"),
        "observedGeneration": 2,
    }
    assert seen["state"] == "Completed" and seen["attempts"] == before["attempts"]
    assert len(flowruns.pods(name)) == 1
    assert argo_health(get(flowruns, "FlowRun", name))[0] == "Healthy"

    flowruns.deployment("broken", schedule={"cron": "61 * * * *"})
    status = flowruns.wait_deployment("broken", lambda s: condition({"status": s}, "Ready") and s)
    assert condition({"status": status}, "Stalled")["status"] == "True"
    health, message = argo_health(get(flowruns, "Deployment", "broken"))
    assert health == "Degraded" and message.startswith("InvalidSchedule: spec.schedule.cron")


def test_a_run_whose_pod_is_lost_ends_crashed_and_argo_cd_shows_it_degraded(
    operator_process: OperatorProcess, flowruns: FlowRuns
) -> None:
    """The pod is removed for good (its finalizer forced off, as after a lost node) while
    it runs: without an exit to read, the run must not stay Running forever."""
    flowruns.sleeper("lost", 600)
    flowruns.wait_running("lost", operator_process)
    [pod] = flowruns.pods("lost")
    flowruns.core.patch_namespaced_pod(
        pod.metadata.name, flowruns.namespace, {"metadata": {"finalizers": None}}
    )
    flowruns.core.delete_namespaced_pod(
        pod.metadata.name, flowruns.namespace, grace_period_seconds=0
    )
    status = flowruns.wait_final("lost", timeout=30, operator=operator_process)
    assert status["state"] == "Crashed"
    assert condition({"status": status}, "Ready")["reason"] == "PodLost"
    assert argo_health(get(flowruns, "FlowRun", "lost")) == (
        "Degraded",
        "Crashed (PodLost): the attempt's pod was deleted before it finished",
    )


def kubectl(cluster: Cluster, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(kubectl_binary()), f"--kubeconfig={cluster.kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_pipeline_creates_runs_with_kubectl_create_or_the_cli(
    operator_process: OperatorProcess, flowruns: FlowRuns, crds: Cluster, tmp_path: Path
) -> None:
    namespace = flowruns.namespace
    apply(flowruns.api, namespace, doc_manifest("Deployment", image=flowruns.image))
    manual = yaml.safe_dump(doc_manifest("FlowRun", generated=True, image=flowruns.image))
    names = []
    for _ in range(2):
        created = kubectl(crds, "create", "-n", namespace, "-f", "-", stdin=manual)
        assert created.returncode == 0, created.stderr
        names.append(created.stdout.split()[0].split("/", 1)[1])
    assert len(set(names)) == 2 and all(n.startswith("nightly-hello-manual-") for n in names)
    for name in names:
        assert flowruns.wait_final(name, operator=operator_process)["state"] == "Completed"
    refused = kubectl(crds, "apply", "-n", namespace, "-f", "-", stdin=manual)
    assert refused.returncode != 0 and "generate" in refused.stderr.lower()

    # The doc's CLI command, word for word but for its namespace.
    [command] = re.findall(r"^headrace run --deployment .*$", DOC.read_text(), re.M)
    words = command.replace("-n flows", f"-n {namespace}").split()
    cli = subprocess.run(
        [sys.executable, "-m", "headrace", *words[1:]],
        env={**os.environ, "KUBECONFIG": str(crds.kubeconfig)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    made = set(flowruns.names()) - set(names)
    assert len(made) == 1 and made.pop().startswith("nightly-hello-")


# Argo CD's and Flux's CRDs are not installed on the test control plane, and copying their
# real schemas in is not ours to do: these minimal CRDs declare exactly the fields the doc
# uses (with the types and required fields of those projects' APIs), so a strict apply
# catches a misspelled or misplaced field, but not a value only Argo CD or Flux would refuse.
STRING = {"type": "string"}
BOOLEAN = {"type": "boolean"}


def _object(required: list[str] | None = None, **properties: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


GITOPS_CRDS: dict[tuple[str, str, str], dict[str, Any]] = {
    ("argoproj.io", "v1alpha1", "Application"): _object(
        ["project", "destination", "source"],
        project=STRING,
        source=_object(["repoURL"], repoURL=STRING, targetRevision=STRING, path=STRING),
        destination=_object(server=STRING, name=STRING, namespace=STRING),
        syncPolicy=_object(
            automated=_object(prune=BOOLEAN, selfHeal=BOOLEAN, allowEmpty=BOOLEAN),
            syncOptions={"type": "array", "items": STRING},
        ),
    ),
    ("source.toolkit.fluxcd.io", "v1", "GitRepository"): _object(
        ["url", "interval"],
        url=STRING,
        interval=STRING,
        ref=_object(branch=STRING, tag=STRING, semver=STRING, commit=STRING),
    ),
    ("kustomize.toolkit.fluxcd.io", "v1", "Kustomization"): _object(
        ["interval", "prune", "sourceRef"],
        interval=STRING,
        sourceRef=_object(["kind", "name"], kind=STRING, name=STRING, namespace=STRING),
        path=STRING,
        targetNamespace=STRING,
        prune=BOOLEAN,
        wait=BOOLEAN,
        timeout=STRING,
    ),
}


@pytest.fixture
def gitops_crds(crds: Cluster) -> Iterator[dict[str, str]]:
    """The minimal CRDs; kind to plural."""
    ext = client.ApiextensionsV1Api(crds.api_client)
    plurals = {}
    for (group, version, kind), spec in GITOPS_CRDS.items():
        plural = kind.lower() + "s"
        plurals[kind] = plural
        body = {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {
                "group": group,
                "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
                "scope": "Namespaced",
                "versions": [
                    {
                        "name": version,
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": _object(
                                ["spec"],
                                apiVersion=STRING,
                                kind=STRING,
                                metadata={"type": "object"},
                                spec=spec,
                            )
                        },
                    }
                ],
            },
        }
        with contextlib.suppress(ApiException):
            ext.create_custom_resource_definition(body)
    for (group, _, kind), _spec in GITOPS_CRDS.items():
        name = f"{plurals[kind]}.{group}"

        def established(name: str = name) -> bool:
            found = ext.read_custom_resource_definition(name)
            return any(
                c.type == "Established" and c.status == "True"
                for c in (found.status.conditions or [])
            )

        poll(established, 30, f"CRD {name} established")
    try:
        yield plurals
    finally:
        for (group, _, kind), _spec in GITOPS_CRDS.items():
            with contextlib.suppress(ApiException):
                ext.delete_custom_resource_definition(f"{plurals[kind]}.{group}")


def test_every_manifest_in_the_doc_is_applied_here(
    gitops_crds: dict[str, str], crds: Cluster, namespace: str
) -> None:
    """Headrace's manifests are applied by the tests above; Argo CD's and Flux's here."""
    kinds = sorted((doc["kind"], "generateName" in doc["metadata"]) for doc in doc_manifests())
    assert kinds == sorted(
        [
            ("Deployment", False),  # the sync loop, history and edit tests
            ("FlowRun", False),  # the sync loop and edit tests
            ("FlowRun", True),  # the pipeline test, with kubectl create
            ("Application", False),
            ("GitRepository", False),
            ("Kustomization", False),
        ]
    ), "a manifest added to docs/gitops.md needs a test that applies it"
    api = client.CustomObjectsApi(crds.api_client)
    for doc in doc_manifests():
        if doc["kind"] not in gitops_crds:
            continue
        group, version = doc["apiVersion"].split("/")
        doc["metadata"]["namespace"] = namespace  # argocd and flux-system do not exist here
        created = api.create_namespaced_custom_object(
            group, version, namespace, gitops_crds[doc["kind"]], doc, field_validation="Strict"
        )
        assert created["spec"] == doc["spec"]

    # The check can fail: a field Flux does not have is refused.
    typo = copy.deepcopy(next(d for d in doc_manifests() if d["kind"] == "Kustomization"))
    typo["metadata"] = {"name": "typo", "namespace": namespace}
    typo["spec"]["sourceref"] = typo["spec"].pop("sourceRef")
    with pytest.raises(ApiException) as refused:
        api.create_namespaced_custom_object(
            "kustomize.toolkit.fluxcd.io",
            "v1",
            namespace,
            "kustomizations",
            typo,
            field_validation="Strict",
        )
    assert "sourceref" in str(refused.value.body) or "sourceRef" in str(refused.value.body)
