"""Prefect 2's `run_deployment`: a run of a Deployment, made and followed from Python.

Prefect creates a flow run on its server and polls it. Headrace creates a `FlowRun` resource
that names the Deployment, in the namespace of the pod it is called in (or the kubeconfig's),
and polls its status. The operator runs it like any other. From a flow pod, that needs the
API token of the run's ServiceAccount (`pod.automountServiceAccountToken: true`), and that
account needs `get` on deployments and `create` and `get` on flowruns (README).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from headrace.crd.models import GROUP, PARENT_FLOW_RUN_ANNOTATION, TAGS_ANNOTATION, VERSION
from headrace.engine.context import current_flow_run, current_task_run, wants_coroutine
from headrace.exceptions import NotSupported, ObjectNotFound
from headrace.logging import record_owner
from headrace.sources import connect
from headrace.states import FINAL_STATES, FLOWRUN_STATE_TYPES, State, StateType

logger = logging.getLogger("headrace.deployments")

MIN_POLL_SECONDS = 0.1

# A FlowRun's name: a DNS subdomain, as Kubernetes requires of every object's.
_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


@dataclass(frozen=True)
class DeploymentFlowRun:
    """The FlowRun as last read: what Prefect 2's returned `FlowRun` is mostly read for."""

    id: uuid.UUID  # the FlowRun's uid
    name: str
    namespace: str
    deployment_name: str
    parameters: dict[str, Any]
    state: State[Any]
    tags: list[str] = field(default_factory=list)

    @property
    def state_name(self) -> str:
        return self.state.name

    @property
    def state_type(self) -> StateType:
        return self.state.type


def run_deployment(
    name: str | uuid.UUID,
    client: Any = None,
    parameters: dict[str, Any] | None = None,
    scheduled_time: Any = None,
    flow_run_name: str | None = None,
    timeout: float | None = None,
    poll_interval: float | None = 5,
    tags: Iterable[str] | None = None,
    idempotency_key: str | None = None,
    work_queue_name: str | None = None,
    as_subflow: bool | None = True,
    *,
    namespace: str | None = None,
    _sync: bool | None = None,
) -> DeploymentFlowRun:
    """Create a FlowRun of Deployment `name` (`"flow/deployment"` as in Prefect, or the
    Deployment's name) and wait for its end, at most `timeout` seconds (None: no limit; 0:
    do not wait). Returns the run as last seen, whatever its state, as Prefect does.

    Inside a flow (`as_subflow`), the FlowRun is annotated with the flow run that made it.
    `idempotency_key` names the FlowRun after it, so a retried call finds the first run
    instead of making another. Headrace only: `namespace` (default: this pod's)."""
    if client is not None:
        raise NotSupported(
            "run_deployment(client=...): there is no Prefect client; Headrace "
            "uses the kubeconfig, or the pod's ServiceAccount token"
        )
    if scheduled_time is not None:
        raise NotSupported(
            "run_deployment(scheduled_time=...): a FlowRun starts when it is made; schedule "
            "runs with the Deployment's spec.schedule"
        )
    if work_queue_name is not None:
        raise NotSupported("run_deployment(work_queue_name=...): the operator runs every FlowRun")
    if timeout is not None and timeout < 0:
        raise ValueError("`timeout` cannot be negative")
    deployment = str(name).rpartition("/")[2]
    body = build_flow_run(
        deployment,
        dict(parameters or {}),
        name=flow_run_name,
        idempotency_key=idempotency_key,
        tags=list(tags or ()),
        parent=_parent() if as_subflow else None,
    )
    # At most ten reads a second, whatever it is given: the API server is shared.
    wait = (timeout, max(MIN_POLL_SECONDS, 5.0 if poll_interval is None else poll_interval))
    if wants_coroutine(_sync):  # Prefect's is async: it runs in a thread, not in the loop
        return cast("DeploymentFlowRun", asyncio.to_thread(_run, body, namespace, *wait))
    return _run(body, namespace, *wait)


def build_flow_run(
    deployment: str,
    parameters: dict[str, Any],
    *,
    name: str | None = None,
    idempotency_key: str | None = None,
    tags: list[str] | None = None,
    parent: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The FlowRun `run_deployment` creates. Named `name`, else after the idempotency key
    (the same key, the same name), else by the API server from the Deployment's name."""
    if not deployment:
        raise ValueError("run_deployment needs a Deployment's name, as 'flow/deployment'")
    metadata: dict[str, Any] = {}
    if name is not None:
        if len(name) > 253 or not _NAME.fullmatch(name):
            raise ValueError(
                f"flow_run_name {name!r} cannot name a FlowRun: use lowercase letters, "
                "numbers, '-' and '.', starting and ending with a letter or number"
            )
        metadata["name"] = name
    elif idempotency_key is not None:
        digest = hashlib.sha256(f"{deployment}\0{idempotency_key}".encode()).hexdigest()[:16]
        metadata["name"] = f"{deployment[:200]}-{digest}"
    else:
        metadata["generateName"] = f"{deployment[:200]}-"
    annotations: dict[str, str] = {}
    if parent is not None:
        annotations[PARENT_FLOW_RUN_ANNOTATION] = json.dumps(
            {"id": parent[0], "name": parent[1]}, sort_keys=True
        )
    if tags:
        annotations[TAGS_ANNOTATION] = json.dumps(sorted(set(tags)))
    if annotations:
        metadata["annotations"] = annotations
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "FlowRun",
        "metadata": metadata,
        "spec": {"deploymentRef": {"name": deployment}, "parameters": parameters},
    }


def flow_run_of(found: dict[str, Any]) -> DeploymentFlowRun:
    """The run a FlowRun resource describes, its status read as a State (a persisted result
    loads from its location with `state.result()`)."""
    meta = found.get("metadata") or {}
    spec = found.get("spec") or {}
    status = found.get("status") or {}
    state_name = status.get("state") or "Scheduled"
    state: State[Any] = State(
        FLOWRUN_STATE_TYPES.get(state_name, StateType.SCHEDULED),
        name=state_name,
        message=status.get("message") or "",
        result_uri=status.get("resultLocation"),
    )
    tags = json.loads((meta.get("annotations") or {}).get(TAGS_ANNOTATION) or "[]")
    return DeploymentFlowRun(
        id=uuid.UUID(meta["uid"]),
        name=meta["name"],
        namespace=meta.get("namespace", ""),
        deployment_name=(spec.get("deploymentRef") or {}).get("name", ""),
        parameters=dict(spec.get("parameters") or {}),
        state=state,
        tags=list(tags),
    )


def _parent() -> tuple[str, str] | None:
    run = current_task_run.get() or current_flow_run.get()
    if run is None:
        return None
    flow_run, _ = record_owner(run)
    return str(flow_run.id), str(flow_run.name)


def _run(
    body: dict[str, Any], namespace: str | None, timeout: float | None, poll_interval: float
) -> DeploymentFlowRun:
    api_client, namespace = connect(namespace)
    api = k8s.CustomObjectsApi(api_client)
    deployment = body["spec"]["deploymentRef"]["name"]
    try:  # a FlowRun of a missing Deployment would wait for it forever
        api.get_namespaced_custom_object(GROUP, VERSION, namespace, "deployments", deployment)
    except ApiException as error:
        if error.status == 404:
            raise ObjectNotFound(
                f"Deployment {deployment!r} not found in namespace {namespace!r}"
            ) from None
        raise
    found = _create(api, namespace, body)
    name = found["metadata"]["name"]
    logger.info("Created FlowRun %s of Deployment %s in %s", name, deployment, namespace)
    deadline = None if timeout is None else time.monotonic() + timeout
    while (found.get("status") or {}).get("state") not in FINAL_STATES:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            break
        time.sleep(poll_interval if left is None else min(poll_interval, left))
        found = cast(
            "dict[str, Any]",
            api.get_namespaced_custom_object(GROUP, VERSION, namespace, "flowruns", name),
        )
    return flow_run_of(found)


def _create(api: k8s.CustomObjectsApi, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    """Create the FlowRun; one made before with the same idempotency key is that run."""
    try:
        return cast(
            "dict[str, Any]",
            api.create_namespaced_custom_object(GROUP, VERSION, namespace, "flowruns", body),
        )
    except ApiException as error:
        name = body["metadata"].get("name")
        if error.status != 409 or name is None:
            raise
    found = cast(
        "dict[str, Any]",
        api.get_namespaced_custom_object(GROUP, VERSION, namespace, "flowruns", name),
    )
    if (found.get("spec") or {}).get("deploymentRef") != body["spec"]["deploymentRef"]:
        raise ValueError(f"FlowRun {name!r} exists already, and is not of this Deployment")
    return found


__all__ = ["DeploymentFlowRun", "build_flow_run", "flow_run_of", "run_deployment"]
