"""The Artifacts tab in headless Chromium, on a local run that made them with Prefect 2's
calls: listed newest first, opened by a click, and the user's content shown as text, never
as markup, script or a `javascript:` link."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cluster.helpers import headrace_cli

UiServer = Callable[..., str]

FLOW = """
from headrace import flow, task
from headrace.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

@task
def score(i: int) -> int:
    create_table_artifact([{"i": i, "cell": "<b>bold?</b>"}], key="scores", description=f"run {i}")
    return i

@flow
def reporting() -> None:
    create_markdown_artifact("# Report\\n<img src=x onerror=\\"window.hacked=1\\">", key="report")
    create_link_artifact("javascript:window.hacked=2", link_text="click me", key="bad-link")
    create_link_artifact("https://example.com/dashboard", link_text="dashboard", key="good-link")
    [f.result() for f in score.map([1, 2])]
"""


def test_artifacts_tab_lists_and_shows_them_as_text(
    tmp_path: Path, ui_server: UiServer, page: Any
) -> None:
    (tmp_path / "flows.py").write_text(FLOW)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADRACE_")}
    env["HEADRACE_HOME"] = str(tmp_path / "home")
    done = headrace_cli(
        "run", "flows.py:reporting", "-o", "json", env=env, cwd=tmp_path, timeout=60
    )
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["id"]

    base = ui_server(KUBECONFIG=str(tmp_path / "none"))
    page.goto(f"{base}/#/local/{run_id}")
    page.click("button[data-tab=artifacts]")
    rows = page.locator("table.artifacts tbody tr")
    rows.first.wait_for()
    listed = [rows.nth(i).locator("td").nth(1).inner_text() for i in range(rows.count())]
    assert listed == ["scores", "scores", "good-link", "bad-link", "report"]  # newest first

    page.click("table.artifacts tr:has-text('report')")
    text = page.locator("pre.artifact-text")
    text.wait_for()
    assert text.inner_text() == '# Report\n<img src=x onerror="window.hacked=1">'
    assert page.locator(".artifact img").count() == 0

    page.click("table.artifacts tr:has-text('bad-link')")
    page.locator(".artifact h3", has_text="bad-link").wait_for()
    assert page.locator(".artifact a").count() == 0  # not a link: shown as code
    assert page.locator(".artifact code").inner_text() == "click me <javascript:window.hacked=2>"

    page.click("table.artifacts tr:has-text('good-link')")
    link = page.locator(".artifact a")
    link.wait_for()
    assert (link.inner_text(), link.get_attribute("href")) == (
        "dashboard",
        "https://example.com/dashboard",
    )
    assert link.get_attribute("rel") == "noopener noreferrer"

    page.click("table.artifacts tr:has-text('run 2')")
    page.locator(".artifact h3", has_text="scores").wait_for()
    cells = page.locator(".artifact table td")
    assert [cells.nth(i).inner_text() for i in range(cells.count())] == ["2", "<b>bold?</b>"]
    assert page.locator(".artifact table b").count() == 0
    assert page.evaluate("window.hacked") is None
