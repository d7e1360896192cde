"""Deadlines and SIGTERM, delivered by signal so that blocking calls are interrupted.

Only the main thread receives signals. A sync flow (or an inline task) there gets its
timeout exception raised wherever it is blocked: `time.sleep`, a lock, a socket. An async flow
on the main thread gets the exception raised if the loop is busy running its code, or its task
cancelled if the loop is idle, so the flow's own wrapper always sees the interrupt.
Elsewhere a deadline is raised into the thread at its next bytecode.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from headrace.engine import debug
from headrace.engine.workers import raise_in_thread

_MIN_DELAY = 1e-4


class _Deadline:
    __slots__ = ("at", "fired", "make_exc")

    def __init__(self, at: float, make_exc: Callable[[], BaseException]) -> None:
        self.at = at
        self.make_exc = make_exc
        self.fired = False


class _LoopFrame:
    """An async flow running on the main thread's event loop."""

    __slots__ = ("loop", "task")

    def __init__(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
        self.loop = loop
        self.task = task


class MainThreadInterrupts:
    def __init__(self) -> None:
        self.deadlines: list[_Deadline] = []
        self.frames: list[_LoopFrame] = []
        # An interrupt delivered by cancelling an idle loop's task, for its wrapper to pick up.
        self.pending: BaseException | None = None
        # SIGALRM and the real-time timer are borrowed while deadlines are live: whoever had
        # them before (pytest-timeout, say) gets them back after, its timer still counting.
        self._borrowed = False
        self._previous_handler: Any = None
        self._previous_at: float | None = None

    # -- deadlines -------------------------------------------------------------------------
    def push(self, seconds: float, make_exc: Callable[[], BaseException]) -> _Deadline:
        if not self._borrowed:
            remaining = signal.getitimer(signal.ITIMER_REAL)[0]
            self._previous_at = time.monotonic() + remaining if remaining > 0 else None
            self._previous_handler = signal.signal(signal.SIGALRM, self._on_alarm)
            self._borrowed = True
        deadline = _Deadline(time.monotonic() + seconds, make_exc)
        self.deadlines.append(deadline)
        self._arm()
        return deadline

    def pop(self, deadline: _Deadline) -> None:
        with contextlib.suppress(ValueError):
            self.deadlines.remove(deadline)
        if self.deadlines or not self._borrowed:
            self._arm()
            return
        # The last deadline is gone: give SIGALRM and the timer back as they were.
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(
            signal.SIGALRM,
            signal.SIG_DFL if self._previous_handler is None else self._previous_handler,
        )
        self._borrowed = False
        if self._previous_at is not None:
            left = self._previous_at - time.monotonic()
            signal.setitimer(signal.ITIMER_REAL, max(left, _MIN_DELAY))
        self._previous_handler = self._previous_at = None

    def _arm(self) -> None:
        live = [d.at for d in self.deadlines if not d.fired]
        if self._previous_at is not None:
            live.append(self._previous_at)
        if not live:
            signal.setitimer(signal.ITIMER_REAL, 0)
            return
        signal.setitimer(signal.ITIMER_REAL, max(min(live) - time.monotonic(), _MIN_DELAY))

    def _on_alarm(self, signum: int, frame: Any) -> None:
        now = time.monotonic()
        if self._previous_at is not None and self._previous_at <= now + 1e-3:
            # The previous owner's timer ran out while we held SIGALRM: its handler runs.
            self._previous_at = None
            self._arm()
            if callable(self._previous_handler):
                self._previous_handler(signum, frame)
        expired = [d for d in self.deadlines if not d.fired and d.at <= now + 1e-3]
        if not expired:
            self._arm()
            return
        target = expired[0]  # the outermost: its exception unwinds the inner runs too
        target.fired = True
        self._arm()
        debug.trace("deadline passed, interrupting the main thread")
        self.deliver(target.make_exc())

    # -- delivery --------------------------------------------------------------------------
    def deliver(self, exc: BaseException) -> None:
        """Raise `exc` in the main thread's innermost run, the right way for its kind."""
        frame = self.frames[-1] if self.frames else None
        idle = (
            frame is not None
            and not frame.loop.is_closed()
            and asyncio.current_task(frame.loop) is None
        )
        if idle:
            # The loop waits in select(): raising here would escape the loop, not the flow.
            assert frame is not None
            self.pending = exc
            frame.loop.call_soon_threadsafe(frame.task.cancel)
            return
        raise exc

    def take_pending(self) -> BaseException | None:
        return self.pending

    def clear_pending(self, exc: BaseException) -> None:
        if self.pending is exc:
            self.pending = None

    @contextlib.contextmanager
    def loop_frame(
        self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]
    ) -> Iterator[None]:
        frame = _LoopFrame(loop, task)
        self.frames.append(frame)
        try:
            yield
        finally:
            self.frames.remove(frame)


interrupts = MainThreadInterrupts()


def on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def deadline(seconds: float | None, make_exc: Callable[[], BaseException]) -> Iterator[None]:
    """Interrupt the enclosed code after `seconds` with `make_exc()`."""
    if seconds is None:
        yield
        return
    if on_main_thread():
        entry = interrupts.push(seconds, make_exc)
        try:
            yield
        finally:
            interrupts.pop(entry)
        return
    # Off the main thread no signal arrives: a timer raises into this thread instead.
    exc_type = type(make_exc())
    ident = threading.get_ident()
    lock = threading.Lock()
    active = [True]

    def expire() -> None:
        with lock:
            if active[0]:
                raise_in_thread(ident, exc_type)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        with lock:
            active[0] = False
            raise_in_thread(ident, None)
        timer.cancel()


class SigtermHandler:
    """Turns SIGTERM into a `TerminationSignal` in the running flow, for the top-level run."""

    def __init__(self, make_exc: Callable[[], BaseException]) -> None:
        self.make_exc = make_exc
        self.received = False
        # Raise only while the flow body runs; during the final flush a SIGTERM just records.
        self.armed = False
        self._previous: Any = None

    def install(self) -> bool:
        if not on_main_thread():
            return False
        self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        return True

    def uninstall(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        if self.received:
            return  # one interrupt is enough; the run is already winding down
        self.received = True
        debug.trace("SIGTERM received")
        if self.armed:
            interrupts.deliver(self.make_exc())
