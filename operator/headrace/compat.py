"""Prefect 2 names Headrace does not provide, and why: one place, read by `Flow` attributes and
`import headrace`, so using one is an error that names the reason rather than a bare
AttributeError (docs/prefect-compatibility.md has the whole table).
"""

from __future__ import annotations

from headrace.exceptions import NotSupported

NAMES: dict[str, str] = {
    "get_client": "there is no Prefect API server; runs are Kubernetes FlowRun resources",
    "serve": "flows are served by Deployment resources (see README 'On Kubernetes')",
    "deploy": "deploy with a Deployment resource or the Helm chart (see README)",
    "Runner": "flows are served by Deployment resources (see README 'On Kubernetes')",
    "Manifest": "deployments are Deployment resources, not manifests",
    "pause_flow_run": "runs cannot pause: Headrace has no input or resume API",
    "resume_flow_run": "runs cannot pause: Headrace has no input or resume API",
    "suspend_flow_run": "runs cannot pause: Headrace has no input or resume API",
}

FLOW_METHODS: dict[str, str] = {
    "serve": NAMES["serve"],
    "deploy": NAMES["deploy"],
    "to_deployment": NAMES["deploy"],
    "from_source": "load flows from the image a Deployment names, not from a source URL",
    "visualize": "no flow visualisation; see runs in `headrace runs` or the UI",
    "serialize_parameters": "the operator serialises a FlowRun's parameters as JSON itself",
}


def refuse_name(where: str, name: str, table: dict[str, str]) -> NotSupported | None:
    reason = table.get(name)
    if reason is None:
        return None
    return NotSupported(f"{where}.{name} is Prefect 2's, not Headrace's: {reason}")
