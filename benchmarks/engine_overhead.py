"""Engine overhead: three mapped stages, independent submits, and timeout-to-stop latency.

    uv run python benchmarks/engine_overhead.py [--n 10000] [--repeat 3]

Prints the wall time and the overhead per task run (the tasks do no work, so all of it is
overhead). Goals: at most 100 us per task run, N=10,000 (30,000 task runs) in at most 3 s on 2
cores, and a `time.sleep(10)` body stopped within 0.5 s of its 2 s flow timeout.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("HEADRACE_HOME", tempfile.mkdtemp(prefix="headrace-bench-"))
os.environ.setdefault("HEADRACE_LOGGING_LEVEL", "WARNING")

from headrace import flow, task


@task
def double(x: int) -> int:
    return 2 * x


@task
def halve(x: int) -> float:
    return x / 2


@task
def triple(x: float) -> float:
    return 3 * x


@task
def noop(x: int) -> int:
    return x


@flow(persist_result=False)
def three_stages(n: int) -> float:
    tripled = triple.map(halve.map(double.map(list(range(n)))))
    return sum(future.result() for future in tripled)


@flow(persist_result=False)
def independent_submits(n: int) -> int:
    futures = [noop.submit(i) for i in range(n)]
    return sum(future.result() for future in futures)


stopped_at: list[float] = []


@flow(timeout_seconds=2, persist_result=False)
def sleeps_past_timeout() -> None:
    try:
        time.sleep(10)
    finally:
        stopped_at.append(time.perf_counter())


def timed(fn: object, *args: object) -> float:
    start = time.perf_counter()
    fn(*args)  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n = args.n

    three_stages(10)  # warm up: engine thread, worker pool, imports
    stage_times = [timed(three_stages, n) for _ in range(args.repeat)]
    best = min(stage_times)
    print(f"3 mapped stages, N={n} ({3 * n} task runs)")
    print(f"  wall time      best {best:.3f} s   median {statistics.median(stage_times):.3f} s")
    print(f"  per task run   {best / (3 * n) * 1e6:.1f} us   (goal <= 100 us; N=10,000 <= 3 s)")

    submit_times = [timed(independent_submits, n) for _ in range(args.repeat)]
    best = min(submit_times)
    print(f"{n} independent submits")
    print(f"  wall time      best {best:.3f} s   median {statistics.median(submit_times):.3f} s")
    print(f"  per task run   {best / n * 1e6:.1f} us")

    start = time.perf_counter()
    state = sleeps_past_timeout(return_state=True)
    late = stopped_at[-1] - (start + 2.0)
    print("flow timeout of 2 s over time.sleep(10)")
    print(f"  final state    {state.name}")
    print(f"  stopped        {late * 1000:.1f} ms after the deadline   (goal <= 500 ms)")


if __name__ == "__main__":
    main()
