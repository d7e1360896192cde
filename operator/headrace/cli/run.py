"""`headrace run`: run a flow locally with a progress bar, then show its state and result."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from rich.console import Console

from headrace.cli.loader import load_flow
from headrace.cli.output import dump
from headrace.cli.params import parse_json, parse_pairs
from headrace.cli.progress import RunProgress
from headrace.engine.runs import RunTree
from headrace.records.reader import record_url
from headrace.states import State

_STATE_STYLE = {
    "COMPLETED": "bold green",
    "FAILED": "bold red",
    "CRASHED": "bold magenta",
    "CANCELLED": "bold yellow",
}


def gather_parameters(pairs: list[str], params_json: str | None) -> dict[str, Any]:
    """Parameters from --params-json, then each -p KEY=VALUE."""
    parameters: dict[str, Any] = {}
    if params_json:
        parameters.update(parse_json(params_json, "--params-json"))
    parameters.update(parse_pairs(pairs))
    return parameters


def call_flow(entrypoint: str, parameters: dict[str, Any], shown: RunProgress) -> State[Any]:
    """Load the flow and run it to its final state, watched by `shown`."""
    flow = load_flow(entrypoint)
    with shown:
        if flow.isasync:
            return asyncio.run(flow(**parameters, return_state=True))
        # a Flow[Any, Any] matches the async overload too: it is sync here
        return cast("State[Any]", flow(**parameters, return_state=True))


def show_outcome(console: Console, state: State[Any], tree: RunTree | None) -> int:
    """Print the final state, the run's name, record and result; the exit code (0: Completed)."""
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


def run_summary(state: State[Any], tree: RunTree | None) -> dict[str, Any]:
    """The run as `headrace run -o` prints it: the fields of a `headrace list` item, and the
    final state's message and the result's location."""
    root = tree.root if tree is not None else None
    counts = tree.counts() if tree is not None else {}
    return {
        "id": root.id if root else None,
        "name": root.name if root else None,
        "flowName": root.flow.name if root else None,
        "state": state.name,
        "message": state.message,
        "start": root.start_time if root else None,
        "end": root.end_time if root else None,
        "counts": counts,
        "total": sum(counts.values()),
        "record": record_url(root.id) if root else None,
        "result": state.result_uri,
    }


def run_entrypoint(
    entrypoint: str, parameters: dict[str, Any], progress: bool, form: str | None = None
) -> int:
    console = Console(stderr=True)
    shown = RunProgress(console, enabled=progress and not form)
    state = call_flow(entrypoint, parameters, shown)
    if form:
        print(dump(run_summary(state, shown.tree), form))
        return 0 if state.is_completed() else 1
    return show_outcome(console, state, shown.tree)
