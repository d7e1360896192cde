"""Turning pydantic JSON schema into a Kubernetes structural OpenAPI v3 schema.

Kubernetes refuses `$ref`, `anyOf` with null, and `additionalProperties` beside
`properties`, so references are inlined, optional fields unwrapped, and free-form objects
marked `x-kubernetes-preserve-unknown-fields`. A default other than null is kept: the API
server fills it in, and `kubectl explain` shows it.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

_DROP = {"title"}
_VERBATIM = {"x-kubernetes-validations"}  # CEL rules: data, not schema


def structural(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True)
    definitions = raw.pop("$defs", {})
    converted: dict[str, Any] = _convert(raw, definitions)
    return converted


def _convert(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_convert(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = copy.deepcopy(definitions[node["$ref"].split("/")[-1]])
        extra = {key: value for key, value in node.items() if key != "$ref"}
        target.update(extra)
        return _convert(target, definitions)
    if "anyOf" in node:
        options = [option for option in node["anyOf"] if option.get("type") != "null"]
        if len(options) == 1:
            merged = dict(options[0])
            for key, value in node.items():
                if key != "anyOf":
                    merged.setdefault(key, value)
            if "description" in node:
                merged["description"] = node["description"]
            return _convert(merged, definitions)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP or (key == "default" and value is None):
            continue  # a null default is no default: the field is just left out
        if key == "properties":
            out[key] = {name: _convert(prop, definitions) for name, prop in value.items()}
        elif key == "const":
            out["enum"] = [value]
        elif key in _VERBATIM:
            out[key] = value
        else:
            out[key] = _convert(value, definitions)
    if "properties" in out:
        out.pop("additionalProperties", None)  # unknown fields: rejected by strict validation
    elif out.get("additionalProperties") is True or (
        out.get("type") == "object" and "additionalProperties" not in out
    ):
        out.pop("additionalProperties", None)
        out["x-kubernetes-preserve-unknown-fields"] = True
    if not out.get("type") and not any(k in out for k in ("properties", "items", "enum")):
        out["x-kubernetes-preserve-unknown-fields"] = True
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    return out
