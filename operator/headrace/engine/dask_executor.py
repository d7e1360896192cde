"""Attempts of task runs on a Dask cluster: sent to workers, their outcomes taken back.

The engine calls `send` for each attempt (under its lock, in whichever thread started the run)
and gets the attempt's state back through `engine.attempt_done`, as from its own threads; it
keeps the run's life. Here: the client and the cluster, one Dask task per attempt running
`remote.run_attempt`, and one collector thread that gathers finished attempts' outcomes in
batches (one round trip for all attempts finished meanwhile) and turns them into states.

A run's upstream results go to its Dask task as the Dask futures of their attempts, so a
worker takes them from the worker that holds them. Those futures are kept until the flow run
ends, as Prefect 2 keeps its futures.
"""

from __future__ import annotations

import importlib
import logging
import queue
import threading
from typing import TYPE_CHECKING, Any

import dask
import distributed

from headrace.engine.inputs import _leaf, resolve
from headrace.engine.remote import COMPLETED, Outcome, RemoteCall, outcome_state, run_attempt
from headrace.exceptions import WorkerLost
from headrace.futures import HeadraceFuture
from headrace.states import Crashed, State

if TYPE_CHECKING:
    from headrace.engine.orchestrator import Engine
    from headrace.engine.task_run import TaskRun
    from headrace.task_runners import DaskTaskRunner

logger = logging.getLogger("headrace.engine")

_Sent = tuple["Engine", "TaskRun", int, distributed.Future]


class _Attempt:
    """The engine's handle on an attempt running on Dask (`task_run.worker`)."""

    __slots__ = ("future",)

    def __init__(self, future: distributed.Future) -> None:
        self.future = future

    def interrupt(self, task_run: TaskRun, exc_type: type[BaseException]) -> bool:
        """Drop the attempt: a queued one never runs; a running one's result is ignored (Dask
        cannot stop a running task; a cluster made for the flow run ends with it)."""
        self.future.release()
        return True


class DaskExecutor:
    def __init__(self, runner: DaskTaskRunner) -> None:
        self.runner = runner
        self._lock = threading.Lock()
        self._client: distributed.Client | None = None
        self._cluster: Any = None
        self._done: queue.SimpleQueue[_Sent | None] = queue.SimpleQueue()
        self._collector: threading.Thread | None = None

    # -- the cluster -----------------------------------------------------------------------
    @property
    def client(self) -> distributed.Client:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._connect()
                    self._collector = threading.Thread(
                        target=self._collect,
                        args=(self._client, self._done),
                        name="headrace-dask-collector",
                        daemon=True,
                    )
                    self._collector.start()
                client = self._client
        return client

    def _connect(self) -> distributed.Client:
        runner = self.runner
        kwargs = dict(runner.client_kwargs)
        if runner.address is not None:
            return distributed.Client(runner.address, **kwargs)
        cluster_class = _cluster_class(runner.cluster_class)
        # A task whose worker dies is the engine's to retry (Crashed, per `retries`), not
        # Dask's to rerun: the scheduler of a cluster made here gives up at once.
        with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
            self._cluster = cluster_class(**runner.cluster_kwargs)
        if runner.adapt_kwargs:
            self._cluster.adapt(**runner.adapt_kwargs)
        logger.info("Made a Dask cluster for the flow run: %s", self._cluster)
        return distributed.Client(self._cluster, **kwargs)

    def close(self) -> None:
        """Close the client (releasing every future) and the cluster this made, if any."""
        with self._lock:
            client, self._client = self._client, None
            cluster, self._cluster = self._cluster, None
            collector, self._collector = self._collector, None
        if collector is not None:
            self._done.put(None)
            collector.join(30)
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()

    # -- attempts --------------------------------------------------------------------------
    def inputs(self, parameters: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """The parameters with each completed upstream run's Dask future in place of its
        future, and whether there was any (the worker then unwraps their outcomes)."""
        found = False

        def leaf(value: Any) -> Any:
            nonlocal found
            if isinstance(value, HeadraceFuture):
                ref = value.task_run.remote
                if type(ref) is distributed.Future and value.state.is_completed():
                    found = True
                    return ref
            return _leaf(value)

        sent = {name: resolve(value, leaf) for name, value in parameters.items()}
        return sent, found

    def send(self, engine: Engine, task_run: TaskRun, token: int) -> None:
        cached = task_run.begin_remote_attempt()
        if cached is not None:
            engine.attempt_done(task_run, token, cached)
            return
        parameters, unwrap = task_run.remote
        call = RemoteCall(task_run, unwrap)
        key = f"{task_run.task_key}-{task_run.id}-{task_run.attempt}"
        try:
            future = self.client.submit(run_attempt, call, parameters, key=key, pure=False)
        except Exception as error:  # no scheduler, or an argument Dask cannot send
            message = f"could not send the attempt to Dask: {type(error).__name__}: {error}"
            engine.attempt_done(task_run, token, Crashed(message, error))
            return
        task_run.worker = _Attempt(future)
        done = self._done
        item = (engine, task_run, token, future)
        future.add_done_callback(lambda _: done.put(item))

    def _collect(self, client: distributed.Client, done: queue.SimpleQueue[_Sent | None]) -> None:
        """Take finished attempts in batches until `close`; each batch's values in one gather."""
        while True:
            item = done.get()
            batch = []
            while item is not None:
                batch.append(item)
                try:
                    item = done.get_nowait()
                except queue.Empty:
                    break
            if batch:
                try:
                    self._settle(client, batch)
                except Exception:
                    logger.exception("settling Dask attempts failed")
            if item is None:
                return

    def _settle(self, client: distributed.Client, batch: list[_Sent]) -> None:
        live = [sent for sent in batch if sent[2] == sent[1].token]  # not timed out or cancelled
        finished = [sent for sent in live if sent[3].status == "finished"]
        outcomes: dict[int, Any] = {}
        if finished:
            try:
                values = client.gather([sent[3] for sent in finished])
                outcomes = {id(sent): value for sent, value in zip(finished, values, strict=True)}
            except Exception:
                pass  # one at a time below, each with its own error
        for sent in live:
            engine, task_run, token, _ = sent
            engine.attempt_done(task_run, token, self._state(sent, outcomes.get(id(sent))))

    def _state(self, sent: _Sent, outcome: Outcome | None) -> State[Any]:
        _, task_run, _, future = sent
        if outcome is None:  # not in the batch's gather: Dask's error, or fetch it alone
            state = _dask_error_state(future)
            if state is not None:
                return state
            try:
                outcome = future.result()
            except Exception as error:
                return Crashed(f"Dask could not run the attempt: {error!r}", error)
        assert outcome is not None
        state = outcome_state(task_run, outcome)
        if outcome.kind == COMPLETED and state.is_completed():
            task_run.remote = future  # downstream runs take the value from its worker
        return state


def _dask_error_state(future: distributed.Future) -> State[Any] | None:
    """The state of an attempt Dask itself could not finish, or None if it finished."""
    status = future.status
    if status == "finished":
        return None
    if status == "cancelled":
        return Crashed("its Dask task was cancelled or its data lost")
    error = future.exception()
    if isinstance(error, distributed.KilledWorker):
        lost = WorkerLost(f"the Dask worker running it was lost: {error}")
        return Crashed(str(lost), lost)
    return Crashed(f"Dask could not run the attempt: {error!r}", error)


def _cluster_class(spec: str | type[Any] | None) -> Any:
    """A cluster class from a class, an import path (`"dask_kubernetes.KubeCluster"`), or
    None for `distributed.LocalCluster`."""
    if spec is None:
        return distributed.LocalCluster
    if isinstance(spec, str):
        module, _, name = spec.rpartition(".")
        if not module:
            raise ValueError(f"cluster_class {spec!r} is not an import path like 'pkg.Class'")
        return getattr(importlib.import_module(module), name)
    return spec


__all__ = ["DaskExecutor", "Outcome"]
