"""A run with every shape the flow-run graph draws: two mapped stages, a subflow, a task
that holds the run open and one that waits on it (pending while the gate is shut).

`headrace run examples/flows/stages.py:stages -p n=100`, then `headrace graph RUN` or the web
UI (`headrace ui`); `report` leaves a markdown artifact (`headrace artifacts RUN`). With `gate_file`, the gate task waits until that file (or object: any
fsspec URL, s3:// included) exists.
"""

from __future__ import annotations

import time

import fsspec

from headrace import flow, get_run_logger, task
from headrace.artifacts import create_markdown_artifact


@task(persist_result=True)
def double(x: int) -> int:
    return 2 * x


@task(persist_result=True)
def halve(x: int) -> float:
    return x / 2


@task
def square(x: float) -> float:
    return x * x


@task
def gate(path: str = "", timeout: float = 120) -> str:
    """Holds the run open until `path` (a path or URL, s3:// included) exists, so a
    downstream task stays pending."""
    if not path:
        return "open"
    fs, where = fsspec.core.url_to_fs(path)
    deadline = time.monotonic() + timeout
    while not fs.exists(where):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear in {timeout}s")
        time.sleep(0.2)
        fs.invalidate_cache()  # s3fs may remember the listing that lacked it
    return "open"


@task(persist_result=True)
def report(total: float, n: int) -> dict[str, float]:
    create_markdown_artifact(f"# Report\n\n{n} numbers, sum of squares {total:g}", key="report")
    return {"n": n, "sum_of_squares": total}


@flow
def summarize(values: list[float]) -> float:
    """A subflow: squares each value in a mapped stage and sums them."""
    return sum(future.result() for future in square.map(values))


@flow
def stages(n: int = 10, gate_file: str = "") -> dict[str, float]:
    get_run_logger().info("doubling and halving %d numbers", n)
    halved = halve.map(double.map(range(n)))
    opened = gate.submit(gate_file)
    total = summarize([future.result() for future in halved])
    done = report.submit(total, n, wait_for=[opened])  # pending until the gate opens
    get_run_logger().info("report waits for the gate")
    return done.result()
