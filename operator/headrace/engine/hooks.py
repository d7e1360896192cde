"""State hooks (`on_completion`, `on_failure`, ...): called once a run's state is final.

As in Prefect 2: called by keyword (`task=`/`flow=`, `task_run=`/`flow_run=`, `state=`), only
for the final state (not a failed attempt that will be retried), and a hook that raises is
logged and does not change the run's state.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

from headrace.exceptions import NotSupported
from headrace.states import State, StateType

logger = logging.getLogger("headrace.hooks")

Hook = Callable[..., Any]

_TASK_HOOKS = {StateType.COMPLETED: "on_completion", StateType.FAILED: "on_failure"}
_FLOW_HOOKS = {
    StateType.COMPLETED: "on_completion",
    StateType.FAILED: "on_failure",
    StateType.CANCELLED: "on_cancellation",
    StateType.CRASHED: "on_crashed",
}


def hooks_for(owner: Any, state: State[Any], flow: bool) -> Sequence[Hook]:
    """The hooks `owner` (a Task or Flow) has for this final state; empty for most runs."""
    name = (_FLOW_HOOKS if flow else _TASK_HOOKS).get(state.type)
    if name is None:
        return ()
    hooks: Sequence[Hook] = getattr(owner, name)
    return hooks


def run_hooks(hooks: Sequence[Hook], run: Any, state: State[Any], **owner: Any) -> None:
    """Call each hook; one that raises is logged, the others still run."""
    for hook in hooks:
        name = getattr(hook, "__name__", repr(hook))
        logger.info(
            "Running hook %r in response to entering state %r",
            name,
            state.name,
            extra={"headrace_run": run},
        )
        run_key = "task_run" if "task" in owner else "flow_run"
        try:
            hook(**owner, **{run_key: run}, state=state)
        except Exception:
            logger.exception(
                "An error was encountered while running hook %r", name, extra={"headrace_run": run}
            )


def check_hooks(kind: str, option: str, hooks: Sequence[Hook] | None) -> tuple[Hook, ...]:
    """The hooks as a tuple, refusing what Headrace cannot call (names the option)."""
    if hooks is None:
        return ()
    if callable(hooks):
        raise TypeError(f"@{kind}({option}=...) takes a list of hooks, got one callable")
    for hook in hooks:
        if not callable(hook):
            raise TypeError(f"@{kind}({option}=...) got {hook!r}, which is not callable")
        if inspect.iscoroutinefunction(hook):
            raise NotSupported(
                f"@{kind}({option}=...) got the async function {hook.__name__!r}: Headrace "
                "calls hooks synchronously; make it a plain function"
            )
    return tuple(hooks)
