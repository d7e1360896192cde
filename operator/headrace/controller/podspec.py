"""The pod for one attempt of a FlowRun: deterministic name, owner, labels, secure defaults.

The container runs the engine's hidden entry command (`headrace.pod_protocol`). Parameters
travel as one JSON environment variable and the command is an argv list, so no
value from a manifest ever passes through a shell. Every `$` the operator writes into the
command or its own variables is doubled, so the kubelet's `$(VAR)` expansion cannot splice
another variable (a Secret's value, say) into them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from headrace.crd.models import GROUP, VERSION, DaskSpec, FlowSpec
from headrace.pod_protocol import ENTRY_COMMAND, TERMINATION_PATH, encode_parameters
from headrace.settings import Settings

LABEL_RUN = f"{GROUP}/flow-run"
LABEL_ATTEMPT = f"{GROUP}/attempt"
LABEL_DEPLOYMENT = f"{GROUP}/deployment"
CONTAINER = "flow"
# Keeps an ended pod readable until the operator has recorded its exit code and reason.
OUTCOME_FINALIZER = f"{GROUP}/attempt-outcome"


def label_value(name: str) -> str:
    """Names up to 63 characters are label values as they are; longer ones get a hash tail."""
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{name[:52]}-{digest}"


_POD_NAME_MAX = 63  # so the pod's hostname is its name


def pod_name(run_name: str, run_uid: str, attempt: int) -> str:
    """`<run>-<uid prefix>-<attempt>`: two FlowRuns never share a pod name, even after a
    shortened name (a long one is cut and gets a hash of the whole name)."""
    suffix = f"-{run_uid.replace('-', '')[:6]}-{attempt}"
    if len(run_name) + len(suffix) <= _POD_NAME_MAX:
        return run_name + suffix
    digest = hashlib.sha256(run_name.encode()).hexdigest()[:8]
    head = run_name[: _POD_NAME_MAX - len(suffix) - len(digest) - 1].rstrip(".-")
    return f"{head}-{digest}{suffix}"


def owns(run_uid: str, obj: dict[str, Any]) -> bool:
    """Whether the FlowRun with this uid is `obj`'s controller: a name alone proves nothing."""
    return any(
        ref.get("uid") == run_uid and ref.get("controller")
        for ref in obj.get("metadata", {}).get("ownerReferences") or []
    )


def escape_expansion(text: str) -> str:
    """Make the kubelet's `$(VAR)` expansion leave `text` as it is (`$$` stands for `$`)."""
    return text.replace("$", "$$")


@dataclass(frozen=True)
class RunPlan:
    """Everything the pod of one attempt is made from, resolved from FlowRun and Deployment."""

    namespace: str
    run_name: str
    run_uid: str
    attempt: int
    flow: FlowSpec
    parameters: dict[str, Any]
    result_storage: str
    storage_secret: str | None
    deadline: float | None
    deployment: str | None
    deployment_version: str | None
    scheduled_time: str | None = None  # ISO 8601: the schedule's instant, else the creation
    dask: DaskSpec | None = None  # spec.taskRunner.dask: a Dask cluster made for the run
    dask_address: str | None = None  # its scheduler, once it runs (the flow pod's runner)


def container_security() -> dict[str, Any]:
    """The flow container's confinement: no privileges to gain, nothing written but /tmp."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def pod_spec(
    container: dict[str, Any], grace: int, plan: RunPlan, config: Settings
) -> dict[str, Any]:
    """The spec of every pod made for a run (the flow's, and its Dask cluster's): one
    container, no API token unless the run asks, no service links, the flow account unless
    the run names one, and the run's node selector and tolerations."""
    overrides = plan.flow.pod
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": grace,
        "automountServiceAccountToken": bool(
            overrides and overrides.automount_service_account_token
        ),
        "enableServiceLinks": False,
        "securityContext": pod_security(),
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    service_account = (
        overrides.service_account_name if overrides else None
    ) or config.flow_service_account
    if service_account:
        spec["serviceAccountName"] = service_account
    if overrides and overrides.node_selector:
        spec["nodeSelector"] = overrides.node_selector
    if overrides and overrides.tolerations:
        spec["tolerations"] = overrides.tolerations
    return spec


def pod_security() -> dict[str, Any]:
    """The pod's: a fixed non-root user, the runtime's default seccomp profile."""
    return {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "fsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def owner_reference(plan: RunPlan) -> dict[str, Any]:
    """The FlowRun as the controller of what is made for it: deleted with it."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "FlowRun",
        "name": plan.run_name,
        "uid": plan.run_uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pod_local(storage_url: str) -> bool:
    """Whether results written there stay inside the pod (flow pods mount no volumes)."""
    return "://" not in storage_url or storage_url.startswith("file://")


def storage_urls(result_storage: str) -> tuple[str, str]:
    base = result_storage.rstrip("/")
    return f"{base}/results", f"{base}/runs"


def build_pod(plan: RunPlan, config: Settings) -> dict[str, Any]:
    """The attempt's pod; ValueError if the parameters cannot travel in it."""
    overrides = plan.flow.pod
    results_url, records_url = storage_urls(plan.result_storage)
    own = {
        "HEADRACE_FLOW_RUN_ID": plan.run_uid,
        "HEADRACE_FLOW_RUN_NAME": plan.run_name,
        "HEADRACE_PARAMETERS": encode_parameters(plan.parameters),
        "HEADRACE_RESULT_STORAGE": results_url,
        "HEADRACE_RECORD_STORAGE": records_url,
        "HEADRACE_TERMINATION_MESSAGE_PATH": TERMINATION_PATH,
        "HEADRACE_ATTEMPT": str(plan.attempt),
        "HEADRACE_HOME": "/tmp/headrace",
    }
    if plan.deadline is not None:
        own["HEADRACE_DEADLINE"] = f"{plan.deadline:.3f}"
    if plan.deployment:
        own["HEADRACE_DEPLOYMENT_NAME"] = plan.deployment
    if plan.deployment_version:
        own["HEADRACE_DEPLOYMENT_VERSION"] = plan.deployment_version
    if plan.scheduled_time:
        own["HEADRACE_SCHEDULED_START_TIME"] = plan.scheduled_time
    if plan.dask_address:
        own["HEADRACE_DASK_ADDRESS"] = plan.dask_address
    env: list[dict[str, Any]] = [
        {"name": name, "value": escape_expansion(value)} for name, value in own.items()
    ]
    if overrides and overrides.env:
        env.extend(item.model_dump(by_alias=True, exclude_none=True) for item in overrides.env)
    command = [*config.engine_command, ENTRY_COMMAND, plan.flow.entrypoint]

    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": plan.flow.image,
        "command": [escape_expansion(part) for part in command],
        "env": env,
        "terminationMessagePath": TERMINATION_PATH,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": container_security(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    if plan.storage_secret:
        # The storage's credentials: into the environment, never through the operator.
        container["envFrom"] = [{"secretRef": {"name": plan.storage_secret}}]
    if overrides and overrides.resources:
        container["resources"] = overrides.resources.model_dump(by_alias=True, exclude_none=True)
    if overrides and overrides.image_pull_policy:
        container["imagePullPolicy"] = overrides.image_pull_policy

    labels = {
        LABEL_RUN: label_value(plan.run_name),
        LABEL_ATTEMPT: str(plan.attempt),
        "app.kubernetes.io/managed-by": "headrace",
        "app.kubernetes.io/component": "flow-run",
    }
    if plan.deployment:
        labels[LABEL_DEPLOYMENT] = label_value(plan.deployment)
    if overrides and overrides.labels:
        labels = {**overrides.labels, **labels}
    grace = config.grace_seconds
    if overrides and overrides.termination_grace_period_seconds is not None:
        grace = overrides.termination_grace_period_seconds

    spec = pod_spec(container, grace, plan, config)

    metadata: dict[str, Any] = {
        "name": pod_name(plan.run_name, plan.run_uid, plan.attempt),
        "namespace": plan.namespace,
        "labels": labels,
        "finalizers": [OUTCOME_FINALIZER],
        "ownerReferences": [owner_reference(plan)],
    }
    if overrides and overrides.annotations:
        metadata["annotations"] = dict(overrides.annotations)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def pod_deadline(pod: dict[str, Any]) -> float | None:
    """The deadline (Unix time) a pod was made with: an adopted attempt keeps the instant its
    engine was told, not one recomputed from the second-rounded creationTimestamp."""
    for container in (pod.get("spec") or {}).get("containers") or []:
        for env in container.get("env") or []:
            if env.get("name") == "HEADRACE_DEADLINE":
                try:
                    return float(env.get("value") or "")
                except ValueError:
                    return None
    return None
