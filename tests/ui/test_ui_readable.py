"""Readable at every zoom, and a timeline that extends instead of rescaling, in headless
Chromium on local run records."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from operator_harness import poll
from ui_records import append, flow, task, write

UiServer = Callable[..., str]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


def state_of(page: Any) -> dict[str, Any]:
    state: dict[str, Any] = page.evaluate("window.headraceGraph.state()")
    return state


def labels_in_view(page: Any) -> dict[str, dict[str, float]]:
    """Stage labels drawn inside the canvas, by label."""
    box = page.locator("canvas.graph-canvas").bounding_box()
    return {
        label["label"]: label
        for label in state_of(page)["boxLabels"]
        if 0 <= label["x"] < box["width"] and 0 <= label["y"] < box["height"]
    }


def test_grid_names_appear_as_you_zoom_in(tmp_path: Path, ui_server: UiServer, page: Any) -> None:
    lines: list[dict[str, Any]] = [flow("root", "Completed", end=1010.0)]
    lines += [task(f"cell-{i}", "cell", "Completed", map_index=i) for i in range(400)]
    write(tmp_path / "home" / "runs" / "root" / "record.jsonl", lines)
    base = ui_server(KUBECONFIG=str(tmp_path / "none"))
    page.goto(f"{base}/#/local/root")
    page.wait_for_function("window.headraceGraph && window.headraceGraph.ready")
    # Fitted, the 400 cells are too small for names; the stage's own label is there.
    assert state_of(page)["drawnLabels"] == 0
    assert "cell · 400" in labels_in_view(page)
    # Zoomed in on a cell, names are drawn, in screen space (only those in view).
    point = page.evaluate("window.headraceGraph.nodeScreen('cell-0')")
    page.mouse.move(point["x"], point["y"])
    for _ in range(12):
        page.mouse.wheel(0, -300)
    poll(lambda: state_of(page)["zoom"] >= 4, 5, "the zoom")
    page.wait_for_timeout(100)
    state = state_of(page)
    assert 0 < state["drawnLabels"] < 400
    page.screenshot(path=str(ARTIFACTS / "ui_grid_labels.png"))


def test_stage_labels_legible_at_full_zoom_out_30k(
    tmp_path: Path, ui_server: UiServer, page: Any
) -> None:
    lines: list[dict[str, Any]] = [flow("root", "Completed", end=1010.0)]
    for key in ("double", "halve", "triple"):
        lines += [task(f"{key}-{i}", key, "Completed", map_index=i) for i in range(10_000)]
    write(tmp_path / "home" / "runs" / "root" / "record.jsonl", lines)
    base = ui_server(KUBECONFIG=str(tmp_path / "none"))
    page.goto(f"{base}/#/local/root")
    page.wait_for_function("window.headraceGraph && window.headraceGraph.ready", timeout=60_000)
    state = state_of(page)
    assert state["zoom"] < 0.5  # the whole run in view: a cell is a pixel or two
    labels = labels_in_view(page)
    for key in ("double", "halve", "triple"):
        assert labels[f"{key} · 10000"]["px"] == 12  # the same size as at full zoom
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui_30k_zoomed_out.png"))


def test_timeline_extends_its_scale_while_live(
    tmp_path: Path, ui_server: UiServer, page: Any
) -> None:
    now = time.time()
    record = tmp_path / "home" / "runs" / "root" / "record.jsonl"
    lines: list[dict[str, Any]] = [flow("root", "Running", start=now - 20)]
    lines += [
        {**task(f"a-{i}", "a", "Completed"), "start": now - 20 + i, "end": now - 19 + i}
        for i in range(10)
    ]
    write(record, lines)
    base = ui_server(KUBECONFIG=str(tmp_path / "none"))
    page.goto(f"{base}/#/local/root")
    page.wait_for_function("window.headraceGraph && window.headraceGraph.ready")
    page.click("button[data-layout=timeline]")
    scale = state_of(page)["pxPerSec"]
    zoom = state_of(page)["zoom"]
    renders = state_of(page)["renders"]
    append(record, [{**task("b-0", "b", "Running", ["a-9"]), "start": time.time()}])
    poll(lambda: state_of(page)["tasks"] == 11, 10, "the new task run")
    poll(lambda: state_of(page)["renders"] > renders + 1, 10, "polls redrawing the timeline")
    # Seconds later the run is longer, and the scale is the one it had: the axis grew.
    assert state_of(page)["pxPerSec"] == scale
    assert state_of(page)["zoom"] == zoom


def test_timeline_usable_at_10k(tmp_path: Path, ui_server: UiServer, page: Any) -> None:
    """3 stages of 3,333 runs all running at once: bands fold past 48 lanes, so the whole
    run fits the view at a zoom where bars are visible, each band named."""
    now = time.time()
    lines: list[dict[str, Any]] = [flow("root", "Running", start=now - 30)]
    for s, key in enumerate(("double", "halve", "triple")):
        lines += [
            {**task(f"{key}-{i}", key, "Running"), "start": now - 30 + s * 5 + (i % 10) * 0.1}
            for i in range(3333)
        ]
    write(tmp_path / "home" / "runs" / "root" / "record.jsonl", lines)
    base = ui_server(KUBECONFIG=str(tmp_path / "none"))
    page.goto(f"{base}/#/local/root?layout=timeline")
    page.wait_for_function("window.headraceGraph && window.headraceGraph.ready", timeout=60_000)
    state = state_of(page)
    assert state["layout"] == "timeline"
    assert state["zoom"] > 0.2  # with a lane per concurrent run it was about 0.02
    labels = labels_in_view(page)
    for key in ("double", "halve", "triple"):
        assert f"{key} (up to 3333 at once, folded) · 3333" in labels, sorted(labels)
    page.screenshot(path=str(ARTIFACTS / "ui_timeline_10k.png"))
