"""The orchestrator: the bookkeeping of submitted task runs, and one daemon thread running an
asyncio loop for what needs a clock or a loop (timeouts, retry delays, async task runs).

The bookkeeping (counting upstream runs still pending, readiness, the final state, releasing
dependents) has one owner at a time: the engine's lock, not one thread. A caller submitting
runs counts their upstream runs and hands ready sync runs to the workers in its own thread. A
worker that ends a run with no timeout and no retry left finishes it itself if the lock is
free; when that frees exactly one downstream sync run, it waits for the lock and starts that
run at once, so a dependency hop costs no trip through the loop. If the lock is busy, the
worker leaves the run to the lock's next holder (any thread finishes the left runs before it
lets go; the loop is woken once in case no one takes the lock), and never queues on it. A
task run waiting on 10,000 upstream runs is still just a counter, and input resolution never
occupies a worker thread while it waits. Timers, retries and async runs go through the loop's
inbox, drained in batches under the same lock.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from headrace.engine import debug
from headrace.engine.hooks import hooks_for, run_hooks
from headrace.engine.inputs import SCALARS, flat_list, own
from headrace.engine.task_run import TaskRun, inputs_failed
from headrace.engine.workers import Worker
from headrace.exceptions import TaskTimeout
from headrace.states import Cancelled, Crashed, State, StateType, TimedOut

if TYPE_CHECKING:
    from headrace.task_runners import RemoteExecutor


_SPENT: dict[str, Any] = {}
COMPLETED = StateType.COMPLETED
_SUBMIT_SLICE = 64  # runs of a `map` (or inbox items) handled per hold of the engine's lock


class Engine:
    def __init__(self) -> None:
        self._inbox: deque[tuple[Callable[[Any], None], Any]] = deque()
        self._wake_pending = False
        self._ready: deque[TaskRun] = deque()
        self._releasing = False
        # Runs a worker ended while the lock was busy, with no timer or retry to decide:
        # whoever holds the lock next finishes them before letting go (the loop, if no one).
        self._left: deque[tuple[TaskRun, int, State[Any]]] = deque()
        self._left_wake = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        # Held by whoever changes run bookkeeping: the loop, or a worker finishing a run.
        self._lock = threading.RLock()
        # The context the loop's own callbacks (drains, timers) run in: empty. A handle keeps
        # the context it was made in, and a caller's holds its flow run: a cancelled timeout
        # of an hour would keep the whole run tree alive for that hour.
        self._quiet = contextvars.Context()
        # What the worker pool calls for each attempt: bound once, not at each submit.
        self._run_on_worker = self.run_on_worker

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self.start()
        assert self._loop is not None
        return self._loop

    def start(self) -> None:
        with self._start_lock:
            if self._loop_thread is not None:
                return
            debug.enable_logging()
            started = threading.Event()
            # Made in an empty context: the loop's own handles (its self-pipe reader) keep the
            # context they were made in, and the caller's holds its flow run, which they would
            # keep alive, run tree and all, for the life of the process.
            loop = contextvars.Context().run(asyncio.new_event_loop)

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(started.set)
                loop.run_forever()

            self._loop_thread = threading.Thread(target=run, name="headrace-engine", daemon=True)
            self._loop_thread.start()
            started.wait()
            self._loop = loop
            debug.trace("engine thread started")

    def on_engine_thread(self) -> bool:
        return threading.current_thread() is self._loop_thread

    # -- inbox -----------------------------------------------------------------------------
    def post(self, fn: Callable[[Any], None], arg: Any) -> None:
        """Run `fn(arg)` on the engine thread, soon, in the order posted."""
        loop = self.loop
        self._inbox.append((fn, arg))
        if not self._wake_pending:
            self._wake_pending = True  # cleared before draining, so no post is ever missed
            loop.call_soon_threadsafe(self._drain, context=self._quiet)

    def call(self, fn: Callable[[Any], None], arg: Any, timeout: float = 5.0) -> None:
        """Like `post`, but wait until it has run (skipped when called on the engine thread)."""
        if self.on_engine_thread():
            with self._lock:
                fn(arg)
            return
        done = threading.Event()

        def run(value: Any) -> None:
            try:
                fn(value)
            finally:
                done.set()

        self.post(run, arg)
        done.wait(timeout)

    def _drain(self) -> None:
        self._wake_pending = False
        inbox = self._inbox
        lock = self._lock
        count = 0
        while inbox:
            with lock:  # per slice of items, as submit_many: workers finish runs in between
                for _ in range(_SUBMIT_SLICE):
                    if not inbox:
                        break
                    fn, arg = inbox.popleft()
                    count += 1
                    try:
                        fn(arg)
                    except Exception:
                        logging.getLogger("headrace.engine").exception("engine callback failed")
        debug.trace("drained %d inbox items", count)

    # -- submitted task runs ---------------------------------------------------------------
    def submit(self, task_run: TaskRun, direct: bool = False) -> None:
        """Count the run's pending upstream runs, and start it if none, in the caller's thread
        under the lock: a sync run goes straight to a worker, with no wake-up of the loop.

        `direct`: a direct call of a task, which runs in this process even when the flow's
        task runner sends submitted runs elsewhere (as in Prefect 2)."""
        if direct:
            task_run.remote = DIRECT
        with self._lock:
            self._on_submit(task_run)
            if self._left:
                self._finish_left()

    def submit_many(self, task_runs: list[TaskRun]) -> None:
        """A whole `map`, the lock taken per slice of runs: workers finish runs in between,
        and a lock handoff per run (a thread switch when a worker waits) is not paid."""
        lock = self._lock
        on_submit = self._on_submit
        for start in range(0, len(task_runs), _SUBMIT_SLICE):
            with lock:
                for task_run in task_runs[start : start + _SUBMIT_SLICE]:
                    on_submit(task_run)
                if self._left:
                    self._finish_left()
        debug.trace("submitted %d task runs", len(task_runs))

    def _on_submit(self, task_run: TaskRun) -> None:
        upstream = task_run.upstream
        if not upstream and not self._releasing:
            # Most submits and maps: a sync run with no inputs to wait for or resolve goes to
            # a worker at once; what `_release`, `_start`, `TaskRun.prepare` and `_dispatch`
            # would do for it, without their seven calls.
            task = task_run.task
            flow_run = task_run.flow_run
            runner = flow_run.task_runner
            if (
                task is not None
                and not task.isasync
                and task_run.allowed is None
                and flow_run.earlier is None
                and (runner.remote is None or task_run.remote is DIRECT)
            ):
                task_run.token += 1
                runner.pool.submit(self._run_on_worker, (task_run, task_run.token))
                return
        pending = 0
        for future in upstream:
            if not future._done:
                if future._dependents is None:
                    future._dependents = [task_run]
                else:
                    future._dependents.append(task_run)
                pending += 1
        task_run.pending = pending
        if pending == 0:
            self._ready.append(task_run)
            self._release()

    def _release(self) -> None:
        """Start every ready run; iterative, so long chains of NotReady runs cannot recurse."""
        if self._releasing:
            return
        self._releasing = True
        try:
            ready = self._ready
            while ready:
                self._start(ready.popleft())
        finally:
            self._releasing = False

    def _start(self, task_run: TaskRun) -> None:
        if task_run._done:
            return  # cancelled while it waited
        remote = _remote(task_run)
        state = task_run.prepare(remote)
        if state is not None:
            self._finish(task_run, state)
            return
        try:
            self._dispatch(task_run, remote)
        except Exception as error:  # never leave a future unfinished: its flow would hang
            self._finish(task_run, Crashed(f"the engine could not start the run: {error}", error))

    def _dispatch(self, task_run: TaskRun, remote: RemoteExecutor | None) -> None:
        """Hand an attempt to `remote` (the run's executor, from `_remote`), the loop or a
        worker."""
        task = task_run.task
        assert task is not None
        if remote is not None:  # the runner's executor runs it; its outcome comes back here
            task_run.token += 1
            remote.send(self, task_run, task_run.token)
            return
        if task.isasync and not self.on_engine_thread():
            self.post(self._dispatch_async, task_run)  # its task and timer belong to the loop
            return
        task_run.token += 1
        if task.isasync:
            self.arm_timeout((task_run, task_run.token))
            task_run.worker = self.loop.create_task(self._run_async(task_run, task_run.token))
        else:
            pool = task_run.flow_run.task_runner.pool
            pool.submit(self._run_on_worker, (task_run, task_run.token))

    def _dispatch_async(self, task_run: TaskRun) -> None:
        if not task_run._done:
            self._dispatch(task_run, _remote(task_run))

    def arm_timeout(self, item: tuple[TaskRun, int]) -> None:
        """Start the attempt's timeout clock (for sync runs: once a worker picks it up)."""
        task_run, token = item
        seconds = task_run.task.timeout_seconds if task_run.task else None
        if seconds is not None and token == task_run.token:
            task_run.timer = self.loop.call_later(
                seconds, self._on_timeout, item, context=self._quiet
            )

    async def _run_async(self, task_run: TaskRun, token: int) -> None:
        try:
            state = await task_run.run_attempt_async(task_run.parameters)
        except asyncio.CancelledError:
            return  # the timeout or cancel that cancelled it has already decided the state
        except BaseException as error:
            state = Crashed(f"task run crashed: {error!r}", error)
        with self._lock:
            self._on_attempt(task_run, token, state)

    def run_on_worker(self, worker: Worker, item: tuple[TaskRun, int]) -> None:
        """Run a dispatched attempt (`item`: the run and its token) on `worker`, then each run
        it alone frees, here too.

        A freed run's inputs are resolved here, outside the engine's lock (its upstream runs
        are final): the lock is held only to finish a run and take the next, so a thread
        submitting meanwhile seldom waits for it."""
        task_run, token = item
        next_run: TaskRun | None = task_run
        prepared = True  # by `_start`, for the run the pool handed over
        while next_run is not None:
            task_run = next_run
            if token != task_run.token:
                return  # timed out or cancelled while it waited in the queue
            if not prepared:
                prepared = True
                blocked = _inputs_on_worker(task_run)
                if blocked is not None:  # NotReady, or its inputs could not be read
                    with self._lock:
                        next_run = self._finish_on_worker(task_run, token, blocked, worker)
                    if next_run is not None:
                        token = next_run.token
                        prepared = False
                    continue
                if token != task_run.token:
                    return  # cancelled while its inputs were resolved
            task = task_run.task
            assert task is not None
            task_run.worker = worker
            timeout = task.timeout_seconds
            if timeout is not None:
                self.post(self.arm_timeout, (task_run, token))
            worker.current = task_run  # worker.enter(task_run), without its call
            try:
                state = task_run.run_attempt(task_run.parameters)
            except BaseException as error:
                state = Crashed(f"task run crashed: {error!r}", error)
            finally:
                worker.leave()
            if timeout is not None or (task.retries and state.is_failed()):
                self.attempt_done(task_run, token, state)  # timers and retries are the loop's
                return
            # Finished here if the lock is free; a run that frees another waits for it (that
            # run starts on this worker). Otherwise the loop finishes it, in a batch: 32
            # workers queueing on the lock one by one cost more than the loop's round trip.
            frees = False  # whether a run waits on this one alone now (`_frees_a_run`)
            dependents = task_run._dependents
            if dependents is not None:
                for run in dependents:
                    if run.pending == 1:
                        frees = True
                        break
            lock = self._lock
            if not lock.acquire(frees):
                self._leave(task_run, token, state)
                return
            try:
                next_run = self._finish_on_worker(task_run, token, state, worker)
                if self._left:
                    self._finish_left()
            finally:
                lock.release()
            if next_run is not None:
                token = next_run.token
                prepared = False

    def _finish_on_worker(
        self, task_run: TaskRun, token: int, state: State[Any], worker: Worker
    ) -> TaskRun | None:
        """Finish a run (lock held); return the one run it freed if this worker may take it
        (its inputs not yet resolved).

        Runs freed while `_releasing` is set wait in `_ready`: one sync run of this pool is
        taken here, any others go to the loop in one post.
        """
        if token != task_run.token or task_run._done:
            return None
        ready = self._ready
        self._releasing = True
        try:
            self._finish_quickly(task_run, state)
            while len(ready) == 1:
                candidate = ready[0]
                task = candidate.task
                if (
                    task is None
                    or task.isasync
                    or candidate.flow_run.task_runner.pool is not worker.pool
                ):
                    break
                ready.popleft()
                if candidate._done:
                    continue  # cancelled while it waited
                candidate.token += 1
                return candidate
        finally:
            self._releasing = False
        if ready:
            self._release()  # any others: to the pool (async ones are posted to the loop)
        return None

    def _finish_quickly(self, task_run: TaskRun, state: State[Any]) -> None:
        """`_finish` (lock held, `_releasing` set, the run not final yet), without its calls
        when there is no timer to cancel and no hook to run: freed runs wait in `_ready`."""
        task = task_run.task
        if not task_run.submitted or task_run.timer is not None or task is None or task.has_hooks:
            self._finish(task_run, state)
            return
        task_run.token += 1
        task_run.set_state(state)
        self._free(task_run, state)

    def _leave(self, task_run: TaskRun, token: int, state: State[Any]) -> None:
        """A worker's run whose end the lock was too busy to record: the lock's next holder
        finishes it before letting go, so the worker neither waits nor wakes the loop for
        each run; the loop is woken once, in case no one else takes the lock."""
        self._left.append((task_run, token, state))
        if not self._left_wake:
            self._left_wake = True  # cleared before the loop drains: no run is left behind
            self.post(self._finish_left_item, None)

    def _finish_left_item(self, _: None) -> None:
        self._left_wake = False
        self._finish_left()

    def _finish_left(self) -> None:
        """Finish the runs `_leave` left (lock held)."""
        left = self._left
        releasing = self._releasing
        self._releasing = True
        try:
            while left:
                task_run, token, state = left.popleft()
                if token == task_run.token and not task_run._done:
                    self._finish_quickly(task_run, state)
        finally:
            self._releasing = releasing
        self._release()

    def attempt_done(self, task_run: TaskRun, token: int, state: State[Any]) -> None:
        self.post(self._on_attempt_item, (task_run, token, state))

    def _on_attempt_item(self, item: tuple[TaskRun, int, State[Any]]) -> None:
        self._on_attempt(*item)

    def _on_attempt(self, task_run: TaskRun, token: int, state: State[Any]) -> None:
        if token != task_run.token or task_run._done:
            return  # a late result from an attempt that already timed out or was cancelled
        if task_run.timer is not None:
            task_run.timer.cancel()
            task_run.timer = None
        delay = task_run.await_retry(state)
        if delay is None:
            self._finish(task_run, state)
            return
        task_run.token += 1  # nothing from the failed attempt may land from now on
        self.loop.call_later(delay, self._retry, task_run, context=self._quiet)

    def _retry(self, task_run: TaskRun) -> None:
        with self._lock:
            if not task_run._done:
                self._dispatch(task_run, _remote(task_run))

    def _on_timeout(self, item: tuple[TaskRun, int]) -> None:
        with self._lock:
            task_run, token = item
            if token != task_run.token:
                return
            seconds = task_run.task.timeout_seconds if task_run.task else None
            self._interrupt(task_run, TaskTimeout)
            message = f"task run exceeded its timeout of {seconds}s"
            self._on_attempt(task_run, token, TimedOut(message))

    def _interrupt(self, task_run: TaskRun, exc_type: type[BaseException]) -> None:
        worker = task_run.worker
        if isinstance(worker, asyncio.Task):
            worker.cancel()
        elif worker is not None:  # a worker thread, or a remote executor's attempt
            worker.interrupt(task_run, exc_type)

    def _finish(self, task_run: TaskRun, state: State[Any]) -> None:
        if not task_run.submitted or task_run._done:
            return
        if task_run.timer is not None:
            task_run.timer.cancel()
            task_run.timer = None
        task_run.token += 1
        task_run.set_state(state)
        task = task_run.task
        if task is not None and task.has_hooks:
            hooks = hooks_for(task, state, flow=False)
            if hooks:  # on a worker, not this thread; the future ends once they have run
                pool = task_run.flow_run.task_runner.pool
                pool.submit(self._hooks_on_worker, (task_run, state, hooks))
                return
        self._settle(task_run, state)

    def _settle(self, task_run: TaskRun, state: State[Any]) -> None:
        """Finish the run's future and release the runs that wait on it."""
        if not task_run.submitted or task_run._done:
            return  # cancelled while its hooks ran
        if self._free(task_run, state):
            self._release()

    def _free(self, task_run: TaskRun, state: State[Any]) -> bool:
        """End the run's future and put the runs it was the last wait of in `_ready`
        (True if it had any). Its hooks have run and its inputs are spent: they are dropped
        (the resolved upstream results of 100,000 finished runs would otherwise live until
        the flow ends)."""
        task_run._finish(state)
        task_run.parameters = _SPENT
        task_run.worker = None
        dependents = task_run._dependents
        if not dependents:
            return False
        task_run._dependents = None
        ready = self._ready
        for dependent in dependents:
            dependent.pending -= 1
            if dependent.pending == 0:
                ready.append(dependent)
        return True

    def _settle_item(self, item: tuple[TaskRun, State[Any]]) -> None:
        self._settle(*item)

    def _hooks_on_worker(self, worker: Worker, item: tuple[TaskRun, State[Any], Any]) -> None:
        """Run a final state's hooks on `worker`; the loop then ends the run's future."""
        task_run, state, hooks = item
        try:
            run_hooks(hooks, task_run, state, task=task_run.task)
        finally:
            self.post(self._settle_item, (task_run, state))

    # -- cancellation ----------------------------------------------------------------------
    def cancel(self, task_runs: list[TaskRun], message: str) -> None:
        """End every given run that is not final yet as Cancelled, and wait until done."""
        self.call(self._cancel_all, (task_runs, message))

    def _cancel_all(self, item: tuple[list[TaskRun], str]) -> None:
        task_runs, message = item
        for task_run in task_runs:
            if task_run.submitted and not task_run._done:
                self._interrupt(task_run, TaskTimeout)
                self._finish(task_run, Cancelled(message))


DIRECT = "direct"  # `task_run.remote` of a directly called task: it runs in this process


def _remote(task_run: TaskRun) -> RemoteExecutor | None:
    """The executor of the flow's task runner if it runs this task run elsewhere, else None."""
    remote = task_run.flow_run.task_runner.remote
    return None if remote is None or task_run.remote is DIRECT else remote


def _inputs_on_worker(task_run: TaskRun) -> State[Any] | None:
    """`TaskRun.prepare` for a run freed on a worker: its upstream runs are final. The common
    case (no earlier attempt of the flow, no `allow_failure`, every upstream run completed,
    each parameter a scalar, a bare future or a list) without its calls, nor its second pass
    over the upstream runs (10,000 of them for a fan-in)."""
    if task_run.flow_run.earlier is not None or task_run.allowed is not None:
        return task_run.prepare()
    for future in task_run.upstream:
        state = future._state
        if state is None or state.type is not COMPLETED:
            return task_run.prepare()
    parameters = task_run.parameters
    resolved: dict[str, Any] = {}
    for name, value in parameters.items():
        kind = type(value)
        if kind is TaskRun or kind is list:  # a bare future, or a list of them (a fan-in)
            try:  # completed (checked above), but a result kept only in storage may not load
                value = own(value._state.result()) if kind is TaskRun else flat_list(value)
            except Exception as error:
                return inputs_failed(error)
        elif kind not in SCALARS:
            return task_run.prepare()  # other containers, annotations: the full walk
        resolved[name] = value
    task_run.parameters = resolved
    return None


_engine: Engine | None = None
_engine_lock = threading.Lock()


def get_engine() -> Engine:
    if _engine is not None:
        return _engine
    return _new_engine()


def _new_engine() -> Engine:
    global _engine
    with _engine_lock:
        engine = _engine
        if engine is None:
            engine = _engine = Engine()
            engine.start()
        return engine
