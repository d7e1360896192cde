"""The custom resources, as pydantic models: the single source of the CRD YAML in `crds/`."""

from headrace.crd.models import (
    GROUP,
    VERSION,
    Condition,
    Deployment,
    DeploymentSpec,
    DeploymentStatus,
    FlowRun,
    FlowRunSpec,
    FlowRunStatus,
    FlowSpec,
)

__all__ = [
    "GROUP",
    "VERSION",
    "Condition",
    "Deployment",
    "DeploymentSpec",
    "DeploymentStatus",
    "FlowRun",
    "FlowRunSpec",
    "FlowRunStatus",
    "FlowSpec",
]
