"""Futures for submitted task runs.

A future is its task run: `engine.task_run.TaskRun` subclasses `HeadraceFuture`, so a
submitted run is one object, not a run and a handle that point at each other (100,000 of them
are alive until their flow ends). A future is finished only under the engine's lock (by the
engine thread, a submitting thread or a worker finishing a run), or before it escapes. Threads
that wait use a lazily made held `threading.Lock` and event loops a loop future, both woken
under one short global lock, so a future nobody waits on costs no lock objects at all.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from headrace.engine.context import hands_back_awaitables
from headrace.states import State

if TYPE_CHECKING:
    from headrace.engine.runs import FlowRun
    from headrace.engine.task_run import TaskRun
    from headrace.tasks import Task

R = TypeVar("R")

_LOCK = threading.Lock()


class HeadraceFuture(Generic[R]):
    """The handle `Task.submit()` returns: wait on it, read its state, get its result.

    Its fields are set by `TaskRun.__init__`: `_state` (the final state, once done), `_done`,
    `_waiters`, and `_dependents` (task runs waiting on this one; touched only under the
    engine's lock)."""

    __slots__ = ("_dependents", "_done", "_state", "_waiters")

    # The task run's own fields that a future reads (slots of `TaskRun`).
    id: str
    name: str
    state: State[Any]  # the run's current state: the final one once done
    task: Task[Any, Any] | None
    flow_run: FlowRun
    _state: State[Any] | None
    _done: bool
    _waiters: list[Callable[[], None]] | None
    _dependents: list[TaskRun] | None

    @property
    def task_run(self) -> TaskRun:
        """The run this future is (Prefect 2's `future.task_run`: its id, name and state)."""
        return self  # type: ignore[return-value]  # only TaskRun is ever made

    def get_state(self) -> State[Any]:
        return self.state

    def done(self) -> bool:
        return self._done

    @property
    def asynchronous(self) -> bool:
        """Whether `wait()`/`result()` return coroutines (an async task's, in its async flow)."""
        return hands_back_awaitables(self.task, self.flow_run)

    def wait(self, timeout: float | None = None) -> Any:
        """Block until final and return the state (`None` on timeout).

        For an async task in an async flow this returns a coroutine instead, as in Prefect 2.
        """
        if self.asynchronous:
            return self._wait_async(timeout)
        return self._wait_sync(timeout)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> Any:
        """The task's return value; raises its error if it did not complete."""
        task = self.task
        if task is not None and task.isasync and self.asynchronous:
            return self._result_async(timeout, raise_on_failure)
        # A sync task's future (most): result_sync's work, without its two calls.
        state = self._state if self._done else self._wait_sync(timeout)
        if state is None:
            raise TimeoutError(f"task run {self.name!r} did not finish in {timeout}s")
        return state.result(raise_on_failure=raise_on_failure)

    def result_sync(self, timeout: float | None = None, raise_on_failure: bool = True) -> Any:
        """`result()` that blocks even in an event loop (the engine's own reads)."""
        state = self._wait_sync(timeout)
        if state is None:
            raise TimeoutError(f"task run {self.name!r} did not finish in {timeout}s")
        return state.result(raise_on_failure=raise_on_failure)

    def _wait_sync(self, timeout: float | None) -> State[Any] | None:
        if not self._done:
            # A held lock that the finisher releases: a one-shot signal in C, where a
            # threading.Event is a Condition in Python (several microseconds a wait).
            signal = threading.Lock()
            signal.acquire()
            if self._add_waiter(signal.release) and not signal.acquire(
                timeout=-1 if timeout is None else timeout
            ):
                return None
        return self._state

    async def _wait_async(self, timeout: float | None) -> State[Any] | None:
        if not self._done:
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[None] = loop.create_future()

            def wake() -> None:
                loop.call_soon_threadsafe(_resolve, waiter)

            if self._add_waiter(wake):
                try:
                    await asyncio.wait_for(waiter, timeout)
                except TimeoutError:
                    return None
        return self._state

    async def _result_async(self, timeout: float | None, raise_on_failure: bool) -> Any:
        state = await self._wait_async(timeout)
        if state is None:
            raise TimeoutError(f"task run {self.name!r} did not finish in {timeout}s")
        return state.result(raise_on_failure=raise_on_failure)

    def _add_waiter(self, wake: Callable[[], None]) -> bool:
        with _LOCK:
            if self._done:
                return False
            if self._waiters is None:
                self._waiters = [wake]
            else:
                self._waiters.append(wake)
            return True

    def _finish(self, state: State[Any]) -> None:
        """Record the final state and wake waiters (engine's lock held, or before it escapes)."""
        self._state = state
        with _LOCK:
            self._done = True
            waiters, self._waiters = self._waiters, None
        if waiters:
            for wake in waiters:
                wake()

    def __await__(self) -> Any:
        return self._result_async(None, True).__await__()

    def __repr__(self) -> str:
        return f"HeadraceFuture({self.name!r}, {self.state!r})"


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


PrefectFuture = HeadraceFuture  # Prefect 2's name, for code that imports or annotates with it
