"""The pod for one attempt of a FlowRun: deterministic name, owner, labels, secure defaults.

Parameters travel as one JSON environment variable and the command is an argv list, so no
value from a manifest ever passes through a shell.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from headrace.controller.config import OperatorConfig
from headrace.crd.models import GROUP, VERSION, FlowSpec

LABEL_RUN = f"{GROUP}/flow-run"
LABEL_ATTEMPT = f"{GROUP}/attempt"
LABEL_DEPLOYMENT = f"{GROUP}/deployment"
CONTAINER = "flow"
# Keeps an ended pod readable until the operator has recorded its exit code and reason.
OUTCOME_FINALIZER = f"{GROUP}/attempt-outcome"
TERMINATION_PATH = "/dev/termination-log"


def label_value(name: str) -> str:
    """Names up to 63 characters are label values as they are; longer ones get a hash tail."""
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{name[:52]}-{digest}"


def pod_name(run_name: str, attempt: int) -> str:
    suffix = f"-{attempt}"
    if len(run_name) + len(suffix) <= 253:
        return run_name + suffix
    return label_value(run_name) + suffix


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
    deadline: float | None
    deployment: str | None
    deployment_version: str | None


def storage_urls(result_storage: str) -> tuple[str, str]:
    base = result_storage.rstrip("/")
    return f"{base}/results", f"{base}/runs"


def build_pod(plan: RunPlan, config: OperatorConfig) -> dict[str, Any]:
    overrides = plan.flow.pod
    results_url, records_url = storage_urls(plan.result_storage)
    env: list[dict[str, Any]] = [
        {"name": "HEADRACE_FLOW_RUN_ID", "value": plan.run_uid},
        {"name": "HEADRACE_FLOW_RUN_NAME", "value": plan.run_name},
        {"name": "HEADRACE_PARAMETERS", "value": json.dumps(plan.parameters)},
        {"name": "HEADRACE_RESULT_STORAGE", "value": results_url},
        {"name": "HEADRACE_RECORD_STORAGE", "value": records_url},
        {"name": "HEADRACE_TERMINATION_MESSAGE_PATH", "value": TERMINATION_PATH},
        {"name": "HEADRACE_ATTEMPT", "value": str(plan.attempt)},
        {"name": "HEADRACE_HOME", "value": "/tmp/headrace"},
    ]
    if plan.deadline is not None:
        env.append({"name": "HEADRACE_DEADLINE", "value": f"{plan.deadline:.3f}"})
    if plan.deployment:
        env.append({"name": "HEADRACE_DEPLOYMENT_NAME", "value": plan.deployment})
    if plan.deployment_version:
        env.append({"name": "HEADRACE_DEPLOYMENT_VERSION", "value": plan.deployment_version})
    if overrides and overrides.env:
        env.extend(item.model_dump(by_alias=True, exclude_none=True) for item in overrides.env)

    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": plan.flow.image,
        "command": [*config.engine_command, "run", plan.flow.entrypoint, "--no-progress"],
        "env": env,
        "terminationMessagePath": TERMINATION_PATH,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
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
    grace = config.default_grace_seconds
    if overrides and overrides.termination_grace_period_seconds is not None:
        grace = overrides.termination_grace_period_seconds

    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": grace,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "fsGroup": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
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

    metadata: dict[str, Any] = {
        "name": pod_name(plan.run_name, plan.attempt),
        "namespace": plan.namespace,
        "labels": labels,
        "finalizers": [OUTCOME_FINALIZER],
        "ownerReferences": [
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "FlowRun",
                "name": plan.run_name,
                "uid": plan.run_uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    if overrides and overrides.annotations:
        metadata["annotations"] = dict(overrides.annotations)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}
