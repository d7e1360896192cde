"""One version: `__version__` in operator/headrace/__init__.py. The package metadata is built
from it (hatch), and the chart and the image must say the same."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib

import yaml

import headrace
from shipping import CHART, REPO


def test_the_package_metadata_is_built_from_the_one_source() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"] and project["project"]["dynamic"] == ["version"]
    assert project["tool"]["hatch"]["version"]["path"] == "operator/headrace/__init__.py"
    assert importlib.metadata.version("headrace") == headrace.__version__


def test_the_chart_and_the_image_say_the_same_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == chart["version"] == headrace.__version__
    label = re.search(
        r'org\.opencontainers\.image\.version="([^"]+)"', (REPO / "Dockerfile").read_text()
    )
    assert label is not None and label.group(1) == headrace.__version__


def test_the_compiled_build_is_checked_by_the_locked_mypy() -> None:
    """mypyc type-checks what it compiles: the hook must pin the mypy that CI's `mypy` runs, or
    the image's build could refuse (or compile differently) code that CI passed."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    hook = project["tool"]["hatch"]["build"]["targets"]["wheel"]["hooks"]["mypyc"]
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    (mypy,) = (package["version"] for package in lock["package"] if package["name"] == "mypy")
    assert f"mypy=={mypy}" in hook["dependencies"], hook["dependencies"]
    assert hook["enable-by-default"] is False, "source installs stay pure Python"
    for path in hook["include"]:
        assert (REPO / path.lstrip("/")).is_file(), f"the hook compiles {path}, which is gone"
