"""`headrace pod-entry ENTRYPOINT`: the engine's side of the pod protocol
(`headrace.pod_protocol`). The operator's flow pods run it; people run `headrace run`."""

from __future__ import annotations

from rich.console import Console

from headrace import settings
from headrace.cli.progress import RunProgress
from headrace.cli.run import call_flow, show_outcome
from headrace.engine.runs import RunTree
from headrace.pod_protocol import (
    MESSAGE_CHARACTERS,
    TerminationMessage,
    decode_parameters,
    write_termination_message,
)
from headrace.records.reader import record_url
from headrace.states import exception_message


def verdict(tree: RunTree | None, error: BaseException | None) -> TerminationMessage:
    """What the operator is told: the top-level run's final state, or a crash before it."""
    root = tree.root if tree is not None else None
    if tree is not None and root is not None:
        return {
            "state": root.state.name,
            "message": root.state.message[:MESSAGE_CHARACTERS],
            "flowRunId": root.id,
            "result": root.state.result_uri,
            "record": record_url(root.id),
            "counts": tree.counts(),
        }
    if error is not None:
        return {"state": "Crashed", "message": exception_message(error)[:MESSAGE_CHARACTERS]}
    return {}


def run_in_pod(entrypoint: str) -> int:
    """Run the flow the operator's settings describe; leave the verdict for the operator."""
    config = settings.current()
    console = Console(stderr=True)
    shown = RunProgress(console, enabled=False)
    try:
        state = call_flow(entrypoint, decode_parameters(config.parameters), shown)
    except BaseException as error:
        write_termination_message(config.termination_message_path, verdict(shown.tree, error))
        raise
    write_termination_message(config.termination_message_path, verdict(shown.tree, None))
    return show_outcome(console, state, shown.tree)
