"""DaskTaskRunner on a real `distributed.LocalCluster` of 2 worker processes.

The task's function runs on a worker; the engine in this process keeps the run's state,
retries, timeouts, cache, result and record, so every state here is the one a local run gets.
Most tests share one cluster (the runner's `address=` form); those about what the runner does
with a cluster it makes itself (a worker lost mid-task) use `cluster_kwargs=`.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import state_name, task_runs_named

from headrace import flow, get_run_logger, task
from headrace.artifacts import create_markdown_artifact
from headrace.records import RunRecord
from headrace.task_runners import DaskTaskRunner

distributed = pytest.importorskip("distributed")

LOCAL = {"n_workers": 2, "threads_per_worker": 2, "processes": True, "dashboard_address": ":0"}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with distributed.LocalCluster(**LOCAL) as local:
        yield local


@pytest.fixture
def runner(cluster: Any) -> DaskTaskRunner:
    return DaskTaskRunner(address=cluster.scheduler_address)


def worker_pids(cluster: Any) -> set[int]:
    with distributed.Client(cluster) as client:
        return set(client.run(os.getpid).values())


@task
def whereami() -> int:
    import os

    return os.getpid()


@task
def double(x: int) -> int:
    return 2 * x


@task
def add(x: int, y: int) -> int:
    return x + y


@task
async def async_double(x: int) -> tuple[int, int]:
    import asyncio
    import os

    await asyncio.sleep(0.01)
    return 2 * x, os.getpid()


def test_submitted_and_mapped_runs_run_on_the_workers(
    runner: DaskTaskRunner, cluster: Any, load_record: Callable[..., RunRecord]
) -> None:
    @flow(task_runner=runner)
    def spread() -> tuple[list[int], int, list[int]]:
        doubled = double.map([1, 2, 3])
        total = add.submit(doubled[0], doubled[2])
        pids = [whereami.submit() for _ in range(6)]
        return [f.result() for f in doubled], total.result(), [f.result() for f in pids]

    doubled, total, pids = spread()
    assert doubled == [2, 4, 6]
    assert total == 8
    assert set(pids) <= worker_pids(cluster)
    assert os.getpid() not in pids
    record = load_record()
    assert [state_name(run) for run in task_runs_named(record, "double")] == ["Completed"] * 3


def test_upstream_results_reach_downstream_runs_as_dask_futures(runner: DaskTaskRunner) -> None:
    """The downstream run's Dask task depends on its upstream's: a worker takes the value
    from the worker holding it (the dashboard draws the same edge)."""

    @flow(task_runner=runner)
    def chained() -> tuple[int, dict[str, list[str]]]:
        first = double.submit(5)
        second = add.submit(first, 1)
        value = second.result()

        def dependencies(dask_scheduler: Any) -> dict[str, list[str]]:
            return {
                str(ts.key): [str(dep.key) for dep in ts.dependencies]
                for ts in dask_scheduler.tasks.values()
            }

        return value, runner.client.run_on_scheduler(dependencies)

    value, graph = chained()
    assert value == 11
    [add_key] = [key for key in graph if key.startswith("add-")]
    assert [dep.split("-")[0] for dep in graph[add_key]] == ["double"]


def test_async_tasks_run_on_the_workers(runner: DaskTaskRunner, cluster: Any) -> None:
    @flow(task_runner=runner)
    async def async_flow() -> list[tuple[int, int]]:
        futures = await async_double.map([1, 2])
        return [await future for future in futures]

    import asyncio

    results = asyncio.run(async_flow())
    assert [value for value, _ in results] == [2, 4]
    assert {pid for _, pid in results} <= worker_pids(cluster)


def test_a_direct_call_runs_in_the_flow_process(runner: DaskTaskRunner) -> None:
    @flow(task_runner=runner)
    def direct() -> tuple[int, int]:
        return whereami(), whereami.submit().result()

    called, submitted = direct()
    assert called == os.getpid()
    assert submitted != os.getpid()


def test_a_failing_task_fails_and_is_retried_per_retries(
    runner: DaskTaskRunner, tmp_path: Path, load_record: Callable[..., RunRecord]
) -> None:
    marker = tmp_path / "attempts"

    @task(retries=2)
    def flaky(path: str) -> int:
        from pathlib import Path

        from headrace import runtime

        attempts = Path(path)
        attempts.write_text(attempts.read_text() + "x" if attempts.exists() else "x")
        if runtime.task_run.run_count < 3:
            raise ValueError(f"attempt {runtime.task_run.run_count} fails")
        return runtime.task_run.run_count

    @task
    def always_fails() -> None:
        raise KeyError("missing")

    @flow(task_runner=runner)
    def failing() -> tuple[Any, Any, Any]:
        downstream = add.submit(always_fails.submit(), 1)
        return flaky.submit(str(marker)).result(), always_fails.submit().wait(), downstream.wait()

    third, failed, not_ready = failing(return_state=True).result()
    assert third == 3
    assert marker.read_text() == "xxx"
    assert failed.name == "Failed"
    with pytest.raises(KeyError, match="missing"):
        failed.result()
    assert not_ready.name == "NotReady"
    record = load_record()
    messages = [log["message"] for log in record.logs]
    failures = [m for m in messages if m.startswith("Task run 'flaky-0' failed")]
    assert len(failures) == 2
    assert "ValueError: attempt 1 fails" in failures[0]
    assert "raise ValueError" in failures[0]  # the worker's traceback, as text


def test_an_error_that_does_not_pickle_still_fails_the_run(runner: DaskTaskRunner) -> None:
    @task
    def unpicklable() -> None:
        import threading

        class LockError(Exception):
            def __init__(self) -> None:
                super().__init__("holding a lock")
                self.lock = threading.Lock()

        raise LockError()

    @flow(task_runner=runner)
    def fails() -> tuple[str, str]:
        state = unpicklable.submit().wait()
        return state.name, state.message

    name, message = fails()
    assert name == "Failed"
    assert "LockError: holding a lock" in message


def test_a_task_past_its_timeout_on_a_worker_is_timed_out(runner: DaskTaskRunner) -> None:
    @task(timeout_seconds=0.5)
    def sleeps_in_python() -> None:
        import time

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.01)

    @task(timeout_seconds=0.5)
    async def sleeps_async() -> None:
        import asyncio

        await asyncio.sleep(60)

    @task(timeout_seconds=30)
    def quick() -> int:
        return 1

    @flow(task_runner=runner)
    def slow() -> tuple[str, str, str, int]:
        in_python, in_loop = sleeps_in_python.submit().wait(), sleeps_async.submit().wait()
        return in_python.name, in_python.message, in_loop.name, quick.submit().result()

    sync_name, sync_message, async_name, value = slow()
    assert sync_name == async_name == "TimedOut"
    assert "exceeded its timeout of 0.5s" in sync_message
    assert value == 1


def test_worker_log_lines_and_prints_reach_the_run_record(
    runner: DaskTaskRunner, load_record: Callable[..., RunRecord]
) -> None:
    @task(log_prints=True)
    def chatty(x: int) -> int:
        import os

        get_run_logger().info("working on %d in %d", x, os.getpid())
        print(f"printed {x}")
        return x

    @flow(task_runner=runner)
    def talks() -> list[int]:
        return [f.result() for f in chatty.map([1, 2])]

    assert talks() == [1, 2]
    record = load_record()
    runs = {run["name"]: run["id"] for run in record.task_runs.values()}
    lines = {(log.get("task_run_id"), log["message"]) for log in record.logs}
    for index in (1, 2):
        run_id = runs[f"chatty-{index - 1}"]
        assert any(
            task_run_id == run_id and message.startswith(f"working on {index} in ")
            for task_run_id, message in lines
        )
        assert (run_id, f"printed {index}") in lines
    worker_lines = [m for _, m in lines if m.startswith("working on")]
    assert all(not m.endswith(f" {os.getpid()}") for m in worker_lines)


def test_artifacts_made_on_a_worker_reach_the_run_record(
    runner: DaskTaskRunner, load_record: Callable[..., RunRecord]
) -> None:
    @task
    def reports(x: int) -> str:
        import os

        create_markdown_artifact(f"made in {os.getpid()}", key=f"report-{x}")
        return "done"

    @flow(task_runner=runner)
    def f() -> list[str]:
        return [future.result() for future in reports.map([1, 2])]

    assert f() == ["done", "done"]
    record = load_record()
    runs = {run["name"]: run["id"] for run in record.task_runs.values()}
    made = {a["key"]: a for a in record.artifacts}
    assert made["report-1"]["task_run_id"] == runs["reports-0"]
    assert made["report-2"]["task_run_id"] == runs["reports-1"]
    assert all(a["data"] != f"made in {os.getpid()}" for a in made.values())  # on a worker


def test_cache_and_persisted_results_stay_with_the_engine(
    runner: DaskTaskRunner, tmp_path: Path
) -> None:
    calls = tmp_path / "calls"

    @task(cache_key_fn=lambda _run, parameters: f"square-{parameters['x']}", persist_result=True)
    def square(x: int, path: str) -> int:
        from pathlib import Path

        with Path(path).open("a") as log:
            log.write("called\n")
        return x * x

    @flow(task_runner=runner)
    def cached() -> Any:
        return square.submit(7, str(calls), return_state=True)

    first, second = cached(), cached()
    assert first.name == "Completed"
    assert second.name == "Cached"
    assert first.result() == second.result() == 49
    assert calls.read_text() == "called\n"
    assert first.result_uri and Path(first.result_uri.removeprefix("file://")).exists()


def test_a_worker_killed_mid_task_crashes_the_run_and_retries_bring_it_back(
    tmp_path: Path, load_record: Callable[..., RunRecord]
) -> None:
    """The runner's own cluster: a worker process SIGKILLed mid-task ends that attempt
    Crashed (Dask does not rerun it); `retries` gives it another attempt on a worker."""
    pid_file = tmp_path / "pid"

    @task(retries=1)
    def survives(path: str) -> str:
        import os
        import time
        from pathlib import Path

        from headrace import runtime

        if runtime.task_run.run_count == 1:
            Path(path).write_text(str(os.getpid()))
            time.sleep(120)
        return f"attempt {runtime.task_run.run_count}"

    @task
    def dies(path: str) -> None:
        import os
        import time
        from pathlib import Path

        Path(path).write_text(str(os.getpid()))
        time.sleep(120)

    def kill_when_started(path: Path) -> None:
        while not path.exists() or not path.read_text():
            time.sleep(0.05)
        os.kill(int(path.read_text()), signal.SIGKILL)
        path.unlink()

    @flow(task_runner=DaskTaskRunner(cluster_kwargs=LOCAL))
    def lose_workers() -> tuple[str, str, str]:
        retried = survives.submit(str(pid_file))
        kill_when_started(pid_file)
        second = retried.result()
        crashed = dies.submit(str(pid_file))
        kill_when_started(pid_file)
        state = crashed.wait()
        return second, state.name, state.message

    second, crashed, message = lose_workers()
    assert second == "attempt 2"
    assert crashed == "Crashed"
    assert "worker running it was lost" in message
    record = load_record()
    [survived] = task_runs_named(record, "survives")
    assert state_name(survived) == "Completed"
    [died] = task_runs_named(record, "dies")
    assert state_name(died) == "Crashed"


def test_address_and_cluster_kwargs_do_not_mix() -> None:
    with pytest.raises(ValueError, match="not both"):
        DaskTaskRunner(address="tcp://127.0.0.1:8786", cluster_kwargs={"n_workers": 1})


def test_no_scheduler_at_the_address_crashes_the_runs_with_the_reason() -> None:
    @flow(task_runner=DaskTaskRunner(address="tcp://127.0.0.1:9", client_kwargs={"timeout": 1}))
    def unreachable() -> tuple[str, str]:
        state = double.submit(1).wait()
        return state.name, state.message

    name, message = unreachable()
    assert name == "Crashed"
    assert "could not send the attempt to Dask" in message


def test_a_cluster_class_by_import_path_with_adaptive_workers() -> None:
    """Prefect's form: the cluster made per flow run from `cluster_class` (here an import
    path), starting with no worker; `adapt_kwargs` lets Dask add them as tasks arrive."""
    runner = DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={**LOCAL, "n_workers": 0},
        adapt_kwargs={"minimum": 0, "maximum": 2},
    )

    @flow(task_runner=runner)
    def adaptive() -> list[int]:
        return [future.result() for future in double.map([1, 2, 3])] + [whereami.submit().result()]

    *doubled, pid = adaptive()
    assert doubled == [2, 4, 6]
    assert pid != os.getpid()


def test_hooks_and_allow_failure_work_as_locally(runner: DaskTaskRunner) -> None:
    """Hooks run in the flow's process with the run's final state; `allow_failure` hands a
    downstream run on a worker the upstream's exception as its value."""
    from headrace.utilities.annotations import allow_failure

    seen: list[tuple[str, str]] = []

    def on_failure(task: Any, task_run: Any, state: Any) -> None:
        seen.append((task_run.name, state.name))

    @task(on_failure=[on_failure])
    def breaks() -> int:
        raise RuntimeError("broken upstream")

    @task
    def describe(value: Any) -> str:
        return f"{type(value).__name__}: {value}"

    @flow(task_runner=runner)
    def tolerant() -> str:
        return describe.submit(allow_failure(breaks.submit())).result()

    assert tolerant() == "RuntimeError: broken upstream"
    assert seen == [("breaks-0", "Failed")]
