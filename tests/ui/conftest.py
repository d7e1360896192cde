"""Fixtures for the web UI tests: headless Chromium, `headrace ui` as a process, and the
operator on the test control plane (the helpers of tests/controller/operator_harness.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "controller"))

from browser import CHROMIUM, CHROMIUM_ARGS
from operator_harness import FlowRuns, OperatorProcess, install_crds, operator_storage, storage_env

from cluster.fixtures import Cluster
from cluster.node import RealNode
from cluster.s3 import use_storage_env

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium (Debian's, installed by scripts/setup) per test module, closed
    at its end: while open, Playwright runs an event loop in the main thread, and a later
    test in the same session would find it running (`asyncio.run` then fails)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: scripts/setup installs Debian's chromium as root")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        handle = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield handle
        finally:
            handle.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    handle = context.new_page()
    errors: list[str] = []
    handle.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield handle
    finally:
        context.close()
    assert not errors, f"the page raised: {errors}"


UiServer = Callable[..., str]


@pytest.fixture
def ui_server(tmp_path: Path) -> Iterator[UiServer]:
    """Starts `headrace ui --port 0` with more arguments and the given environment; returns
    its base URL."""
    processes: list[subprocess.Popen[str]] = []

    def start(*args: str, **env: str) -> str:
        process = subprocess.Popen(
            [sys.executable, "-m", "headrace", "ui", "--port", "0", *args],
            env={**os.environ, "HEADRACE_HOME": str(tmp_path / "home"), **env},
            stdout=subprocess.PIPE,
            stderr=(tmp_path / "ui.log").open("w"),
            text=True,
        )
        processes.append(process)
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"http://\S+", line)
        assert match, f"headrace ui did not start: {line!r} {(tmp_path / 'ui.log').read_text()}"
        return match.group(0).rstrip("/")

    try:
        yield start
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture
def ui_operator(
    cluster: Cluster,
    real_node: RealNode,
    namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[OperatorProcess]:
    """The operator for this namespace, its flows on the real node and their records in S3;
    this test (and the `headrace` commands and UI it starts) read them there, as a user would."""
    install_crds(cluster.api_client)
    env = operator_storage(cluster, namespace)
    process = OperatorProcess(cluster.kubeconfig, namespace, tmp_path, **env).start()
    use_storage_env(monkeypatch, storage_env(cluster))
    try:
        yield process
    finally:
        FlowRuns(cluster.api_client, namespace).delete_all()
        process.stop()


@pytest.fixture
def ui_flowruns(cluster: Cluster, real_node: RealNode, namespace: str) -> FlowRuns:
    return FlowRuns(cluster.api_client, namespace, image=real_node.node_images.flows.ref)
