"""Time for the web UI to lay out and first paint a 10,000-task, 3-stage run.

Writes a synthetic run record (stages double -> halve -> triple, N/3 task runs each, the last
stage partly pending with edges to what it waits on), serves it with `headrace ui`, opens the
run page in headless Chromium and reads the page's own timings:

- layout + first paint: building the stage model, laying it out and drawing the canvas once;
- end to end: from navigation start to the first frame on screen, fetch and parse included.

Goal: under 1 s. Usage: `uv run python benchmarks/ui_render.py [--n 10000] [--screenshot P]`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "ui"))
from browser import CHROMIUM, CHROMIUM_ARGS


def write_record(path: Path, n: int) -> str:
    """A record of one flow run with three mapped stages of n/3 task runs each."""
    run_id = str(uuid.uuid4())
    t0 = time.time() - 60
    per = n // 3
    lines: list[dict[str, Any]] = [
        {
            "kind": "flow_run",
            "id": run_id,
            "name": "synthetic-run",
            "flow_name": "three_stages",
            "parameters": {"n": per},
            "state": {"type": "RUNNING", "name": "Running", "message": "", "timestamp": t0},
            "start": t0,
            "end": None,
            "parent_task_run_id": None,
        }
    ]
    previous: list[str] = []
    for stage_no, stage in enumerate(["double", "halve", "triple"]):
        current = []
        count = n - 2 * per if stage_no == 2 else per
        for i in range(count):
            task_id = f"{stage}-{i}-{uuid.uuid4().hex[:8]}"
            start = t0 + stage_no * 10 + (i % 50) * 0.1
            if stage_no == 2 and i % 3:
                state = {"type": "PENDING", "name": "Pending"}
                start_time, end_time = None, None
            elif stage_no == 2:
                state = {"type": "RUNNING", "name": "Running"}
                start_time, end_time = start, None
            else:
                state = {"type": "COMPLETED", "name": "Completed"}
                start_time, end_time = start, start + 0.5 + (i % 7) * 0.1
            lines.append(
                {
                    "kind": "task_run",
                    "id": task_id,
                    "flow_run_id": run_id,
                    "name": f"{stage}-{i}",
                    "task_key": stage,
                    "map_index": i,
                    "state": {**state, "message": "", "timestamp": start, "result": None},
                    "start": start_time,
                    "end": end_time,
                    "upstream": [previous[i % len(previous)]] if previous else [],
                }
            )
            current.append(task_id)
        previous = current
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return run_id


def start_ui(home: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "HEADRACE_HOME": str(home), "KUBECONFIG": str(home / "no-kubeconfig")}
    process = subprocess.Popen(
        [sys.executable, "-m", "headrace", "ui", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"http://\S+", line)
    if not match:
        process.kill()
        raise RuntimeError(f"headrace ui did not start: {line!r}")
    return process, match.group(0).rstrip("/")


def measure(n: int, rounds: int, screenshot: Path | None) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        run_id = write_record(home / "runs" / "x" / "record.jsonl", n)
        (home / "runs" / "x").rename(home / "runs" / run_id)
        process, base = start_ui(home)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                results = []
                for _ in range(rounds):
                    page.goto("about:blank")
                    page.goto(f"{base}/#/local/{run_id}")
                    page.wait_for_function(
                        "window.headraceGraph && window.headraceGraph.ready", timeout=60_000
                    )
                    timings = page.evaluate("window.headraceGraph.timings")
                    state = page.evaluate("window.headraceGraph.state()")
                    assert state["tasks"] == n, state["tasks"]
                    results.append(timings)
                if screenshot is not None:
                    screenshot.parent.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(screenshot))
                browser.close()
        finally:
            process.terminate()
            process.wait(timeout=10)
    best = min(results, key=lambda t: t["buildMs"] + t["layoutMs"] + t["paintMs"])
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="task runs (3 stages)")
    parser.add_argument("--rounds", type=int, default=3, help="page loads; the best is shown")
    parser.add_argument("--screenshot", type=Path, help="save a PNG of the laid-out graph")
    args = parser.parse_args()
    t = measure(args.n, args.rounds, args.screenshot)
    first_paint = t["buildMs"] + t["layoutMs"] + t["paintMs"]
    print(
        f"UI render of a {args.n}-task, 3-stage run in headless Chromium (best of {args.rounds}):"
    )
    print(
        f"  stage model {t['buildMs']:.0f} ms, layout {t['layoutMs']:.0f} ms, "
        f"first paint {t['paintMs']:.0f} ms"
    )
    print(f"  layout + first paint: {first_paint:.0f} ms (goal < 1000 ms)")
    print(
        f"  end to end (script start to first frame, fetch {t['fetchMs']:.0f} ms and "
        f"parse {t['parseMs']:.0f} ms included): {t['totalMs']:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
