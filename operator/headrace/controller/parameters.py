"""A Deployment's parameter schema, and the parameters of its runs checked against it."""

from __future__ import annotations

from typing import Any

from headrace.controller.outcome import bounded


class ParameterError(ValueError):
    """The schema or the parameters are refused; `reason` is the condition reason."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def check_parameters(
    deployment: str, schema: dict[str, Any] | None, parameters: dict[str, Any]
) -> None:
    """Refuse parameters the Deployment's schema rejects, naming each bad parameter."""
    if not schema:
        return
    from referencing.exceptions import Unresolvable  # noqa: PLC0415 (see parameter_validator)

    validator = parameter_validator(deployment, schema)
    try:
        errors = sorted(validator.iter_errors(parameters), key=lambda e: list(e.path))
    except Unresolvable as error:
        raise ParameterError(
            f"Deployment {deployment!r}: spec.parameterSchema has a $ref that cannot be "
            f"resolved ({error}); only references inside the schema (#/...) are followed",
            "InvalidParameterSchema",
        ) from None
    if errors:
        parts = []
        for found in errors:
            where = ".".join(str(part) for part in found.path)
            parts.append(f"parameter {where!r}: {found.message}" if where else found.message)
        raise ParameterError(
            f"invalid parameters for Deployment {deployment!r}: " + "; ".join(parts),
            "InvalidParameters",
        )


def parameter_validator(deployment: str, schema: dict[str, Any]) -> Any:
    """A validator for a Deployment's parameter schema; PlanError if the schema is invalid.

    Its registry is empty, so a `$ref` to a URL is never fetched: the operator makes no
    requests on a user's behalf.
    """
    # jsonschema loads on the first Deployment with a schema, not at every operator start.
    from jsonschema import Draft202012Validator  # noqa: PLC0415
    from jsonschema.exceptions import SchemaError  # noqa: PLC0415
    from referencing import Registry  # noqa: PLC0415

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        where = "/".join(str(part) for part in error.path) or "(top)"
        raise ParameterError(
            f"Deployment {deployment!r}: spec.parameterSchema is not a valid JSON schema at "
            f"{where}: {bounded(error.message, 300)}",
            "InvalidParameterSchema",
        ) from None
    return Draft202012Validator(schema, registry=Registry())
