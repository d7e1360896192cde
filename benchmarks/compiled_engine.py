"""What compiling the engine's hot path with mypyc buys: the same code, pure and as the image
ships it, next to the thread floor, measured in the same run.

    uv run python benchmarks/compiled_engine.py [--repeat 7] [--rounds 3]

Builds the image's build (`scripts/build-compiled`: the wheel with pyproject.toml's mypyc hook
on, unpacked in a scratch directory) and runs `engine_overhead.py`'s flows in child
processes, alternately against this tree's pure sources and that build. Each child times each
flow best of `--repeat` by process CPU time (all threads) per task run, and the thread floor
beside it. `engine_overhead.py --compiled` gives the whole table for the compiled build alone.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from scratch import compiled_build, scratch_home

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "operator"
FLOWS = ["submits", "fan_in", "three_stages_10k", "three_stages_1k", "chain"]

CHILD = """
import gc, json, os, resource, sys
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[2])
sys.argv = [sys.argv[0]]
from concurrent.futures import ThreadPoolExecutor
from headrace.engine.build import is_compiled
import engine_overhead as eo

repeat = int(os.environ["REPEAT"])
compiled = is_compiled()

def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

def best(fn, *args):
    times = []
    for _ in range(repeat):
        gc.collect()
        start = cpu()
        fn(*args)
        times.append(cpu() - start)
    return min(times)

cases = {
    "submits": (eo.independent_submits, eo.floor_submits, 10_000, 10_000),
    "fan_in": (eo.fan_in, eo.floor_fan_in, 10_000, 10_001),
    "three_stages_10k": (eo.three_stages, eo.floor_three_stages, 10_000, 30_000),
    "three_stages_1k": (eo.three_stages, eo.floor_three_stages, 1_000, 3_000),
    "chain": (eo.chain, eo.floor_chain, 2_000, 2_000),
}
eo.three_stages(10)
out = {"compiled": compiled}
with ThreadPoolExecutor(eo.WORKERS) as pool:
    eo.floor_three_stages(pool, 10)
    for name, (ours, floor, n, runs) in cases.items():
        out[name] = (best(ours, n) / runs * 1e6, best(floor, pool, n) / runs * 1e6)
print(json.dumps(out))
"""


def measure(path: Path, repeat: int) -> dict[str, Any]:
    env = {**os.environ, "REPEAT": str(repeat), "HEADRACE_LOGGING_LEVEL": "WARNING"}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(ROOT / "benchmarks")],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ["HEADRACE_HOME"] = scratch_home()  # the children's, too
    build = Path(compiled_build())
    pure: dict[str, list[tuple[float, float]]] = {name: [] for name in FLOWS}
    compiled: dict[str, list[tuple[float, float]]] = {name: [] for name in FLOWS}
    for _ in range(args.rounds):  # alternated: machine load drifts
        for path, into, wanted in ((SOURCES, pure, False), (build, compiled, True)):
            result = measure(path, args.repeat)
            assert result["compiled"] is wanted, f"{path}: compiled={result['compiled']}"
            for name in FLOWS:
                ours, floor = result[name]
                into[name].append((float(ours), float(floor)))
    print("\nCPU per task run, all threads, best of each round's best (us)\n")
    print("| flow | pure | compiled | change | floor | pure/floor | compiled/floor |")
    print("|---|---|---|---|---|---|---|")
    for name in FLOWS:
        ours_pure = min(ours for ours, _ in pure[name])
        ours_compiled = min(ours for ours, _ in compiled[name])
        floor = min(floor for _, floor in pure[name] + compiled[name])
        change = ours_compiled / ours_pure - 1
        print(
            f"| {name} | {ours_pure:.2f} | {ours_compiled:.2f} | {change:+.0%} | {floor:.2f} "
            f"| {ours_pure / floor:.2f}x | {ours_compiled / floor:.2f}x |"
        )


if __name__ == "__main__":
    main()
