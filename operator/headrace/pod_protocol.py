"""What the operator and the engine in a flow pod agree on, and nothing else.

The operator starts the pod's container as `<HEADRACE_ENGINE_COMMAND> pod-entry ENTRYPOINT`
(`ENTRY_COMMAND`, a command `headrace --help` does not list), with the run's settings in
`HEADRACE_*` variables (`headrace.settings`) and the parameters as one JSON object in
`HEADRACE_PARAMETERS`. The engine leaves its verdict as JSON at
`HEADRACE_TERMINATION_MESSAGE_PATH`, where Kubernetes reads it into the pod's status, so the
flow pod needs no API rights at all. This module imports nothing of the engine: the operator
uses it too.
"""

from __future__ import annotations

import json
from typing import Any, TypedDict

from headrace.results.deep import call_deep

ENTRY_COMMAND = "pod-entry"
TERMINATION_PATH = "/dev/termination-log"
# One environment variable holds at most 128 KiB on Linux (MAX_ARG_STRLEN); leave headroom.
MAX_PARAMETERS_BYTES = 96 * 1024
# Kubernetes keeps at most 4 KiB of a termination message.
MESSAGE_CHARACTERS = 2000


class TerminationMessage(TypedDict, total=False):
    """The engine's verdict, as the operator reads it from the pod's status."""

    state: str  # the flow run's final state name
    message: str
    flowRunId: str
    result: str | None  # URL of the persisted result
    record: str  # URL of the run record
    counts: dict[str, int]  # task runs by state name


def encode_parameters(parameters: dict[str, Any]) -> str:
    """Parameters as the JSON the engine reads, or ValueError naming the size limit."""
    encoded = call_deep(json.dumps, parameters)
    size = len(encoded.encode())
    if size > MAX_PARAMETERS_BYTES:
        raise ValueError(
            f"spec.parameters is {size:,} bytes as JSON; at most {MAX_PARAMETERS_BYTES:,} bytes "
            "fit in the flow pod's environment. Pass large inputs by reference (e.g. an s3:// "
            "URL parameter the flow reads)"
        )
    return encoded


def decode_parameters(text: str) -> dict[str, Any]:
    """The parameters `encode_parameters` wrote; ValueError if they are not a JSON object."""
    if not text:
        return {}
    try:
        value = call_deep(json.loads, text)
    except json.JSONDecodeError as error:
        raise ValueError(f"HEADRACE_PARAMETERS is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise ValueError("HEADRACE_PARAMETERS must be a JSON object of parameter names to values")
    return value


def write_termination_message(path: str, message: TerminationMessage) -> None:
    """Leave the verdict at `path` (nothing if empty: not in a pod). A write that fails is
    let go: the operator then reads the run record instead."""
    if not path:
        return
    try:
        with open(path, "w") as handle:
            json.dump(message, handle)
    except OSError:
        pass
