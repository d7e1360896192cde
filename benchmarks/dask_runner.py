"""DaskTaskRunner next to plain `dask.distributed` and to the thread runner, in the same run.

    uv run python benchmarks/dask_runner.py [--n 10000] [--map 1000] [--work-ms 20]
                                            [--workers 2] [--repeat 1]

One `distributed.LocalCluster` of `--workers` worker processes (one thread each) serves both
Dask sides, so they share a scheduler and workers:

- the 3-stage chain (`triple.map(halve.map(double.map(range(n))))`, tasks that do no work)
  at `--n`: the floor is the same graph as three `client.map` calls and one `gather`;
- a CPU-bound map: `--map` tasks of `--work-ms` ms of pure-Python work each; the floor is
  `client.map` and `gather` of the same function.

Each is also timed on the thread runner (`ConcurrentTaskRunner`, the default), whose threads
share one GIL. The overhead lines give, per task, what Headrace adds on top of Dask next to
Dask's own cost per task (its time minus the work spread over the workers); the goal is at most
2x. Machine load varies, so sides run alternately and the best of `--repeat` counts.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

from scratch import scratch_home

os.environ["HEADRACE_HOME"] = scratch_home()
os.environ.setdefault("HEADRACE_LOGGING_LEVEL", "WARNING")

import distributed

from headrace import flow, task
from headrace.task_runners import ConcurrentTaskRunner, DaskTaskRunner


def double_fn(x: int) -> int:
    return 2 * x


def halve_fn(x: int) -> float:
    return x / 2


def triple_fn(x: float) -> float:
    return 3 * x


def busy_fn(ms: float) -> int:
    """`ms` milliseconds of pure-Python work (holds the GIL throughout)."""
    end = time.thread_time() + ms / 1000
    count = 0
    while time.thread_time() < end:
        count += 1
    return count


double = task(double_fn)
halve = task(halve_fn)
triple = task(triple_fn)
busy = task(busy_fn)


def three_stages(n: int) -> float:
    tripled = triple.map(halve.map(double.map(list(range(n)))))
    return sum(future.result() for future in tripled)


def cpu_map(count: int, ms: float) -> int:
    return sum(future.result() for future in busy.map([ms] * count))


def on(runner: Any, body: Callable[..., Any]) -> Callable[..., Any]:
    return flow(persist_result=False, task_runner=runner)(body)  # type: ignore[no-any-return]


def dask_three_stages(client: distributed.Client, n: int) -> float:
    doubled = client.map(double_fn, range(n), pure=False)
    halved = client.map(halve_fn, doubled, pure=False)
    tripled = client.map(triple_fn, halved, pure=False)
    return sum(client.gather(tripled))


def dask_cpu_map(client: distributed.Client, count: int, ms: float) -> int:
    return sum(client.gather(client.map(busy_fn, [ms] * count, pure=False)))


def best(fn: Callable[..., Any], *args: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--map", type=int, default=1_000)
    parser.add_argument("--work-ms", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    with (
        distributed.LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        runner = DaskTaskRunner(address=cluster.scheduler_address)
        on_dask_chain, on_threads_chain = on(runner, three_stages), on(None, three_stages)
        on_dask_map = on(runner, cpu_map)
        on_threads_map = on(ConcurrentTaskRunner(), cpu_map)
        # warm up: imports, worker processes, connections
        dask_three_stages(client, 10)
        on_dask_chain(10)
        on_threads_chain(10)

        n, count, ms = args.n, args.map, args.work_ms
        load = "/".join(f"{value:.1f}" for value in os.getloadavg())
        print(
            f"LocalCluster: {args.workers} worker processes x 1 thread; best of {args.repeat}; "
            f"{os.cpu_count()} CPUs, load average {load} at the start"
        )
        print("| case | plain Dask (client.map) | Headrace on Dask | Headrace threads |")
        print("|---|---|---|---|")
        rows = []
        for label, tasks, work, dask_side, ours, threads in (
            (
                f"3-stage chain, N={n:,} ({3 * n:,} tasks)",
                3 * n,
                0.0,
                lambda: dask_three_stages(client, n),
                lambda: on_dask_chain(n),
                lambda: on_threads_chain(n),
            ),
            (
                f"CPU-bound map, {count:,} tasks x {ms:g} ms",
                count,
                count * ms / 1000 / args.workers,
                lambda: dask_cpu_map(client, count, ms),
                lambda: on_dask_map(count, ms),
                lambda: on_threads_map(count, ms),
            ),
        ):
            dask_s = best(dask_side, repeat=args.repeat)
            ours_s = best(ours, repeat=args.repeat)
            threads_s = best(threads, repeat=args.repeat)
            print(f"| {label} | {dask_s:.2f} s | {ours_s:.2f} s | {threads_s:.2f} s |")
            rows.append((label, tasks, work, dask_s, ours_s))
        load = "/".join(f"{value:.1f}" for value in os.getloadavg())
        print(f"\nload average {load} at the end (above the CPU count, the figures are noisy)")
        for label, tasks, work, dask_s, ours_s in rows:
            own = (dask_s - work) / tasks * 1e3
            added = (ours_s - dask_s) / tasks * 1e3
            ratio = added / own if own > 0 else float("inf")
            print(
                f"{label}: Dask's own cost {own:.3f} ms/task (its time minus {work:.1f} s of "
                f"work over the workers); Headrace adds {added:.3f} ms/task = {ratio:.2f}x "
                "Dask's own (goal <= 2x)"
            )


if __name__ == "__main__":
    main()
