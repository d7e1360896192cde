"""The Deployment this run came from: `name` and `version`, set by the operator in the pod."""

from __future__ import annotations

from typing import Any

from headrace import settings


def __dir__() -> list[str]:
    return ["name", "version"]


def __getattr__(name: str) -> Any:
    if name == "name":
        return settings.current().deployment_name or None
    if name == "version":
        return settings.current().deployment_version or None
    raise AttributeError(f"headrace.runtime.deployment has no attribute {name!r}")
