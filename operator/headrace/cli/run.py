"""`headrace run`: run a flow locally with a progress bar, then show its state and result."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from typing import Any, cast

from rich.console import Console

from headrace.cli.loader import load_flow
from headrace.cli.params import parse_json, parse_pairs
from headrace.cli.progress import RunProgress
from headrace.engine.runs import RunTree
from headrace.records.reader import record_url
from headrace.states import State, exception_message

_STATE_STYLE = {
    "COMPLETED": "bold green",
    "FAILED": "bold red",
    "CRASHED": "bold magenta",
    "CANCELLED": "bold yellow",
}


def gather_parameters(pairs: list[str], params_json: str | None) -> dict[str, Any]:
    """Parameters from `HEADRACE_PARAMETERS` (how the operator passes them), JSON, then -p."""
    parameters: dict[str, Any] = {}
    env = os.environ.get("HEADRACE_PARAMETERS")
    if env:
        parameters.update(parse_json(env, "HEADRACE_PARAMETERS"))
    if params_json:
        parameters.update(parse_json(params_json, "--params-json"))
    parameters.update(parse_pairs(pairs))
    return parameters


def write_termination_message(tree: RunTree | None, error: BaseException | None) -> None:
    """Leave the outcome where Kubernetes reads it (the container's terminationMessagePath).

    The operator learns the final state, result and record locations from the pod itself,
    so the flow pod needs no API rights at all. Kubernetes keeps at most 4 KiB of it.
    """
    path = os.environ.get("HEADRACE_TERMINATION_MESSAGE_PATH")
    if not path:
        return
    message: dict[str, Any] = {}
    root = tree.root if tree is not None else None
    if root is not None:
        message = {
            "state": root.state.name,
            "message": root.state.message[:2000],
            "flowRunId": root.id,
            "result": root.state.result_uri,
            "record": record_url(root.id),
            "counts": tree.counts() if tree is not None else {},
        }
    elif error is not None:
        message = {"state": "Crashed", "message": exception_message(error)[:2000]}
    with contextlib.suppress(OSError), open(path, "w") as handle:
        json.dump(message, handle)


def run_entrypoint(entrypoint: str, parameters: dict[str, Any], progress: bool) -> int:
    console = Console(stderr=True)
    shown = RunProgress(console, enabled=progress)
    try:
        flow = load_flow(entrypoint)
        with shown:
            if flow.isasync:
                state: State[Any] = asyncio.run(flow(**parameters, return_state=True))
            else:  # a Flow[Any, Any] matches the async overload too: it is sync here
                state = cast("State[Any]", flow(**parameters, return_state=True))
    except BaseException as error:
        write_termination_message(shown.tree, error)
        raise
    write_termination_message(shown.tree, None)
    tree = shown.tree
    style = _STATE_STYLE.get(state.type.value, "bold")
    console.print(
        f"[{style}]{state.name}[/{style}]" + (f": {state.message}" if state.message else "")
    )
    if tree is not None and tree.root is not None:
        root = tree.root
        console.print(f"flow run   {root.name} ({root.id})", soft_wrap=True)
        console.print(f"record     {record_url(root.id)}", soft_wrap=True)
    if state.result_uri:
        console.print(f"result     {state.result_uri}", soft_wrap=True)
    return 0 if state.is_completed() else 1
