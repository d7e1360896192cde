"""A live progress bar for a local run, fed by the run tree's derived counts."""

from __future__ import annotations

import threading
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from headrace.engine import flow_engine
from headrace.engine.runs import RunTree
from headrace.states import FINAL_NAMES

_COLOURS = {
    "Completed": "green",
    "Cached": "green",
    "Failed": "red",
    "TimedOut": "red",
    "Crashed": "magenta",
    "Cancelled": "yellow",
    "Running": "cyan",
}


def describe(counts: dict[str, int]) -> str:
    parts = []
    for name, count in sorted(counts.items()):
        colour = _COLOURS.get(name, "white")
        parts.append(f"[{colour}]{name} {count}[/{colour}]")
    return " ".join(parts)


class RunProgress:
    """Shows task runs finished out of those created, with counts by state, until closed."""

    def __init__(self, console: Console, enabled: bool = True) -> None:
        self.console = console
        self.enabled = enabled
        self.tree: RunTree | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._progress = Progress(
            TextColumn("[bold]task runs"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )

    def _observe(self, tree: RunTree) -> None:
        if self.tree is None:
            self.tree = tree

    def __enter__(self) -> RunProgress:
        flow_engine.root_observers.append(self._observe)
        if self.enabled:
            self._progress.start()
            self._thread = threading.Thread(
                target=self._loop, name="headrace-progress", daemon=True
            )
            self._thread.start()
        return self

    def _loop(self) -> None:
        bar = self._progress.add_task("", total=None)
        while True:
            stopping = self._stop.wait(0.1)
            if self.tree is not None:
                counts = self.tree.counts()
                done = sum(count for name, count in counts.items() if name in FINAL_NAMES)
                self._progress.update(
                    bar,
                    completed=done,
                    total=sum(counts.values()) or None,
                    description=describe(counts),
                )
            if stopping:
                return

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        flow_engine.root_observers.remove(self._observe)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._progress.stop()
