"""Links and keys, in headless Chromium on local run records: the view in the URL, upstream
runs as links, the canvas's keys, a real 404, an empty record explained, and the logs tab's
level filter and subflow labels."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from operator_harness import poll
from test_graph_blocked import failed_run
from ui_records import flow, task, write

UiServer = Callable[..., str]


def state_of(page: Any) -> dict[str, Any]:
    state: dict[str, Any] = page.evaluate("window.headraceGraph.state()")
    return state


def url_state(page: Any) -> dict[str, str]:
    query = urlsplit(page.url).fragment.partition("?")[2]
    return {k: v[0] for k, v in parse_qs(query).items()}


def ready(page: Any) -> None:
    page.wait_for_function("window.headraceGraph && window.headraceGraph.ready")


def click_node(page: Any, name: str) -> None:
    point = page.evaluate(f"window.headraceGraph.nodeScreen('{name}')")
    page.mouse.click(point["x"], point["y"])


def test_view_in_the_url_links_and_keys(tmp_path: Path, ui_server: UiServer, page: Any) -> None:
    failed_run(tmp_path / "home" / "runs" / "root" / "record.jsonl")
    base = ui_server(KUBECONFIG=str(tmp_path / "none"))
    page.goto(f"{base}/#/local/root")
    ready(page)

    # Upstream runs in the side panel are links to them.
    click_node(page, "report-0")
    page.click(".details a.task-link[data-task=parse-1]")
    assert state_of(page)["selected"] == "parse-1"
    assert page.locator(".details h3").inner_text() == "parse-1"

    # The canvas has the keys: + zooms, arrows pan, Escape clears the selection.
    page.locator("canvas.graph-canvas").focus()
    zoom = state_of(page)["zoom"]
    page.keyboard.press("+")
    assert abs(state_of(page)["zoom"] - zoom * 1.25) < 1e-6
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowUp")
    page.wait_for_timeout(500)
    poll(lambda: url_state(page).get("task") == "parse-1" and "view" in url_state(page), 5, "url")
    view = poll(
        lambda: (v := url_state(page)["view"]).startswith(f"{zoom * 1.25:.4g}"[:4]) and v, 5, "view"
    )

    # Tab, layout, selection and viewport survive a reload, from the URL alone.
    page.click("button[data-layout=timeline]")
    page.wait_for_timeout(400)
    saved = url_state(page)
    assert saved["layout"] == "timeline" and saved["task"] == "parse-1"
    page.reload()
    ready(page)
    state = state_of(page)
    assert state["layout"] == "timeline"
    assert state["selected"] == "parse-1"
    assert page.locator(".details h3").inner_text() == "parse-1"
    k, tx, ty = (float(x) for x in saved["view"].split(","))
    assert abs(state["zoom"] - k) < 1e-3
    del view, tx, ty
    page.locator("canvas.graph-canvas").focus()
    page.keyboard.press("Escape")
    assert state_of(page)["selected"] is None
    page.click("button[data-tab=logs]")
    page.wait_for_timeout(300)
    assert url_state(page)["tab"] == "logs"
    page.reload()
    page.wait_for_selector("button[data-tab=logs].on")


def test_enter_opens_the_selected_subflow(tmp_path: Path, ui_server: UiServer, page: Any) -> None:
    write(
        tmp_path / "home" / "runs" / "root" / "record.jsonl",
        [
            flow("root", "Running"),
            task("call-0", "call", "Running", subflow_run_id="sub"),
            flow("sub", "Running", "inner", parent="call-0"),
            task("step-0", "step", "Running", flow="sub"),
        ],
    )
    base = ui_server(KUBECONFIG=str(tmp_path / "none"))
    page.goto(f"{base}/#/local/root")
    ready(page)
    point = page.evaluate("window.headraceGraph.subflowHeaderScreen('inner')")
    page.mouse.click(point["x"], point["y"])  # collapses it
    poll(lambda: state_of(page)["subflows"][0]["collapsed"], 5, "collapsed")
    click_node(page, "call-0")  # a click on a collapsed subflow opens it again
    poll(lambda: not state_of(page)["subflows"][0]["collapsed"], 5, "opened by click")
    page.evaluate("window.headraceGraph.toggleSubflow('inner')")
    page.locator("canvas.graph-canvas").focus()
    assert state_of(page)["selected"] == "call-0"
    page.keyboard.press("Enter")
    assert not state_of(page)["subflows"][0]["collapsed"]
    page.keyboard.press("Enter")
    assert state_of(page)["subflows"][0]["collapsed"]


def test_unknown_run_is_a_404_page_that_stops_asking(
    tmp_path: Path, ui_server: UiServer, page: Any
) -> None:
    base = ui_server(KUBECONFIG=str(tmp_path / "none"))
    requests: list[str] = []
    page.on("request", lambda r: "/api/local/nope" in r.url and requests.append(r.url))
    page.goto(f"{base}/#/local/nope")
    page.wait_for_selector(".not-found h1:text('Run not found')")
    assert "no run record for 'nope'" in page.locator(".not-found").inner_text()
    count = len(requests)
    time.sleep(2.5)
    assert len(requests) == count <= 2


def test_empty_record_is_explained(tmp_path: Path, ui_server: UiServer, page: Any) -> None:
    write(tmp_path / "home" / "runs" / "root" / "record.jsonl", [flow("root", "Running")])
    base = ui_server(KUBECONFIG=str(tmp_path / "none"))
    page.goto(f"{base}/#/local/root")
    ready(page)
    note = page.locator(".empty-note")
    assert note.is_visible()
    assert note.inner_text() == "The flow has started and has not submitted a task run yet."


def log(ts: float, level: str, message: str, flow_id: str, task_name: str | None = None) -> Any:
    entry = {
        "kind": "log",
        "ts": ts,
        "level": level,
        "logger": "headrace.runs",
        "message": message,
        "flow_run_id": flow_id,
    }
    if task_name:
        entry["task_run_name"] = task_name
    return entry


def test_logs_filter_by_level_colour_errors_and_name_subflows(
    tmp_path: Path, ui_server: UiServer, page: Any
) -> None:
    write(
        tmp_path / "home" / "runs" / "root" / "record.jsonl",
        [
            flow("root", "Failed", end=1002.0),
            task("call-0", "call", "Failed", subflow_run_id="sub"),
            flow("sub", "Failed", "inner-run", parent="call-0"),
            task("step-0", "step", "Failed", flow="sub"),
            log(1000.0, "INFO", "starting", "root"),
            log(1000.5, "INFO", "step begins", "sub", "step-0"),
            log(1001.0, "ERROR", "step broke", "sub", "step-0"),
            log(1001.5, "WARNING", "flow unhappy", "root"),
        ],
    )
    base = ui_server(KUBECONFIG=str(tmp_path / "none"))
    page.goto(f"{base}/#/local/root?tab=logs")
    page.wait_for_selector("pre.log span.line")
    lines = page.locator("pre.log span.line")
    assert lines.count() == 4
    error = page.locator("pre.log span.lvl-ERROR")
    assert error.count() == 1
    assert "| [inner-run] step-0 | step broke" in error.inner_text()
    assert "[" not in lines.nth(0).inner_text()  # the root's own lines have no label
    colour = error.evaluate("e => getComputedStyle(e).color")
    assert colour != lines.nth(0).evaluate("e => getComputedStyle(e).color")
    page.select_option("select[name=level]", "WARNING")
    texts = page.locator("pre.log span.line").all_inner_texts()
    assert [t.split(" | ")[1].strip() for t in texts] == ["ERROR", "WARNING"]
