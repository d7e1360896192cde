"""The run page while a run goes on, in headless Chromium, on a local run record.

The test is the engine here: it appends record lines (new task runs, state changes, the end)
and checks what the page does with them: it asks only for what changed, applies it in place,
keeps every placed stage where it was, keeps the zoom and the canvas where they were, and
stops asking once the run has ended.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from operator_harness import poll
from ui_records import append, flow, task, write

UiServer = Callable[..., str]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


def state_of(page: Any) -> dict[str, Any]:
    state: dict[str, Any] = page.evaluate("window.headraceGraph.state()")
    return state


def fetches(page: Any) -> dict[str, int]:
    counts: dict[str, int] = page.evaluate("({...window.headraceGraph.fetches})")
    return counts


def canvas_box(page: Any) -> dict[str, float]:
    box: dict[str, float] = page.locator("canvas.graph-canvas").bounding_box()
    return box


def open_run(page: Any, base: str, run_id: str) -> None:
    page.goto(f"{base}/#/local/{run_id}")
    page.wait_for_function("window.headraceGraph && window.headraceGraph.ready", timeout=30_000)


def start_record(home: Path) -> Path:
    """A running flow: 60 `double` and 60 `square` (one column, square below double), and
    60 `halve` after double, half of them pending."""
    lines: list[dict[str, Any]] = [flow("root", "Running", "live-run")]
    lines += [task(f"double-{i}", "double", "Completed", map_index=i) for i in range(60)]
    lines += [task(f"square-{i}", "square", "Completed", map_index=i) for i in range(60)]
    lines += [
        task(f"halve-{i}", "halve", "Running" if i < 30 else "Pending", [f"double-{i}"])
        for i in range(60)
    ]
    path = home / "runs" / "root" / "record.jsonl"
    write(path, lines)
    return path


def test_delta_api_sends_only_what_changed(tmp_path: Path, ui_server: UiServer) -> None:
    record = start_record(tmp_path / "home")
    base = ui_server(KUBECONFIG=str(tmp_path / "none"))
    full = httpx.get(f"{base}/api/local/root/graph").json()
    cursor = full["cursor"]
    assert len(full["tasks"]["id"]) == 180
    assert httpx.get(f"{base}/api/local/root/graph", params={"since": cursor}).status_code == 304

    append(record, [task("halve-40", "halve", "Running", ["double-40"])])
    append(record, [task("triple-0", "triple", "Pending", ["halve-0"])])
    delta = httpx.get(f"{base}/api/local/root/graph", params={"since": cursor}).json()
    assert delta["delta"] is True and delta["n"] == 181
    names = delta["tasks"]["name"]
    assert sorted(names) == ["halve-40", "triple-0"]
    index = dict(zip(names, delta["tasks"]["index"], strict=True))
    assert index["halve-40"] == full["tasks"]["name"].index("halve-40")  # changed in place
    assert index["triple-0"] == 180  # new: appended
    up = delta["tasks"]["up"][names.index("triple-0")]
    assert up == [full["tasks"]["name"].index("halve-0")]
    # A cursor from another reading of the record (or none) gets the whole run.
    again = httpx.get(f"{base}/api/local/root/graph", params={"since": "stale:3"}).json()
    assert "delta" not in again and len(again["tasks"]["id"]) == 181


def test_live_run_updates_in_place_and_stays_put(
    tmp_path: Path, ui_server: UiServer, page: Any
) -> None:
    record = start_record(tmp_path / "home")
    base = ui_server(KUBECONFIG=str(tmp_path / "none"))
    graph_requests: list[str] = []
    page.on("request", lambda r: "/graph" in r.url and graph_requests.append(r.url))
    open_run(page, base, "root")
    assert fetches(page)["full"] == 1
    canvas = canvas_box(page)
    zoom = state_of(page)["zoom"]
    watched = [f"square-{i}" for i in range(60)] + [f"halve-{i}" for i in range(60)]
    before = page.evaluate("n => window.headraceGraph.positions(n)", watched)
    boxes = {b["key"]: b for b in page.evaluate("window.headraceGraph.stageBoxes()")}
    assert boxes["square"]["y"] > boxes["double"]["y"]  # stacked in the first column
    assert boxes["halve"]["x"] > boxes["double"]["x"]

    # States only: applied without a layout, and the counts in the header follow.
    relayouts = state_of(page)["relayouts"]
    append(record, [task(f"halve-{i}", "halve", "Completed", [f"double-{i}"]) for i in range(30)])
    page.wait_for_selector(".run-header .count[data-state=Completed]:text('Completed 150')")
    assert state_of(page)["relayouts"] == relayouts
    assert fetches(page)["delta"] >= 1 and fetches(page)["full"] == 1

    # `double` grows past `square` below it, and a new stage `triple` appears: neither the
    # square stage nor the halve stage moves, nor does the view's zoom or the canvas.
    append(
        record, [task(f"double-{i}", "double", "Completed", map_index=i) for i in range(60, 400)]
    )
    append(record, [task(f"triple-{i}", "triple", "Pending", [f"halve-{i}"]) for i in range(20)])
    poll(lambda: state_of(page)["tasks"] == 540, 10, "the new task runs on the page")
    after = page.evaluate("n => window.headraceGraph.positions(n)", watched)
    assert after == before
    new_boxes = {b["key"]: b for b in page.evaluate("window.headraceGraph.stageBoxes()")}
    for key in ("square", "halve"):
        assert new_boxes[key] == boxes[key], key
    assert new_boxes["double"]["h"] > boxes["double"]["h"]
    # The grown stage moved itself below square rather than pushing square down.
    assert new_boxes["double"]["y"] > boxes["square"]["y"]
    assert new_boxes["triple"]["x"] > new_boxes["halve"]["x"]
    assert state_of(page)["zoom"] == zoom
    assert canvas_box(page) == canvas
    assert fetches(page)["full"] == 1

    # More task runs for a grid with room below it (halve, alone in its column): they take
    # the next cells, and nothing is laid out again.
    relayouts = state_of(page)["relayouts"]
    halve_box = {b["key"]: b for b in page.evaluate("window.headraceGraph.stageBoxes()")}["halve"]
    append(record, [task(f"halve-{i}", "halve", "Pending", [f"double-{i}"]) for i in range(60, 72)])
    poll(lambda: state_of(page)["tasks"] == 552, 10, "the new halve runs")
    assert state_of(page)["relayouts"] == relayouts
    grown = page.evaluate(
        "n => window.headraceGraph.positions(n)", ["halve-0", "halve-12", "halve-60"]
    )
    # 12 to a row: halve-60 starts row 5 under halve-0, as halve-12 starts row 1.
    assert grown["halve-60"][0] == grown["halve-0"][0]
    row = grown["halve-12"][1] - grown["halve-0"][1]
    assert grown["halve-60"][1] == grown["halve-0"][1] + 5 * row
    after_box = {b["key"]: b for b in page.evaluate("window.headraceGraph.stageBoxes()")}["halve"]
    assert after_box["y"] == halve_box["y"] and after_box["h"] == halve_box["h"] + row
    assert state_of(page)["pendingNodes"] >= 12

    # Failures and filters change the rows above the canvas, never the canvas.
    append(record, [task("halve-31", "halve", "Failed", ["double-31"], message="boom")])
    page.wait_for_selector("#graph-chips .chip[data-state=Failed]")
    page.click("#graph-chips .chip[data-state=Failed]")
    page.fill(".graph-search", "halve")
    assert canvas_box(page) == canvas
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui_live_grown.png"))

    # The run ends: one more delta, then no more requests for the graph.
    append(record, [flow("root", "Failed", "live-run", end=1010.0, message="1/552 failed")])
    poll(lambda: state_of(page)["final"], 10, "the page to see the end")
    count = len(graph_requests)
    time.sleep(2.5)
    assert len(graph_requests) == count
    assert all("since=" in url for url in graph_requests[1:])


def test_finished_run_is_fetched_once(tmp_path: Path, ui_server: UiServer, page: Any) -> None:
    home = tmp_path / "home"
    lines = [flow("root", "Completed", "done-run", end=1005.0)]
    lines += [task(f"double-{i}", "double", "Completed") for i in range(5)]
    write(home / "runs" / "root" / "record.jsonl", lines)
    base = ui_server(KUBECONFIG=str(tmp_path / "none"))
    graph_requests: list[str] = []
    page.on("request", lambda r: "/graph" in r.url and graph_requests.append(r.url))
    open_run(page, base, "root")
    time.sleep(2.5)
    assert len(graph_requests) == 1
    assert page.locator(".run-header .elapsed").inner_text() == "took 5 s"


def test_a_list_stage_that_grows_into_a_map_becomes_a_grid_in_place(
    tmp_path: Path, ui_server: UiServer, page: Any
) -> None:
    """A map whose first few runs reached the record in one poll: the page first sees a short
    list, then thousands more. It turns into a grid where it stands (a list of thousands of
    rows would dwarf the run); no other stage moves."""
    record = start_record(tmp_path / "home")
    append(record, [task(f"late-{i}", "late", "Pending", map_index=i) for i in range(8)])
    base = ui_server(KUBECONFIG=str(tmp_path / "none"))
    open_run(page, base, "root")
    others = [f"square-{i}" for i in range(60)] + [f"halve-{i}" for i in range(60)]
    before = page.evaluate("n => window.headraceGraph.positions(n)", others)
    listed = page.evaluate("n => window.headraceGraph.positions(n)", ["late-0", "late-1"])
    assert listed["late-0"][0] == listed["late-1"][0]  # a list: one under the other
    assert listed["late-0"][1] < listed["late-1"][1]

    append(record, [task(f"late-{i}", "late", "Pending", map_index=i) for i in range(8, 2000)])
    poll(lambda: state_of(page)["tasks"] == 2180, 10, "the rest of the map on the page")
    grid = page.evaluate("n => window.headraceGraph.positions(n)", ["late-0", "late-1"])
    assert grid["late-0"][1] == grid["late-1"][1]  # a grid: side by side
    assert grid["late-0"][0] < grid["late-1"][0]
    boxes = {b["key"]: b for b in page.evaluate("window.headraceGraph.stageBoxes()")}
    assert boxes["late"]["h"] < 2000 * 4, boxes["late"]  # cells, not 2,000 labelled rows
    assert page.evaluate("n => window.headraceGraph.positions(n)", others) == before
