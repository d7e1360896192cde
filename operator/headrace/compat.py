"""What of Prefect 2's flow and task API Headrace refuses, and why: one place, used by
`@task`, `@flow`, `with_options`, `Flow` attributes and `import headrace`, so a difference is an
error that names it rather than a silent change (docs/prefect-compatibility.md has the table).
"""

from __future__ import annotations

from typing import Any

from headrace.exceptions import NotSupported

# Options accepted only with the value that is Headrace's behaviour anyway.
FIXED_OPTIONS: dict[str, tuple[Any, str]] = {
    "cache_result_in_memory": (
        True,
        "results always stay in memory for the run that made them; "
        "persist_result=True also writes them to result storage",
    ),
}

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


def refuse_options(kind: str, options: dict[str, Any]) -> None:
    """Raise NotSupported for a Prefect option given a value Headrace cannot honour,
    TypeError for an option neither has."""
    for name, value in options.items():
        fixed = FIXED_OPTIONS.get(name)
        if fixed is None:
            raise TypeError(f"@{kind}() got an unexpected option {name!r}")
        if value is not None and value != fixed[0]:
            raise NotSupported(f"@{kind}({name}={value!r}) is not supported: {fixed[1]}")


def refuse_name(where: str, name: str, table: dict[str, str]) -> NotSupported | None:
    reason = table.get(name)
    if reason is None:
        return None
    return NotSupported(f"{where}.{name} is Prefect 2's, not Headrace's: {reason}")
