"""Subflows in headless Chromium on a local run record: any number of them open from a grid,
expand all / collapse all, and a collapsed subflow says how many task runs it holds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from operator_harness import poll
from ui_records import flow, task, write

UiServer = Callable[..., str]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
MAPPED = 50


def state_of(page: Any) -> dict[str, Any]:
    state: dict[str, Any] = page.evaluate("window.headraceGraph.state()")
    return state


def record(path: Path) -> None:
    """`fan` calls a subflow 50 times (a grid), each with 2 task runs, one of them failing in
    fan-7's; `summary` calls one (a list)."""
    lines: list[dict[str, Any]] = [flow("root", "Running", "parent")]
    for i in range(MAPPED):
        lines.append(task(f"fan-{i}", "fan", "Completed", subflow_run_id=f"s{i}", map_index=i))
        lines.append(flow(f"s{i}", "Completed", f"child-{i}", parent=f"fan-{i}", flow_name="child"))
        lines.append(task(f"leaf-{i}-a", "leaf", "Completed", flow=f"s{i}"))
        bad = "Failed" if i == 7 else "Completed"
        lines.append(task(f"leaf-{i}-b", "leaf2", bad, [f"leaf-{i}-a"], flow=f"s{i}"))
    lines.append(task("summary-0", "summary", "Running", subflow_run_id="sum"))
    lines.append(flow("sum", "Running", "summing", parent="summary-0", flow_name="summarize"))
    lines.append(task("add-0", "add", "Running", flow="sum"))
    write(path, lines)


def test_subflows_open_from_grids_and_all_at_once(
    tmp_path: Path, ui_server: UiServer, page: Any
) -> None:
    record(tmp_path / "home" / "runs" / "root" / "record.jsonl")
    base = ui_server(KUBECONFIG=str(tmp_path / "none"))
    page.goto(f"{base}/#/local/root")
    page.wait_for_function("window.headraceGraph && window.headraceGraph.ready")
    state = state_of(page)
    subflows = {s["name"]: s for s in state["subflows"]}
    # The list's subflow starts open, the grid's start closed, each saying what it holds.
    assert not subflows["summing"]["collapsed"]
    assert subflows["child-7"]["collapsed"]
    assert subflows["child-7"]["label"] == "▸ fan-7  Completed · 2 task runs, 1 failed"
    assert subflows["child-3"]["label"] == "▸ fan-3  Completed · 2 task runs"
    base_nodes = state["visibleNodes"]
    assert base_nodes == MAPPED + 2  # fan cells, summary-0, add-0

    # A click on a grid cell opens that subflow, below the grid; the cells stay put.
    cells = [f"fan-{i}" for i in range(MAPPED)]
    before = page.evaluate("n => window.headraceGraph.positions(n)", cells)
    page.fill(".graph-search", "fan-7")
    page.press(".graph-search", "Enter")  # centres the view on it
    page.fill(".graph-search", "")
    point = page.evaluate("window.headraceGraph.nodeScreen('fan-7')")
    page.mouse.click(point["x"], point["y"])
    poll(
        lambda: not {s["name"]: s for s in state_of(page)["subflows"]}["child-7"]["collapsed"],
        5,
        "open",
    )
    assert state_of(page)["visibleNodes"] == base_nodes + 2
    assert page.evaluate("n => window.headraceGraph.positions(n)", cells) == before
    # And a second one: any number per stage.
    page.evaluate("window.headraceGraph.toggleSubflow('child-9')")
    assert state_of(page)["visibleNodes"] == base_nodes + 4

    page.click("button.expand-all")
    state = state_of(page)
    assert not any(s["collapsed"] for s in state["subflows"])
    assert state["visibleNodes"] == base_nodes + 2 * MAPPED
    page.click("button.collapse-all")
    state = state_of(page)
    assert all(s["collapsed"] for s in state["subflows"])
    assert state["visibleNodes"] == MAPPED + 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui_subflows_collapsed.png"))
