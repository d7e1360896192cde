"""A FlowRun's Dask cluster (spec.taskRunner.dask): its pods and Service, and the bounds a
manifest must keep."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from headrace.controller.daskspec import (
    build_dask_scheduler_pod,
    build_dask_service,
    build_dask_worker_pod,
    dask_names,
    scheduler_address,
)
from headrace.controller.podspec import RunPlan, build_pod, owns
from headrace.crd.models import MAX_DASK_WORKERS, DaskSpec, FlowRunSpec, FlowSpec, PodOverrides
from headrace.settings import Settings

UID = "0f3a9c2e-1111-2222-3333-444455556666"


def plan(dask: DaskSpec | None = None, **flow: object) -> RunPlan:
    return RunPlan(
        namespace="ns",
        run_name="nightly",
        run_uid=UID,
        attempt=1,
        flow=FlowSpec(image="img:1", entrypoint="flows/etl.py:etl", **flow),  # type: ignore[arg-type]
        parameters={},
        result_storage="s3://bucket/hr",
        storage_secret="s3-creds",
        deadline=None,
        deployment=None,
        deployment_version=None,
        dask=dask or DaskSpec(workers=3, threads_per_worker=2),
    )


def test_scheduler_workers_and_service_are_owned_by_the_run_and_use_its_image() -> None:
    p = plan()
    dask = p.dask
    assert dask is not None
    config = Settings()
    scheduler = build_dask_scheduler_pod(p, dask, config)
    workers = [build_dask_worker_pod(p, dask, i, "tcp://10.0.0.5:8786", config) for i in range(3)]
    service = build_dask_service(p, dask)
    names = dask_names("nightly", UID, 3)
    assert scheduler["metadata"]["name"] == names.scheduler == "nightly-0f3a9c-dask-scheduler"
    assert [w["metadata"]["name"] for w in workers] == list(names.workers)
    assert service["metadata"]["name"] == names.service
    for obj in (scheduler, *workers, service):
        assert owns(UID, obj)
        assert obj["metadata"]["labels"]["headrace.dev/dask-cluster"] == names.cluster
    for pod in (scheduler, *workers):
        container = pod["spec"]["containers"][0]
        assert container["image"] == "img:1"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert container["envFrom"] == [{"secretRef": {"name": "s3-creds"}}]
    worker = workers[1]["spec"]["containers"][0]["command"]
    assert worker[:3] == ["dask", "worker", "tcp://10.0.0.5:8786"]
    assert worker[worker.index("--nthreads") + 1] == "2"
    env = {e["name"]: e["value"] for e in scheduler["spec"]["containers"][0]["env"]}
    assert env["DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES"] == "0"
    assert service["spec"]["selector"] == {
        "headrace.dev/dask-cluster": names.cluster,
        "app.kubernetes.io/component": "dask-scheduler",
    }


def test_the_flow_pod_is_told_the_scheduler_once_it_runs() -> None:
    running = {"status": {"phase": "Running", "podIP": "10.213.4.7"}}
    assert scheduler_address({"status": {"phase": "Pending"}}) is None
    address = scheduler_address(running)
    assert address == "tcp://10.213.4.7:8786"
    from dataclasses import replace

    pod = build_pod(replace(plan(), dask_address=address), Settings())
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["HEADRACE_DASK_ADDRESS"] == "tcp://10.213.4.7:8786"
    assert "HEADRACE_DASK_ADDRESS" not in {
        e["name"] for e in build_pod(plan(), Settings())["spec"]["containers"][0]["env"]
    }


def test_worker_resources_and_pod_overrides_carry_over() -> None:
    dask = DaskSpec.model_validate(
        {"workers": 1, "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}
    )
    p = plan(dask, pod=PodOverrides(node_selector={"pool": "dask"}, image_pull_policy="Never"))
    worker = build_dask_worker_pod(p, dask, 0, "tcp://1.2.3.4:8786", Settings())
    container = worker["spec"]["containers"][0]
    assert container["resources"] == {"limits": {"cpu": "1", "memory": "1Gi"}}
    assert container["imagePullPolicy"] == "Never"
    assert worker["spec"]["nodeSelector"] == {"pool": "dask"}


def test_long_and_dotted_run_names_give_valid_names() -> None:
    names = dask_names("9." + "x" * 200, UID, 64)
    assert names.service[0].isalpha() and "." not in names.service
    assert len(names.scheduler) <= 63
    assert all(len(name) <= 63 for name in names.workers)
    assert (
        dask_names("9." + "x" * 200, UID, 1).cluster != dask_names("9." + "y" * 200, UID, 1).cluster
    )


@pytest.mark.parametrize(
    ("dask", "field"),
    [
        ({"workers": 0}, "workers"),
        ({"workers": MAX_DASK_WORKERS + 1}, "workers"),
        ({"threadsPerWorker": 0}, "threadsPerWorker"),
        ({"workers": 2, "replicas": 3}, "replicas"),
    ],
)
def test_out_of_bounds_settings_are_refused_naming_the_field(
    dask: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as error:
        FlowRunSpec.model_validate(
            {"flow": {"image": "i", "entrypoint": "f.py:f"}, "taskRunner": {"dask": dask}}
        )
    assert field in str(error.value)
    assert "taskRunner" in str(error.value)


def test_a_runs_task_runner_comes_from_it_or_else_its_deployment() -> None:
    from typing import Any

    from headrace.controller.flowruns import FlowRunReconciler, PlanError
    from headrace.controller.kube import Kube

    reconciler = FlowRunReconciler(Kube(), Settings())
    deployment: dict[str, Any] = {
        "metadata": {"name": "etl"},
        "spec": {
            "image": "img:1",
            "entrypoint": "flows/etl.py:etl",
            "taskRunner": {"dask": {"workers": 4}},
        },
    }
    run: dict[str, Any] = {
        "metadata": {"namespace": "ns", "name": "etl-1", "uid": UID},
        "spec": {"deploymentRef": {"name": "etl"}},
    }
    resolved = reconciler.resolve(run, deployment)
    assert reconciler.plan(run, resolved, 1, None).dask == DaskSpec(workers=4)
    run["spec"]["taskRunner"] = {"dask": {"workers": 1, "threadsPerWorker": 8}}
    resolved = reconciler.resolve(run, deployment)
    assert reconciler.plan(run, resolved, 1, None).dask == DaskSpec(workers=1, threads_per_worker=8)
    del deployment["spec"]["taskRunner"], run["spec"]["taskRunner"]
    assert reconciler.plan(run, reconciler.resolve(run, deployment), 1, None).dask is None
    # A spec the API server did not check (an older CRD): refused by the operator, named.
    run["spec"]["taskRunner"] = {"dask": {"workers": 500}}
    with pytest.raises(PlanError, match=r"invalid spec.taskRunner.dask.workers: Input should be"):
        reconciler.plan(run, reconciler.resolve(run, deployment), 1, None)


def test_a_daskcluster_has_the_scheduler_and_no_workers_the_group_joins_its_address() -> None:
    from headrace.controller.daskspec import build_daskcluster, build_daskworkergroup

    p = plan()
    dask = p.dask
    assert dask is not None
    config = Settings()
    names = dask_names("nightly", UID, 3)
    cluster = build_daskcluster(p, dask, config)
    group = build_daskworkergroup(p, dask, "tcp://10.0.0.5:8786", config)
    assert cluster["kind"] == "DaskCluster" and group["kind"] == "DaskWorkerGroup"
    assert cluster["metadata"]["name"] == names.cluster
    assert group["spec"]["cluster"] == names.cluster
    assert owns(UID, cluster) and owns(UID, group)
    # Its operator's workers would look for the scheduler's Service by DNS name.
    assert cluster["spec"]["worker"]["replicas"] == 0
    assert group["spec"]["worker"]["replicas"] == 3
    scheduler = cluster["spec"]["scheduler"]["spec"]["containers"][0]
    assert scheduler["command"][:2] == ["dask", "scheduler"]
    assert scheduler["image"] == "img:1"
    worker = group["spec"]["worker"]["spec"]["containers"][0]
    assert worker["command"][:3] == ["dask", "worker", "tcp://10.0.0.5:8786"]
    assert "--name" not in worker["command"]
    assert "restartPolicy" not in group["spec"]["worker"]["spec"]  # Deployments restart them
    assert worker["securityContext"]["readOnlyRootFilesystem"] is True
