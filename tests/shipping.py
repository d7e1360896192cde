"""Helpers for the shipping tests: the helm binary, rendering the chart, README sections."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from cluster import helm as helm_build
from cluster import kubectl as kubectl_build

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "headrace"
README = REPO / "README.md"


def helm_env(home: Path, kubeconfig: Path | None = None) -> dict[str, str]:
    """Environment for a helm process: its config/cache/data under `home`, not the user's."""
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    env.pop("KUBECONFIG", None)
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    return env


def helm(
    *args: str, home: Path, kubeconfig: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the helm built from its Go module (tests/cluster/helm.py), from the repo root."""
    binary = helm_build.build(quiet=True)
    result = subprocess.run(
        [str(binary), *args],
        cwd=REPO,
        env=helm_env(home, kubeconfig),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def kubectl_binary() -> Path:
    """kubectl built from its Go module (tests/cluster/kubectl.py), for README commands."""
    return kubectl_build.build(quiet=True)


def render(home: Path, *sets: str, namespace: str = "headrace-system") -> list[dict[str, Any]]:
    """`helm template` of the chart with `--set` values: the documents it would apply."""
    args = ["template", "headrace", str(CHART), "--namespace", namespace]
    for value in sets:
        args += ["--set", value]
    out = helm(*args, home=home).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def readme_section(title: str) -> str:
    """The text of the README section whose heading is exactly `title` (any level)."""
    text = README.read_text()
    match = re.search(rf"^(#+) {re.escape(title)}\n(.*?)(?=^#{{1,6}} |\Z)", text, re.M | re.S)
    if match is None:
        raise AssertionError(f"README has no section {title!r}")
    return match.group(2)


def fenced_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.M | re.S)


def commands(block: str) -> list[str]:
    """Shell commands of a fenced block: continuation lines joined, comments dropped."""
    joined = block.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip() and line[0] != "#"]
