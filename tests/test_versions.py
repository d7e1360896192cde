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
