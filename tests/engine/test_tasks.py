"""`@task` options and calling conventions, seen from a flow."""

from __future__ import annotations

import threading
import time

import pytest

from headrace import HeadraceFuture, Task, flow, task


@task
def add(x: int, y: int) -> int:
    return x + y


def test_calling_a_task_outside_a_flow_just_runs_the_function() -> None:
    assert add(1, 2) == 3


def test_calling_an_async_task_outside_a_flow_gives_its_coroutine() -> None:
    import asyncio

    @task
    async def aadd(x: int, y: int) -> int:
        return x + y

    assert asyncio.run(aadd(1, 2)) == 3


def test_submit_outside_a_flow_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match=r"add\.submit\(\) was called outside a flow"):
        add.submit(1, 2)
    with pytest.raises(RuntimeError, match=r"add\.map\(\) was called outside a flow"):
        add.map([1], [2])


def test_direct_call_returns_the_result_and_return_state_the_state() -> None:
    box = []

    @flow
    def f() -> int:
        box.append(add(3, 4, return_state=True))
        return add(1, 2)

    value = f()
    (state,) = box
    assert value == 3
    assert state.is_completed() and state.result() == 7


def test_submit_returns_a_future_and_return_state_the_final_state() -> None:
    box = []

    @flow
    def f() -> None:
        box.append(add.submit(1, 2))
        box.append(add.submit(5, 5, return_state=True))

    f()
    future, state = box
    assert isinstance(future, HeadraceFuture)
    assert future.result() == 3
    assert state.is_completed() and state.result() == 10


def test_name_version_and_tags_reach_the_record(load_record) -> None:
    @task(name="renamed", version="1.2", tags=["etl", "nightly"])
    def original() -> int:
        return 1

    @flow(name="tagged", version="9", tags={"team-a"})
    def f() -> int:
        return original()

    assert original.name == "renamed" and original.version == "1.2"
    assert f() == 1
    record = load_record()
    (run,) = record.task_runs.values()
    assert run["task_key"] == "renamed"
    assert run["name"] == "renamed-0"
    assert run["tags"] == ["etl", "nightly"]
    assert record.root["flow_name"] == "tagged"
    assert record.root["version"] == "9"
    assert record.root["tags"] == ["team-a"]


def test_default_flow_name_uses_dashes() -> None:
    @flow
    def my_etl_flow() -> None:
        pass

    assert my_etl_flow.name == "my-etl-flow"
    assert add.name == "add"


def test_with_options_copies_and_rejects_unknown_options() -> None:
    retrying = add.with_options(name="add-retrying", retries=3)
    assert isinstance(retrying, Task)
    assert retrying.retries == 3 and retrying.name == "add-retrying"
    assert add.retries == 0
    with pytest.raises(TypeError, match="unknown options"):
        add.with_options(colour="red")


def test_invalid_options_are_rejected_at_decoration() -> None:
    with pytest.raises(ValueError, match="retries"):
        task(retries=-1)(lambda: None)
    with pytest.raises(ValueError, match="timeout_seconds"):
        task(timeout_seconds=0)(lambda: None)
    with pytest.raises(TypeError):
        task(42)  # type: ignore[call-overload]


def test_keyword_only_defaults_and_var_args_are_bound_like_python() -> None:
    @task
    def shaped(a: int, /, b: int = 2, *rest: int, c: int = 3, **extra: int) -> tuple:
        return a, b, rest, c, extra

    @flow
    def f() -> tuple:
        return shaped(1), shaped.submit(1, 5, 6, 7, c=8, d=9).result()

    assert f() == ((1, 2, (), 3, {}), (1, 5, (6, 7), 8, {"d": 9}))


def test_sync_direct_call_in_a_sync_flow_runs_in_the_flow_thread() -> None:
    @task
    def where() -> str:
        return threading.current_thread().name

    @flow
    def f() -> tuple[str, str, str]:
        return threading.current_thread().name, where(), where.submit().result()

    flow_thread, called, submitted = f()
    assert called == flow_thread
    assert submitted != flow_thread and submitted.startswith("headrace-worker")


def test_sequential_task_runner_runs_one_task_at_a_time() -> None:
    from headrace import SequentialTaskRunner

    active = []
    peak = [0]

    @task
    def busy(i: int) -> int:
        active.append(i)
        peak[0] = max(peak[0], len(active))
        time.sleep(0.02)
        active.remove(i)
        return i

    @flow(task_runner=SequentialTaskRunner)
    def f() -> list[int]:
        futures = [busy.submit(i) for i in range(5)]
        assert all(future.done() for future in futures)  # each ended before submit returned
        return [future.result() for future in futures]

    assert f() == [0, 1, 2, 3, 4]
    assert peak[0] == 1


def test_concurrent_task_runner_runs_tasks_at_the_same_time() -> None:
    from headrace import ConcurrentTaskRunner

    barrier = threading.Barrier(4, timeout=10)

    @task
    def meet(i: int) -> int:
        barrier.wait()  # only returns once all four run at once
        return i

    @flow(task_runner=ConcurrentTaskRunner(max_workers=4))
    def f() -> list[int]:
        return [future.result() for future in [meet.submit(i) for i in range(4)]]

    assert f() == [0, 1, 2, 3]


def test_log_prints_sends_print_to_the_run_record(load_record, capsys) -> None:
    @task(log_prints=True)
    def chatty(x: int) -> int:
        print("hello from the task", x)
        return x

    @task
    def quiet() -> None:
        print("plain print")

    @flow
    def f() -> int:
        quiet()
        return chatty.submit(7).result()

    assert f() == 7
    record = load_record()
    messages = [(log.get("task_run_name"), log["message"]) for log in record.logs]
    assert ("chatty-0", "hello from the task 7") in messages
    assert not any("plain print" in message for _, message in messages)
    assert "plain print" in capsys.readouterr().out


def test_flow_log_prints_covers_its_tasks(load_record) -> None:
    @task
    def inner() -> None:
        print("inner says hi")

    @flow(log_prints=True)
    def f() -> None:
        print("flow says hi")
        inner.submit().wait()

    f()
    record = load_record()
    by_message = {log["message"]: log for log in record.logs}
    assert "flow says hi" in by_message
    assert "task_run_id" not in by_message["flow says hi"]
    assert by_message["inner says hi"]["task_run_name"] == "inner-0"


def test_a_task_called_or_submitted_in_a_task_is_a_run_of_the_flow(load_record) -> None:
    # Prefect 2.14 raises RuntimeError("Tasks cannot be run from within tasks. ..."); Headrace
    # runs them as task runs of the enclosing flow, with their own retries (a superset).
    attempts: list[int] = []

    @task(retries=1)
    def flaky(x: int) -> int:
        attempts.append(x)
        if len(attempts) == 1:
            raise RuntimeError("first attempt")
        return x + 1

    @task
    def outer(x: int) -> int:
        return flaky(x) + flaky.submit(x).result()

    @flow
    def f() -> int:
        return outer(1)

    assert f() == 4
    assert attempts == [1, 1, 1]
    names = sorted(run["name"] for run in load_record().task_runs.values())
    assert names == ["flaky-0", "flaky-1", "outer-0"]
