"""Failures first, in headless Chromium on local run records: the header says what failed,
chips and search narrow the graph to a state, `n` / `p` step through failed task runs, and
what will never run is drawn and named as such."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from test_graph_blocked import failed_run
from ui_records import flow, task, write

UiServer = Callable[..., str]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


def state_of(page: Any) -> dict[str, Any]:
    state: dict[str, Any] = page.evaluate("window.headraceGraph.state()")
    return state


def pixel(page: Any, name: str) -> list[int]:
    """The canvas colour near the bottom-right corner of a node (clear of its label)."""
    rgba: list[int] = page.evaluate(
        """name => {
            const g = window.headraceGraph;
            const [x, y, w, h] = g.positions([name])[name];
            const p = g.nodeScreen(name);
            const c = document.querySelector('canvas.graph-canvas');
            const r = c.getBoundingClientRect();
            const k = g.state().zoom;
            // nodeScreen is the centre of the node's first 40x20 px; go to its far corner.
            const sx = p.x - r.left + (w - Math.min(w, 40) / 2 - 3) * k;
            const sy = p.y - r.top + (h - Math.min(h, 20) / 2 - 3) * k;
            const d = devicePixelRatio;
            return [...c.getContext('2d').getImageData(sx * d, sy * d, 1, 1).data];
        }""",
        name,
    )
    return rgba


def test_failures_first_on_the_run_page(tmp_path: Path, ui_server: UiServer, page: Any) -> None:
    home = tmp_path / "home"
    path = home / "runs" / "root" / "record.jsonl"
    failed_run(path)
    with path.open("a") as handle:  # the run ends failed
        import json

        handle.write(
            json.dumps(
                flow(
                    "root",
                    "Failed",
                    "broken-run",
                    flow_name="etl",
                    end=1042.0,
                    message="2/10 states failed.",
                )
            )
            + "\n"
        )
    base = ui_server(KUBECONFIG=str(tmp_path / "none"))
    page.goto(f"{base}/#/local/root")
    page.wait_for_function("window.headraceGraph && window.headraceGraph.ready")

    # The header: flow name, state, counts by state, how long, and the error.
    header = page.locator(".run-header")
    assert header.locator(".flow-name").inner_text() == "etl"
    assert header.locator(".badge").inner_text() == "Failed"
    counts = header.locator(".count").all_inner_texts()
    assert counts[0] == "Will not run 3"  # failures first
    assert {"Failed 1", "Crashed 1", "Completed 2", "Running 1", "Pending 2"} <= set(counts)
    assert header.locator(".elapsed").inner_text() == "took 42 s"
    assert header.locator(".message.bad").inner_text() == "2/10 states failed."

    # Runs behind a failure: named in the hook, the tooltip words, and the side panel.
    blocked = {b["name"]: b["text"] for b in state_of(page)["blocked"]}
    assert blocked == {
        "parse-1": "will not run: upstream fetch-1 failed",
        "report-0": "will not run: upstream fetch-1 failed",
        "after-crash-0": "will not run: upstream crash-0 crashed",
    }
    point = page.evaluate("window.headraceGraph.nodeScreen('report-0')")
    page.mouse.click(point["x"], point["y"])
    assert page.locator(".details .blocked").inner_text() == "will not run: upstream fetch-1 failed"
    assert page.locator(".details .badge").first.inner_text() == "Will not run"
    # Drawn apart from runs that still wait: a red-tinted fill, where a pending run is white.
    assert pixel(page, "report-0")[:3] == [0xFD, 0xEC, 0xEC]
    assert pixel(page, "wait-0")[:3] == [0xFF, 0xFF, 0xFF]

    # Each edge into a pending run carries its upstream's state (drawn in its colour).
    edges = {(e["from"], e["to"]): e["upstreamState"] for e in state_of(page)["pendingEdgeStates"]}
    assert edges[("fetch-1", "parse-1")] == "Failed"
    assert edges[("gate-0", "wait-0")] == "Running"
    assert edges[("fetch-0", "load-0")] == "Completed"

    # Chips narrow the graph to states; the canvas does not move when they do.
    canvas = page.locator("canvas.graph-canvas").bounding_box()
    page.click("#graph-chips .chip[data-state=Failed]")
    assert state_of(page)["matches"] == 1
    page.click("#graph-chips .chip[data-state='Will not run']")
    assert state_of(page)["matches"] == 4
    page.click("#graph-chips .chip[data-state=Failed]")
    page.click("#graph-chips .chip[data-state='Will not run']")
    assert state_of(page)["matches"] == 0
    # Search by state, too.
    page.fill(".graph-search", "state:fail")
    assert state_of(page)["matches"] == 1
    page.fill(".graph-search", "crashed")
    assert state_of(page)["matches"] == 1
    page.fill(".graph-search", "")
    assert page.locator("canvas.graph-canvas").bounding_box() == canvas

    # Next / previous failed, with the keys: reading order is by column, then down.
    page.locator("canvas.graph-canvas").focus()
    page.keyboard.press("n")
    first = state_of(page)["selected"]
    page.keyboard.press("n")
    second = state_of(page)["selected"]
    assert {first, second} == {"fetch-1", "crash-0"}
    assert page.locator(".failed-info").inner_text() == "failed 2/2"
    page.keyboard.press("p")
    assert state_of(page)["selected"] == first
    assert page.locator(".details h3").inner_text() == first
    page.click("button.next-failed")
    assert state_of(page)["selected"] == second
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui_failures_first.png"))


def test_edge_budget_goes_to_edges_that_still_block(
    tmp_path: Path, ui_server: UiServer, page: Any
) -> None:
    """3,100 pending runs behind completed upstreams come first in the record, 20 behind a
    running gate last: past the budget, the 20 still-blocking edges are the ones drawn."""
    lines: list[dict[str, Any]] = [flow("root", "Running")]
    lines += [task(f"a-{i}", "a", "Completed") for i in range(3100)]
    lines += [task(f"c-{i}", "c", "Pending", [f"a-{i}"]) for i in range(3100)]
    lines += [task("gate-0", "gate", "Running")]
    lines += [task(f"d-{i}", "d", "Pending", ["gate-0"]) for i in range(20)]
    write(tmp_path / "home" / "runs" / "root" / "record.jsonl", lines)
    base = ui_server(KUBECONFIG=str(tmp_path / "none"))
    page.goto(f"{base}/#/local/root")
    page.wait_for_function("window.headraceGraph && window.headraceGraph.ready")
    state = state_of(page)
    assert state["blockingEdgeCount"] == 20
    assert state["pendingEdgeCount"] == 3000  # the budget, all spent
    assert state["aggregatedEdges"] == [{"from": "a", "to": "c", "count": 120}]


def test_history_chips_filter_local_runs_and_show_failures(
    tmp_path: Path, ui_server: UiServer, page: Any
) -> None:
    home = tmp_path / "home"
    write(
        home / "runs" / "bad" / "record.jsonl",
        [
            flow("bad", "Failed", "bad-run"),
            task("x-0", "x", "Completed", flow="bad"),
            task("x-1", "x", "Failed", flow="bad"),
            {
                "kind": "summary",
                "ts": 1001.0,
                "total": 2,
                "counts": {"Completed": 1, "Failed": 1},
                "running": [],
            },
        ],
    )
    write(home / "runs" / "good" / "record.jsonl", [flow("good", "Completed", "good-run")])
    base = ui_server(KUBECONFIG=str(tmp_path / "none"))
    page.goto(f"{base}/#/")
    page.wait_for_selector("#localruns tbody tr")
    assert page.locator("#localruns tbody tr").count() == 2
    bad = page.locator("#localruns tbody tr", has_text="bad-run")
    assert bad.locator("td.done").inner_text() == "2/2 · 1 failed"
    chip = page.locator("#history-chips .chip[data-state=Failed]")
    assert chip.inner_text() == "Failed 1"
    chip.click()
    page.wait_for_selector("#history-chips .chip.on[data-state=Failed]")
    assert page.locator("#localruns tbody tr").all_inner_texts()[0].startswith("bad-run")
    assert page.locator("#localruns tbody tr").count() == 1
    page.click("#history-chips .chip[data-state=Failed]")
    page.wait_for_selector("#history-chips .chip[data-state=Failed]:not(.on)")
    assert page.locator("#localruns tbody tr").count() == 2
