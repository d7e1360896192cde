"""`headrace run`: run a flow locally with a progress bar, then show its state and result."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from rich.console import Console

from headrace.cli.loader import load_flow
from headrace.cli.params import parse_json, parse_pairs
from headrace.cli.progress import RunProgress
from headrace.records.reader import record_url
from headrace.states import State

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


def run_entrypoint(entrypoint: str, parameters: dict[str, Any], progress: bool) -> int:
    console = Console(stderr=True)
    flow = load_flow(entrypoint)
    with RunProgress(console, enabled=progress) as shown:
        if flow.isasync:
            state: State = asyncio.run(flow(**parameters, return_state=True))
        else:
            state = flow(**parameters, return_state=True)
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
