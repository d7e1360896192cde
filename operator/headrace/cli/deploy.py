"""`headrace deploy`: a Deployment manifest for a flow, printed for GitOps or applied.

The parameter defaults and the parameter schema come from the flow's own signature, so the
operator can refuse bad parameters before any pod starts.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import create_model

from headrace.cli.loader import load_flow
from headrace.crd.models import GROUP, VERSION, DeploymentSpec
from headrace.flows import Flow

# Words YAML 1.1 readers (kubectl among them) take for booleans: a parameter named `n` or
# `on` must stay a string key, so such strings are written quoted.
_YAML11_BOOLS = frozenset(
    [
        "y",
        "Y",
        "yes",
        "Yes",
        "YES",
        "n",
        "N",
        "no",
        "No",
        "NO",
        "on",
        "On",
        "ON",
        "off",
        "Off",
        "OFF",
        "true",
        "True",
        "TRUE",
        "false",
        "False",
        "FALSE",
    ]
)


class _Manifest(yaml.SafeDumper):
    def represent_str(self, data: str) -> yaml.ScalarNode:
        if data in _YAML11_BOOLS:
            return self.represent_scalar("tag:yaml.org,2002:str", data, style='"')
        return super().represent_str(data)


_Manifest.add_representer(str, _Manifest.represent_str)


def parameter_schema(flow: Flow[Any, Any]) -> dict[str, Any]:
    """JSON schema of the flow's parameters, from their annotations (pydantic)."""
    fields: dict[str, Any] = {}
    extra = False
    for param in flow.signature.signature.parameters.values():
        if param.kind is param.VAR_KEYWORD:
            extra = True
            continue
        if param.kind is param.VAR_POSITIONAL:
            continue
        annotation = Any if param.annotation is inspect.Parameter.empty else param.annotation
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (annotation, default)
    model = create_model(f"{flow.name}-parameters", **fields)
    schema: dict[str, Any] = model.model_json_schema()
    schema.pop("title", None)
    if not extra:
        schema["additionalProperties"] = False
    return schema


def defaults(flow: Flow[Any, Any]) -> dict[str, Any]:
    found = {}
    for param in flow.signature.signature.parameters.values():
        if param.default is not inspect.Parameter.empty:
            found[param.name] = param.default
    return found


def build_manifest(
    entrypoint: str,
    name: str,
    image: str,
    namespace: str | None = None,
    path_in_image: str | None = None,
    version: str | None = None,
    parameters: dict[str, Any] | None = None,
    cron: str | None = None,
    timezone: str | None = None,
    interval: int | None = None,
    timeout: int | None = None,
) -> dict[str, Any]:
    flow = load_flow(entrypoint)
    location, _, attribute = entrypoint.rpartition(":")
    if location.endswith(".py"):
        location = path_in_image or f"/opt/flows/{Path(location).name}"
    spec: dict[str, Any] = {
        "image": image,
        "entrypoint": f"{location}:{attribute}",
        "parameters": {**defaults(flow), **(parameters or {})},
        "parameterSchema": parameter_schema(flow),
    }
    if version or flow.version:
        spec["version"] = version or flow.version
    if timeout or flow.timeout_seconds:
        spec["timeoutSeconds"] = timeout or int(flow.timeout_seconds or 0)
    if cron or interval:
        schedule: dict[str, Any] = {"cron": cron} if cron else {"intervalSeconds": interval}
        if timezone:
            schedule["timezone"] = timezone
        spec["schedule"] = schedule
    DeploymentSpec.model_validate(spec)  # the same checks the API server will make
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": spec,
    }


def apply_manifest(manifest: dict[str, Any], namespace: str | None) -> str:
    """Create the Deployment, or replace the spec of the one with that name."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from headrace.sources import connect

    api_client, namespace = connect(namespace or manifest["metadata"].get("namespace"))
    api = client.CustomObjectsApi(api_client)
    name = manifest["metadata"]["name"]
    try:
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, "deployments", manifest)
        return f"deployment.{GROUP}/{name} created in {namespace}"
    except ApiException as error:
        if error.status != 409:
            raise
    api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "deployments",
        name,
        {"spec": manifest["spec"]},
        _content_type="application/merge-patch+json",
    )
    return f"deployment.{GROUP}/{name} configured in {namespace}"


def deploy(manifest: dict[str, Any], apply: bool, namespace: str | None) -> int:
    if not apply:
        sys.stdout.write(yaml.dump(manifest, Dumper=_Manifest, sort_keys=False))
        return 0
    print(apply_manifest(manifest, namespace))
    return 0
