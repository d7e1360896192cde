"""The demo flow: three mapped stages, each feeding the next, plus a summary task."""

from __future__ import annotations

import time

from headrace import flow, get_run_logger, task


@task
def double(x: int) -> int:
    time.sleep(0.002)
    return 2 * x


@task
def halve(x: int) -> float:
    time.sleep(0.002)
    return x / 2


@task
def triple(x: float) -> float:
    time.sleep(0.002)
    return 3 * x


@task(persist_result=True)
def summarize(values: list[float]) -> dict[str, float]:
    return {"count": len(values), "total": sum(values)}


@flow(timeout_seconds=600)
def pipeline(n: int = 200) -> dict[str, float]:
    logger = get_run_logger()
    logger.info("mapping %d numbers through double, halve and triple", n)
    tripled = triple.map(halve.map(double.map(list(range(n)))))
    summary = summarize(tripled)
    logger.info("total is %s", summary["total"])
    return summary
