"""The web UI with large runs in headless Chromium: time to first paint, and panning while
a run goes on.

Writes synthetic run records (stages double -> halve -> triple, N/3 task runs each, edges
from each task run to one upstream), serves them with `headrace ui`, and reads the page's own
timings and frame times:

- ready: a finished run of `--finished-n` task runs (30,000), from navigation start to the
  first frame on screen (fetch, parse, stage model, layout and paint included); goal <= 1 s;
- live pan: a running run of `--n` task runs (10,000) that a writer thread moves on (task
  runs start and finish, new ones are submitted) while the mouse pans the canvas for
  `--seconds`; the gaps between animation frames, p50/p95/max; goal p95 <= 33 ms. In the
  same run, two baselines: the same pan on the run while nothing changes (this machine's
  floor), and the same live run with the page fetching and laying out the whole run every
  poll (what the page did before it asked for deltas).

Usage: `uv run python benchmarks/ui_render.py [--n 10000] [--finished-n 30000] [--seconds 6]
[--screenshot-dir artifacts]`. Frame times on a shared 2-core machine are noisy: run it a few
times and read the range.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "ui"))
from browser import CHROMIUM, CHROMIUM_ARGS

STAGES = ["double", "halve", "triple"]
MODES = ("delta", "idle", "full", "before")
NAMES = {
    "delta": "live, deltas applied in place",
    "idle": "baseline: the same pan, nothing changing",
    "full": "baseline: live, whole run fetched and laid out every poll",
    "before": "baseline: live, the page of git ref {ref}",
}


def record_lines(n: int, finished: bool) -> list[dict[str, Any]]:
    """One flow run with three mapped stages of n/3 task runs; a live run has its last stage
    a third running and two thirds pending, a finished one has everything completed."""
    run_id = str(uuid.uuid4())
    t0 = time.time() - 60
    per = n // 3
    root = {
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
    lines: list[dict[str, Any]] = [root]
    previous: list[str] = []
    for stage_no, stage in enumerate(STAGES):
        current = []
        count = n - 2 * per if stage_no == 2 else per
        for i in range(count):
            task_id = f"{stage}-{i}-{uuid.uuid4().hex[:8]}"
            start = t0 + stage_no * 10 + (i % 50) * 0.1
            if stage_no == 2 and not finished and i % 3:
                state = {"type": "PENDING", "name": "Pending"}
                start_time, end_time = None, None
            elif stage_no == 2 and not finished:
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
    if finished:
        end = t0 + 40
        lines.append({**root, "state": {**root["state"], "type": "COMPLETED", "name": "Completed"}})
        lines[-1]["end"] = end
    return lines


def write_run(home: Path, lines: list[dict[str, Any]]) -> tuple[str, Path]:
    run_id = str(lines[0]["id"])
    path = home / "runs" / run_id / "record.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return run_id, path


class Progress(threading.Thread):
    """Moves a live run on as an engine would: every 100 ms, 40 pending task runs of the last
    stage start and the 40 started before finish; every second, 30 new task runs are
    submitted to the last stage."""

    def __init__(self, path: Path, lines: list[dict[str, Any]]) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.pending = [
            line
            for line in lines
            if line["kind"] == "task_run" and line["state"]["type"] == "PENDING"
        ]
        self.template = self.pending[0] if self.pending else None
        self.stop = threading.Event()
        self.lines_written = 0

    def run(self) -> None:
        running: list[dict[str, Any]] = []
        tick = 0
        new = 0
        with self.path.open("a") as handle:
            while not self.stop.wait(0.1):
                now = time.time()
                out = []
                for line in running:
                    out.append(
                        {
                            **line,
                            "state": {**line["state"], "type": "COMPLETED", "name": "Completed"},
                            "end": now,
                        }
                    )
                running = []
                for line in self.pending[:40]:
                    started = {
                        **line,
                        "state": {**line["state"], "type": "RUNNING", "name": "Running"},
                        "start": now,
                    }
                    running.append(started)
                    out.append(started)
                del self.pending[:40]
                tick += 1
                if tick % 10 == 0 and self.template is not None:
                    for _ in range(30):
                        new += 1
                        out.append(
                            {
                                **self.template,
                                "id": f"late-{new}-{uuid.uuid4().hex[:6]}",
                                "name": f"triple-late-{new}",
                                "map_index": 100_000 + new,
                            }
                        )
                handle.write("".join(json.dumps(line) + "\n" for line in out))
                handle.flush()
                self.lines_written += len(out)


BEFORE_SERVER = """
import sys
from pathlib import Path
import headrace.ui.server as server
server.STATIC = Path(sys.argv[1])
server.run_ui("127.0.0.1", 0, None)
"""


def before_bundle(tmp: Path, ref: str) -> Path:
    """The built page of git ref `ref` (the page before deltas), extracted under `tmp`."""
    out = tmp / "before-static"
    out.mkdir()
    archive = subprocess.run(
        ["git", "archive", ref, "operator/headrace/ui/static"],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out / "operator" / "headrace" / "ui" / "static"


def start_ui(home: Path, static: Path | None = None) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "HEADRACE_HOME": str(home), "KUBECONFIG": str(home / "no-kubeconfig")}
    command = [sys.executable, "-m", "headrace", "ui", "--port", "0"]
    if static is not None:  # today's server, serving an older page
        command = [sys.executable, "-c", BEFORE_SERVER, str(static)]
    process = subprocess.Popen(
        command,
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


def open_run(page: Any, base: str, run_id: str) -> dict[str, float]:
    page.goto("about:blank")
    page.goto(f"{base}/#/local/{run_id}")
    page.wait_for_function("window.headraceGraph && window.headraceGraph.ready", timeout=60_000)
    timings: dict[str, float] = page.evaluate("window.headraceGraph.timings")
    return timings


PAN_SCRIPT = """
() => {
  window.__gaps = [];
  window.__long = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__long.push(e.duration);
  }).observe({ type: "longtask" });
  let last = 0;
  window.__panning = true;
  const loop = (t) => {
    if (last) window.__gaps.push(t - last);
    last = t;
    if (window.__panning) requestAnimationFrame(loop);
  };
  requestAnimationFrame(loop);
}
"""


def pan(page: Any, seconds: float) -> list[float]:
    """Drag the canvas back and forth for `seconds`; the gaps between frames meanwhile."""
    box = page.locator("canvas.graph-canvas").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.evaluate(PAN_SCRIPT)
    page.mouse.move(cx, cy)
    page.mouse.down()
    end = time.monotonic() + seconds
    step = 0
    while time.monotonic() < end:
        step += 1
        phase = (step % 120) / 120
        dx = 300 * (phase * 2 if phase < 0.5 else 2 - phase * 2) - 150
        page.mouse.move(cx + dx, cy + dx / 3)
        time.sleep(0.008)
    page.mouse.up()
    page.evaluate("window.__panning = false")
    gaps: list[float] = page.evaluate("window.__gaps")
    return gaps


def long_tasks(page: Any) -> list[float]:
    """Main-thread tasks over 50 ms during the pan (what stalls frames), in ms."""
    found: list[float] = page.evaluate("window.__long")
    return found


def gap_stats(gaps: list[float]) -> dict[str, float]:
    ordered = sorted(gaps)
    return {
        "frames": len(ordered),
        "p50": statistics.median(ordered),
        "p95": ordered[max(0, int(len(ordered) * 0.95) - 1)],
        "max": ordered[-1],
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        finished_id, _ = write_run(home, record_lines(args.finished_n, finished=True))
        process, base = start_ui(home)
        before = start_ui(home, before_bundle(Path(tmp), args.before)) if args.before else None
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 900})

                # A finished 30k-task run: ready (first frame) in how long; best of rounds.
                ready = [open_run(page, base, finished_id) for _ in range(args.rounds)]
                out["ready"] = sorted(t["totalMs"] for t in ready)
                out["ready_best"] = min(ready, key=lambda t: t["totalMs"])
                if args.screenshot_dir:
                    page.screenshot(path=str(args.screenshot_dir / "ui_finished_30k.png"))

                # A live 10k-task run, four ways, each on a fresh record.
                for mode in MODES:
                    if mode == "before" and before is None:
                        continue
                    lines = record_lines(args.n, finished=False)
                    run_id, path = write_run(home, lines)
                    open_run(page, before[1] if mode == "before" and before else base, run_id)
                    if mode == "full":
                        page.evaluate("window.headraceGraph.fullEveryPoll = true")
                    writer = Progress(path, lines)
                    if mode != "idle":
                        writer.start()
                    start = page.evaluate("({...(window.headraceGraph.fetches || {})})")
                    gaps = pan(page, args.seconds)
                    writer.stop.set()
                    fetched = page.evaluate("({...(window.headraceGraph.fetches || {})})")
                    stalls = long_tasks(page)
                    state = page.evaluate("window.headraceGraph.state()")
                    out[mode] = {
                        **gap_stats(gaps),
                        "lines": writer.lines_written,
                        "bytes": fetched["bytes"] - start["bytes"] if fetched else None,
                        "long": stalls,
                        "tasks": state["tasks"],
                    }
                    if args.screenshot_dir and mode == "delta":
                        page.screenshot(path=str(args.screenshot_dir / "ui_live_10k.png"))
                browser.close()
        finally:
            for proc in (process, before[0] if before else None):
                if proc is not None:
                    proc.terminate()
                    proc.wait(timeout=10)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="task runs of the live run")
    parser.add_argument("--finished-n", type=int, default=30_000, help="of the finished run")
    parser.add_argument("--rounds", type=int, default=3, help="page loads of the finished run")
    parser.add_argument("--seconds", type=float, default=6.0, help="panning per live mode")
    parser.add_argument(
        "--before",
        default="main",
        help="git ref whose built page is the 'before' baseline ('' to skip)",
    )
    parser.add_argument("--screenshot-dir", type=Path, help="save PNGs of both runs here")
    args = parser.parse_args()
    if args.screenshot_dir:
        args.screenshot_dir.mkdir(parents=True, exist_ok=True)
    r = measure(args)
    best = r["ready_best"]
    print(f"UI in headless Chromium ({os.cpu_count()} cores):")
    print(
        f"  finished {args.finished_n}-task run ready in {best['totalMs']:.0f} ms (best of "
        f"{args.rounds}; all {', '.join(f'{t:.0f}' for t in r['ready'])} ms; goal <= 1000): "
        f"fetch {best['fetchMs']:.0f}, parse {best['parseMs']:.0f}, stage model "
        f"{best['buildMs']:.0f}, layout {best['layoutMs']:.0f}, first paint {best['paintMs']:.0f}"
    )
    print(f"  pan frame gaps over {args.seconds:.0f} s on a {args.n}-task run (goal p95 <= 33 ms):")
    for mode in MODES:
        if mode not in r:
            continue
        m = r[mode]
        fetched = f", {m['bytes'] / 1e6:.2f} MB of graph fetched" if m["bytes"] is not None else ""
        stalls = m["long"]
        fetched += (
            f", {len(stalls)} main-thread tasks over 50 ms (longest {max(stalls):.0f} ms)"
            if stalls
            else ", no main-thread task over 50 ms"
        )
        print(
            f"    {NAMES[mode].format(ref=args.before)}: p50 {m['p50']:.1f} ms, p95 "
            f"{m['p95']:.1f} ms, max {m['max']:.0f} ms over {m['frames']} frames{fetched}; "
            f"{m['lines']} record lines written, {m['tasks']} task runs at the end"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
