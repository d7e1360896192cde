"""The Dask cluster of a FlowRun with `spec.taskRunner.dask`: a scheduler pod, a Service in
front of it (scheduler and dashboard ports), and worker pods, all of the flow's image.

Plain pods, made by the operator: the dask-kubernetes operator's `DaskCluster` addresses the
scheduler by its Service's DNS name, which needs cluster DNS and kube-proxy. Workers and the
flow pod here are given the scheduler pod's own address instead, which any cluster routes.
Every object is owned by the FlowRun (deleted with it) and the operator deletes them when
the run ends, times out or is cancelled. Pure functions: the reconciler makes and deletes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from headrace.controller.podspec import (
    LABEL_RUN,
    RunPlan,
    container_security,
    escape_expansion,
    label_value,
    owner_reference,
    pod_spec,
)
from headrace.crd.models import GROUP, DaskSpec
from headrace.settings import Settings

LABEL_CLUSTER = f"{GROUP}/dask-cluster"
SCHEDULER_PORT = 8786
DASHBOARD_PORT = 8787
_NAME_MAX = 63 - len("-scheduler")  # the longest pod name suffix: pod names stay hostnames


@dataclass(frozen=True)
class DaskNames:
    cluster: str
    scheduler: str
    service: str
    workers: tuple[str, ...]


def dask_names(run_name: str, run_uid: str, workers: int) -> DaskNames:
    """`<run>-<uid prefix>-dask`, cut and hashed like pod names when long; as a Service name
    it must also be a DNS label (no dots, starting with a letter)."""
    suffix = f"-{run_uid.replace('-', '')[:6]}-dask"
    head = run_name.replace(".", "-")
    if len(head) + len(suffix) > _NAME_MAX:
        digest = hashlib.sha256(run_name.encode()).hexdigest()[:8]
        head = f"{head[: _NAME_MAX - len(suffix) - len(digest) - 1].rstrip('-')}-{digest}"
    if not head[:1].isalpha():
        head = f"r{head}"[: _NAME_MAX - len(suffix)]
    cluster = head + suffix
    return DaskNames(
        cluster=cluster,
        scheduler=f"{cluster}-scheduler",
        service=cluster,
        workers=tuple(f"{cluster}-worker-{index}" for index in range(workers)),
    )


def scheduler_address(pod: dict[str, Any]) -> str | None:
    """`tcp://<pod IP>:8786` once the scheduler pod runs, else None."""
    status = pod.get("status") or {}
    ip = status.get("podIP")
    if status.get("phase") != "Running" or not ip:
        return None
    return f"tcp://{ip}:{SCHEDULER_PORT}"


def _labels(plan: RunPlan, cluster: str, component: str) -> dict[str, str]:
    overrides = plan.flow.pod
    labels = {
        LABEL_RUN: label_value(plan.run_name),
        LABEL_CLUSTER: cluster,
        "app.kubernetes.io/managed-by": "headrace",
        "app.kubernetes.io/component": component,
    }
    if overrides and overrides.labels:
        labels = {**overrides.labels, **labels}
    return labels


def _pod(
    plan: RunPlan,
    config: Settings,
    name: str,
    component: str,
    cluster: str,
    command: list[str],
    env: dict[str, str],
    resources: dict[str, Any] | None,
) -> dict[str, Any]:
    overrides = plan.flow.pod
    container: dict[str, Any] = {
        "name": component,
        "image": plan.flow.image,
        "command": [escape_expansion(part) for part in command],
        "env": [{"name": key, "value": escape_expansion(value)} for key, value in env.items()],
        "securityContext": container_security(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "ports": [{"name": "dask", "containerPort": SCHEDULER_PORT}],
    }
    if overrides and overrides.env:
        container["env"].extend(
            item.model_dump(by_alias=True, exclude_none=True) for item in overrides.env
        )
    if plan.storage_secret:  # task code on a worker reads what the flow's code can
        container["envFrom"] = [{"secretRef": {"name": plan.storage_secret}}]
    if resources:
        container["resources"] = resources
    if overrides and overrides.image_pull_policy:
        container["imagePullPolicy"] = overrides.image_pull_policy
    spec = pod_spec(container, 5, plan, config)
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": plan.namespace,
        "labels": _labels(plan, cluster, component),
        "ownerReferences": [owner_reference(plan)],
    }
    if overrides and overrides.annotations:
        metadata["annotations"] = dict(overrides.annotations)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


# Dask reads its configuration from these; a read-only root filesystem leaves only /tmp.
_DASK_ENV = {"DASK_TEMPORARY_DIRECTORY": "/tmp/dask", "HEADRACE_HOME": "/tmp/headrace"}


def build_dask_scheduler_pod(plan: RunPlan, dask: DaskSpec, config: Settings) -> dict[str, Any]:
    names = dask_names(plan.run_name, plan.run_uid, dask.workers)
    command = [
        "dask",
        "scheduler",
        "--port",
        str(SCHEDULER_PORT),
        "--dashboard-address",
        f":{DASHBOARD_PORT}",
    ]
    env = {
        **_DASK_ENV,
        # A task whose worker dies is the engine's to retry (Crashed, per the task's
        # retries), not Dask's to rerun behind its back.
        "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0",
    }
    pod = _pod(plan, config, names.scheduler, "dask-scheduler", names.cluster, command, env, None)
    pod["spec"]["containers"][0]["ports"].append(
        {"name": "dashboard", "containerPort": DASHBOARD_PORT}
    )
    return pod


def build_dask_worker_pod(
    plan: RunPlan, dask: DaskSpec, index: int, address: str, config: Settings
) -> dict[str, Any]:
    """Worker `index`, joining the scheduler at `address`. Dask takes the container's memory
    limit as its own (it reads the cgroup)."""
    names = dask_names(plan.run_name, plan.run_uid, dask.workers)
    name = names.workers[index]
    command = [
        "dask",
        "worker",
        address,
        "--name",
        name,
        "--nthreads",
        str(dask.threads_per_worker),
        "--nworkers",
        "1",
        "--local-directory",
        "/tmp/dask",
    ]
    resources = (
        dask.resources.model_dump(by_alias=True, exclude_none=True) if dask.resources else None
    )
    return _pod(plan, config, name, "dask-worker", names.cluster, command, _DASK_ENV, resources)


def build_dask_service(plan: RunPlan, dask: DaskSpec) -> dict[str, Any]:
    """The Service in front of the scheduler: its port and the dashboard's."""
    names = dask_names(plan.run_name, plan.run_uid, dask.workers)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": names.service,
            "namespace": plan.namespace,
            "labels": _labels(plan, names.cluster, "dask-scheduler"),
            "ownerReferences": [owner_reference(plan)],
        },
        "spec": {
            "type": "ClusterIP",
            "selector": {
                LABEL_CLUSTER: names.cluster,
                "app.kubernetes.io/component": "dask-scheduler",
            },
            "ports": [
                {"name": "dask", "port": SCHEDULER_PORT, "targetPort": SCHEDULER_PORT},
                {"name": "dashboard", "port": DASHBOARD_PORT, "targetPort": DASHBOARD_PORT},
            ],
        },
    }


# -- with the dask-kubernetes operator (HEADRACE_DASK_CLUSTERS=dask-kubernetes) -----------------
DASK_GROUP = "kubernetes.dask.org"
DASK_VERSION = "v1"
DASK_CLUSTER_LABEL = "dask.org/cluster-name"


def _container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    container: dict[str, Any] = dict(pod["spec"]["containers"][0])
    container["name"] = name
    return container


def _pod_spec(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, Any]:
    spec = dict(pod["spec"])
    spec["containers"] = [container]
    spec.pop("restartPolicy")  # the dask-kubernetes operator runs them in Deployments
    return spec


def build_daskcluster(plan: RunPlan, dask: DaskSpec, config: Settings) -> dict[str, Any]:
    """A `DaskCluster` with the scheduler pod and Service above and no workers of its own:
    its operator would point workers at the Service's DNS name, which not every cluster
    resolves; the workers come in a `DaskWorkerGroup` made once the scheduler has an address."""
    names = dask_names(plan.run_name, plan.run_uid, dask.workers)
    scheduler = build_dask_scheduler_pod(plan, dask, config)
    service = build_dask_service(plan, dask)
    worker = build_dask_worker_pod(plan, dask, 0, "tcp://0.0.0.0:0", config)
    return {
        "apiVersion": f"{DASK_GROUP}/{DASK_VERSION}",
        "kind": "DaskCluster",
        "metadata": {
            "name": names.cluster,
            "namespace": plan.namespace,
            "labels": _labels(plan, names.cluster, "dask-cluster"),
            "ownerReferences": [owner_reference(plan)],
        },
        "spec": {
            "scheduler": {
                "spec": _pod_spec(scheduler, _container(scheduler, "scheduler")),
                "service": {
                    "type": "ClusterIP",
                    "selector": {
                        DASK_CLUSTER_LABEL: names.cluster,
                        "dask.org/component": "scheduler",
                    },
                    # by name: its CRD takes targetPort as a string only
                    "ports": [
                        {**port, "targetPort": port["name"]} for port in service["spec"]["ports"]
                    ],
                },
            },
            "worker": {"replicas": 0, "spec": _pod_spec(worker, _container(worker, "worker"))},
        },
    }


def build_daskworkergroup(
    plan: RunPlan, dask: DaskSpec, address: str, config: Settings
) -> dict[str, Any]:
    """The run's workers, joining the scheduler at its pod's `address`."""
    names = dask_names(plan.run_name, plan.run_uid, dask.workers)
    worker = build_dask_worker_pod(plan, dask, 0, address, config)
    container = _container(worker, "worker")
    command = list(container["command"])
    at = command.index("--name")
    del command[at : at + 2]  # the group's pods are named by their Deployment
    container["command"] = command
    return {
        "apiVersion": f"{DASK_GROUP}/{DASK_VERSION}",
        "kind": "DaskWorkerGroup",
        "metadata": {
            "name": f"{names.cluster}-workers",
            "namespace": plan.namespace,
            "labels": {
                **_labels(plan, names.cluster, "dask-worker"),
                DASK_CLUSTER_LABEL: names.cluster,
            },
            "ownerReferences": [owner_reference(plan)],
        },
        "spec": {
            "cluster": names.cluster,
            "worker": {"replicas": dask.workers, "spec": _pod_spec(worker, container)},
        },
    }
