"""Engine overhead next to the floor of Python threads, measured in the same process run.

    uv run python benchmarks/engine_overhead.py [--n 10000] [--chain 2000] [--big 100000]
                                                [--repeat 3] [--skip-big] [--runs K]
                                                [--compiled]

Five flows whose tasks do no work, so the wall time is all overhead, each timed next to the
same work on a bare `concurrent.futures.ThreadPoolExecutor` (32 threads, Headrace's default):
the floor submits one by one and blocks threads on `result()`, with no states, no record and
no retries. Machine load varies, so read the ratio, not the absolute time: floor and flow are
timed alternately, best of `--repeat` each (of 10 at least for the 3-stage flow at N=1,000),
each after a `gc.collect()` (a full collection costs 50-250 ms at N=10,000: whether one falls
inside a run depended on the run before). The CPU column is the process's CPU time (all
threads) over the same runs, steadier than wall time on a loaded machine.

The 3-stage flow at `--big` runs `--repeat` times per side, each run in a fresh child process
(alternately), so its peak RSS is its own; its best wall time stands next to the smaller
flows' best. The line after it gives the memory above the floor's per finished task run
(goal <= 1 KB, from each side's largest peak RSS) and the cost per task run at 1k, 10k and
100k (goal: flat within 10%).

The floor's own times swing by a third between process runs (32 threads convoying on the GIL
in some, not in others), and a ratio with them. `--runs K` runs the whole comparison K times,
each in a fresh process, one after the other, and prints each figure's median and range over
the K runs.

`--compiled` measures the engine as the image ships it: the hot path compiled with mypyc
(`scripts/build-compiled`). The first line printed names the build measured.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from scratch import compiled_build, scratch_home

os.environ["HEADRACE_HOME"] = scratch_home()
os.environ.setdefault("HEADRACE_LOGGING_LEVEL", "WARNING")

from headrace import flow, task
from headrace.engine.build import engine_build, is_compiled

WORKERS = 32
A = TypeVar("A")
B = TypeVar("B")


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


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@flow(persist_result=False)
def three_stages(n: int) -> float:
    tripled = triple.map(halve.map(double.map(list(range(n)))))
    return sum(future.result() for future in tripled)


@flow(persist_result=False)
def independent_submits(n: int) -> int:
    futures = [noop.submit(i) for i in range(n)]
    return sum(future.result() for future in futures)


@flow(persist_result=False)
def fan_in(n: int) -> int:
    return total.submit([noop.submit(i) for i in range(n)]).result()


@flow(persist_result=False)
def chain(n: int) -> int:
    future = noop.submit(0)
    for _ in range(n - 1):
        future = noop.submit(future)  # type: ignore[call-overload]  # a future for an int
    return future.result()


# -- the floor: the same work on bare threads ------------------------------------------------
def _after(fn: Callable[[A], B], upstream: Future[A]) -> B:
    return fn(upstream.result())


def _sum_of(futures: list[Future[int]]) -> int:
    return sum(future.result() for future in futures)


def floor_three_stages(pool: ThreadPoolExecutor, n: int) -> float:
    doubled = [pool.submit(double.fn, x) for x in range(n)]
    halved = [pool.submit(_after, halve.fn, f) for f in doubled]
    tripled = [pool.submit(_after, triple.fn, f) for f in halved]
    return sum(f.result() for f in tripled)


def floor_submits(pool: ThreadPoolExecutor, n: int) -> int:
    futures = [pool.submit(noop.fn, i) for i in range(n)]
    return sum(f.result() for f in futures)


def floor_fan_in(pool: ThreadPoolExecutor, n: int) -> int:
    futures = [pool.submit(noop.fn, i) for i in range(n)]
    return pool.submit(_sum_of, futures).result()


def floor_chain(pool: ThreadPoolExecutor, n: int) -> int:
    future = pool.submit(noop.fn, 0)
    for _ in range(n - 1):
        future = pool.submit(_after, noop.fn, future)
    return future.result()


FLOWS: dict[str, tuple[Callable[[int], object], Callable[[ThreadPoolExecutor, int], object]]] = {
    "three_stages": (three_stages, floor_three_stages),
    "submits": (independent_submits, floor_submits),
    "fan_in": (fan_in, floor_fan_in),
    "chain": (chain, floor_chain),
}


def timed(fn: Callable[..., object], *args: object) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def timed_cpu(fn: Callable[..., object], *args: object) -> tuple[float, float]:
    gc.collect()  # each side starts from the same collector state, not the other's leftovers
    start, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - start, time.process_time() - cpu


class Pair:
    """Best wall and CPU times of a flow and of its floor."""

    def __init__(self, ours: list[tuple[float, float]], floor: list[tuple[float, float]]) -> None:
        self.ours = min(wall for wall, _ in ours)
        self.floor = min(wall for wall, _ in floor)
        self.ours_cpu = min(cpu for _, cpu in ours)
        self.floor_cpu = min(cpu for _, cpu in floor)


def side_by_side(name: str, n: int, repeat: int, pool: ThreadPoolExecutor) -> Pair:
    """Best of `repeat` for the flow and its floor, timed alternately."""
    headrace_fn, floor_fn = FLOWS[name]
    ours, floor = [], []
    for _ in range(repeat):
        floor.append(timed_cpu(floor_fn, pool, n))
        ours.append(timed_cpu(headrace_fn, n))
    return Pair(ours, floor)


def one_in_child(side: str, n: int) -> tuple[float, float, int]:
    """Run the 3-stage flow (or its floor) once in a fresh process: wall and CPU seconds, and
    peak RSS in KB."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", side, "--n", str(n)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[0]), float(out[1]), int(out[2])


def child(side: str, n: int) -> None:
    if side == "floor":
        with ThreadPoolExecutor(WORKERS) as pool:
            floor_three_stages(pool, 10)
            wall, cpu = timed_cpu(floor_three_stages, pool, n)
    else:
        three_stages(10)
        wall, cpu = timed_cpu(three_stages, n)
    print(wall, cpu, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


# One run's figures by name, for `--runs`: each flow's wall-time ratio, and the goals' others.
figures: dict[str, float] = {}


def row(key: str, label: str, pair: Pair) -> None:
    cpu = f"{pair.ours_cpu:.3f} / {pair.floor_cpu:.3f} s = {pair.ours_cpu / pair.floor_cpu:.2f}x"
    ratio = pair.ours / pair.floor
    figures[key] = ratio
    print(f"| {label} | {pair.ours:.3f} s | {pair.floor:.3f} s | {ratio:.2f}x | {cpu} |")


def _ratio(value: float) -> str:
    return f"{value:.2f}x"


def _micros(value: float) -> str:
    return f"{value:.1f} us"


def _bytes(value: float) -> str:
    return f"{value:.0f} B"


def _percent(value: float) -> str:
    return f"{value:.0%}"


# What `--runs` summarises: a figure's name, what it is, its goal, and how it is shown.
SUMMARY: list[tuple[str, str, str, Callable[[float], str]]] = [
    ("three_stages_1000", "3 mapped stages, N=1,000", "", _ratio),
    ("three_stages_n", "3 mapped stages, N={n:,}", "<= 1.2x", _ratio),
    ("submits", "{n:,} independent submits", "<= 1.2x", _ratio),
    ("submit_us", "a submit's cost, Headrace", "", _micros),
    ("floor_submit_us", "a submit's cost, the floor", "", _micros),
    ("fan_in", "one task over {n:,} futures (fan-in)", "<= 1.2x", _ratio),
    ("chain", "{chain:,} tasks each waiting on the one before", "< 2x", _ratio),
    ("three_stages_big", "3 mapped stages, N={big:,}, in child processes", "", _ratio),
    ("memory", "memory above the floor per finished task run", "<= 1024 B", _bytes),
    ("spread", "Headrace's cost per task run, its spread over N", "<= 10%", _percent),
]


def summarise(runs: list[dict[str, float]], args: argparse.Namespace) -> None:
    print(f"\n{len(runs)} runs, each in a fresh process: median and range\n")
    print("| figure (Headrace/floor for a flow) | median | range | goal |")
    print("|---|---|---|---|")
    for key, label, goal, shown in SUMMARY:
        values = sorted(run[key] for run in runs if key in run)
        if values:
            median = shown(statistics.median(values))
            label = label.format(n=args.n, chain=args.chain, big=args.big)
            print(f"| {label} | {median} | {shown(values[0])} to {shown(values[-1])} | {goal} |")


def in_fresh_processes(args: argparse.Namespace, argv: list[str]) -> None:
    """The whole comparison `args.runs` times, each in a child of its own, one after the other."""
    results = []
    runs = args.runs
    for index in range(runs):
        out = subprocess.run(
            [sys.executable, __file__, *argv, "--figures"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        print(f"run {index + 1} of {runs}:\n{out.rsplit(chr(10), 2)[0]}\n", flush=True)
        results.append(json.loads(out.strip().splitlines()[-1]))
    summarise(results, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--chain", type=int, default=2_000)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--runs", type=int, default=1, help="fresh processes, summarised")
    parser.add_argument("--child", choices=["floor", "headrace"])
    parser.add_argument("--figures", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--compiled", action="store_true", help="the image's (mypyc) build")
    args = parser.parse_args()
    if args.compiled and not is_compiled():
        if "BENCH_COMPILED_BUILD" in os.environ:  # this is the run again, and it did not load
            sys.exit(f"--compiled: {os.environ['BENCH_COMPILED_BUILD']} did not load")
        # Again, importing the compiled build first (children inherit PYTHONPATH).
        build = compiled_build()
        path = os.pathsep.join(filter(None, (build, os.environ.get("PYTHONPATH"))))
        env = {**os.environ, "PYTHONPATH": path, "BENCH_COMPILED_BUILD": build}
        again = subprocess.run([sys.executable, __file__, *sys.argv[1:]], env=env, check=False)
        sys.exit(again.returncode)
    if args.child:
        child(args.child, args.n)
        return
    if args.runs > 1:
        in_fresh_processes(args, [*sys.argv[1:], "--runs", "1"])  # the last --runs counts
        return
    n = args.n

    three_stages(10)  # warm up: engine thread, worker pool, imports
    print(f"engine: {engine_build()}\n")
    print("| flow | Headrace | thread floor | Headrace/floor | CPU, Headrace / floor |")
    print("|---|---|---|---|---|")
    with ThreadPoolExecutor(WORKERS) as pool:
        floor_three_stages(pool, 10)
        per_run: dict[int, float] = {}
        floor_per_run: dict[int, float] = {}
        for size in (1_000, n):
            # A 25 ms flow is at the mercy of one scheduler hiccup: best of 10 at least.
            repeat = args.repeat if size >= n else max(args.repeat, 10)
            pair = side_by_side("three_stages", size, repeat, pool)
            per_run[size] = pair.ours / (3 * size)
            floor_per_run[size] = pair.floor / (3 * size)
            key = "three_stages_1000" if size == 1_000 else "three_stages_n"
            row(key, f"3 mapped stages, N={size:,} ({3 * size:,} runs)", pair)
        submits = side_by_side("submits", n, args.repeat, pool)
        row("submits", f"{n:,} independent submits", submits)
        figures["submit_us"] = submits.ours / n * 1e6
        figures["floor_submit_us"] = submits.floor / n * 1e6
        fan_in_pair = side_by_side("fan_in", n, args.repeat, pool)
        row("fan_in", f"one task over {n:,} futures (fan-in)", fan_in_pair)
        pair = side_by_side("chain", args.chain, args.repeat, pool)
        hop = pair.ours / args.chain * 1e6
        row(
            "chain",
            f"{args.chain:,} tasks each waiting on the one before ({hop:.0f} us a hop)",
            pair,
        )
    if not args.skip_big:
        floor_runs, our_runs = [], []
        for _ in range(args.repeat):
            floor_runs.append(one_in_child("floor", args.big))
            our_runs.append(one_in_child("headrace", args.big))
        big = Pair([run[:2] for run in our_runs], [run[:2] for run in floor_runs])
        ours_kb = max(run[2] for run in our_runs)
        floor_kb = max(run[2] for run in floor_runs)
        per_run[args.big] = big.ours / (3 * args.big)
        floor_per_run[args.big] = big.floor / (3 * args.big)
        label = f"3 mapped stages, N={args.big:,}, each run in a child process"
        label += f" (peak RSS {ours_kb // 1024} MB vs {floor_kb // 1024} MB)"
        row("three_stages_big", label, big)
        above = (ours_kb - floor_kb) * 1024 / (3 * args.big)
        figures["memory"] = above
        print(f"\nmemory above the floor per finished task run: {above:.0f} B (goal <= 1024 B)")
    for label, costs in (("Headrace", per_run), ("floor", floor_per_run)):
        listed = ", ".join(f"{size:,}: {cost * 1e6:.1f} us" for size, cost in costs.items())
        spread = max(costs.values()) / min(costs.values()) - 1
        goal = " (goal <= 10%)" if label == "Headrace" else ""
        if label == "Headrace":
            figures["spread"] = spread
        print(f"{label} cost per task run at N = {listed}; spread {spread:.0%}{goal}")
    # The floor's own cost per run grows with N too (the garbage collector's full passes over
    # every live object): what Headrace adds on top of it is its own share.
    own = ", ".join(
        f"{size:,}: {(per_run[size] - floor_per_run[size]) * 1e6:.1f} us" for size in per_run
    )
    print(f"Headrace's own cost per task run (above the floor's) at N = {own}")

    start = time.perf_counter()
    state = sleeps_past_timeout(return_state=True)
    late = stopped_at[-1] - (start + 2.0)
    print(f"flow timeout of 2 s over time.sleep(10): {state.name}, stopped {late * 1000:.1f} ms")
    print("after the deadline (goal <= 500 ms)")
    if args.figures:
        print(json.dumps(figures))


stopped_at: list[float] = []


@flow(timeout_seconds=2, persist_result=False)
def sleeps_past_timeout() -> None:
    try:
        time.sleep(10)
    finally:
        stopped_at.append(time.perf_counter())


if __name__ == "__main__":
    main()
