"""The web UI in real headless Chromium against a live FlowRun on the test control plane.

The run (examples/flows/stages.py) has two mapped stages, a subflow, a `gate` task held open
by the test and a `report` task pending on it. The graph is a canvas, so the page exposes
`window.headraceGraph.state()` with what it has laid out and drawn; clicks are real clicks at
the positions the page reports.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fsspec
import pytest
from operator_harness import FlowRuns, OperatorProcess, poll

from cluster.helpers import headrace_cli
from headrace.records import RunRecord
from headrace.results import load_result

pytestmark = pytest.mark.cluster

N = 6
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
UiServer = Callable[..., str]


def report_pending(flowruns: FlowRuns, name: str) -> dict[str, Any] | None:
    """The FlowRun's status once its record shows `report` pending behind the gate."""
    status = flowruns.status(name)
    url = status.get("recordLocation")
    if not url:
        return None
    try:
        record = RunRecord.load(url)
    except FileNotFoundError:
        return None
    keys = {(r["task_key"], r["state"]["type"]) for r in record.task_runs.values()}
    return status if ("report", "PENDING") in keys and len(record.flow_runs) == 2 else None


def graph_state(page: Any) -> dict[str, Any]:
    state: dict[str, Any] = page.evaluate("window.headraceGraph.state()")
    return state


def headrace(*args: str, kubeconfig: Path) -> str:
    result = headrace_cli(*args, kubeconfig=kubeconfig, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_flowrun_page_graph_results_and_history(
    ui_operator: OperatorProcess,
    ui_flowruns: FlowRuns,
    ui_server: UiServer,
    page: Any,
    namespace: str,
) -> None:
    flowruns = ui_flowruns
    # The gate is an object in S3: the flow's container and this test both reach it.
    gate = f"{ui_operator.env['HEADRACE_DEFAULT_RESULT_STORAGE']}/gate-open"
    body = flowruns.manifest("flowrun-stages", parameters={"n": N, "gate_file": gate})
    flowruns.create(body)
    kubeconfig = ui_operator.kubeconfig
    poll(lambda: report_pending(flowruns, "stages"), 90, "report pending behind the gate")

    # The CLI sees the same: stages with counts, and the pending task's wait.
    text = headrace("graph", "flowrun/stages", "-n", namespace, kubeconfig=kubeconfig)
    assert f"double  {N}: Completed {N}" in text, text
    assert f"halve  {N}: Completed {N}  after double" in text, text
    assert "report-0 waits on gate-0 (Running)" in text, text

    base = ui_server(KUBECONFIG=str(kubeconfig))

    # Run history: the FlowRun is listed, and the state filter keeps or drops it.
    page.goto(f"{base}/#/")
    page.wait_for_selector("#flowruns tbody tr")
    assert page.locator("#flowruns tbody tr", has_text="stages").count() == 1
    page.select_option("select[name=state]", "Completed")
    page.wait_for_selector("#flowruns[data-state=Completed]")
    assert page.locator("#flowruns tbody tr", has_text="stages").count() == 0
    page.select_option("select[name=state]", "Running")
    page.wait_for_selector("#flowruns[data-state=Running] tbody tr")
    page.click("#flowruns a:text-is('stages')")

    # The flow-run page: stages, the pending task drawn with its edge to what it waits on.
    page.wait_for_function("window.headraceGraph && window.headraceGraph.ready")
    state = graph_state(page)
    assert state["layout"] == "stage"
    stages = {(s["key"], s["count"]): s["depth"] for s in state["stages"]}
    assert stages[("halve", N)] > stages[("double", N)]
    assert stages[("report", 1)] > stages[("gate", 1)]
    assert state["pendingNodes"] == 1
    assert {"from": "gate-0", "to": "report-0"} in state["pendingEdges"]
    # 2N+4 task runs of the parent and the subflow's N squares, all shown while expanded.
    assert state["visibleNodes"] == 2 * N + 3 + N
    (subflow,) = state["subflows"]
    assert subflow["flowName"] == "summarize" and not subflow["collapsed"]
    assert page.locator(".run-header .badge").inner_text() == "Running"

    # Collapse the subflow by clicking its header: its task runs leave the graph.
    point = page.evaluate("window.headraceGraph.subflowHeaderScreen('summarize')")
    page.mouse.click(point["x"], point["y"])
    state = poll(
        lambda: (s := graph_state(page))["subflows"][0]["collapsed"] and s, 5, "the collapse"
    )
    assert state["visibleNodes"] == 2 * N + 3
    assert {"from": "gate-0", "to": "report-0"} in state["pendingEdges"]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui_flowrun_stages.png"))

    # The timeline is the same graph: same nodes, same waits; the subflow expands there too.
    page.click("button[data-layout=timeline]")
    state = graph_state(page)
    assert state["layout"] == "timeline"
    assert state["visibleNodes"] == 2 * N + 3
    assert {"from": "gate-0", "to": "report-0"} in state["pendingEdges"]
    page.evaluate("window.headraceGraph.toggleSubflow('summarize')")
    assert graph_state(page)["visibleNodes"] == 2 * N + 3 + N
    page.screenshot(path=str(ARTIFACTS / "ui_flowrun_timeline.png"))

    # Search finds task runs by name.
    page.fill(".graph-search", "halve")
    assert graph_state(page)["matches"] == N

    # Open the gate: the page follows the run to its end without a reload.
    with fsspec.open(gate, "w") as handle:
        handle.write("open")
    status = flowruns.wait_final("stages", operator=ui_operator)
    assert status["state"] == "Completed"
    poll(lambda: graph_state(page)["final"], 30, "the page to see the run end")
    assert graph_state(page)["pendingNodes"] == 0
    poll(lambda: page.locator(".run-header .badge").inner_text() == "Completed", 10, "badge")

    # Results: the flow's result location as a link served by the UI, with type and size.
    page.click("button[data-tab=results]")
    flow_row = page.locator("tr[data-id=flow]")
    flow_row.wait_for()
    location = flow_row.locator("td.location a")
    assert location.inner_text() == status["resultLocation"]
    assert flow_row.locator("td.type").inner_text() == "dict"
    expected = load_result(status["resultLocation"])
    assert json.loads(flow_row.locator("td.preview").inner_text()) == expected
    served = page.request.get(base + location.get_attribute("href").removeprefix(base))
    assert served.ok and served.json() == expected
    double_row = page.locator("tr", has_text="double-3").first
    assert double_row.locator("td.type").inner_text() == "int"
    assert double_row.locator("td.preview").inner_text() == "6"

    # Logs: the record's lines, newest first on request.
    page.click("button[data-tab=logs]")
    page.wait_for_function("document.querySelector('pre.log').textContent.includes('halving')")
    page.check(".logs-pane input[type=checkbox]")
    first = page.locator("pre.log").first.inner_text().splitlines()[0]
    assert "Finished in state Completed" in first
    page.screenshot(path=str(ARTIFACTS / "ui_flowrun_logs.png"))

    # The artifact `report` made in the pod, read through the FlowRun's record location.
    shown = headrace(
        "artifacts", "flowrun/stages", "-n", namespace, "--show", "report", kubeconfig=kubeconfig
    )
    assert shown.splitlines() == [
        "report (markdown)",
        "",
        "# Report",
        "",
        f"{N} numbers, sum of squares {expected['sum_of_squares']:g}",
    ]

    # And `headrace logs flowrun/NAME --reverse` reads the same record through the FlowRun.
    lines = headrace(
        "logs", "flowrun/stages", "-n", namespace, "--reverse", kubeconfig=kubeconfig
    ).splitlines()
    # Pod output the record lacks (what `headrace run` printed last) comes first, prefixed
    # with the pod's name; then the record's lines, newest first.
    pod = status["attempts"][-1]["podName"]
    assert f"{pod} | result     {status['resultLocation']}" in lines
    record_lines = [line for line in lines if not line.startswith(f"{pod} | ")]
    assert "Finished in state Completed" in record_lines[0]
    assert any("doubling and halving 6 numbers" in line for line in record_lines)
