"""The CRD YAML in crds/ is generated from the pydantic models and must not drift."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from headrace.crd.generate import main as generate
from headrace.crd.generate import rendered

CRDS = Path(__file__).resolve().parents[1] / "crds"
CHART_CRDS = CRDS.parent / "charts" / "headrace" / "crds"


def test_committed_crds_match_the_models() -> None:
    assert generate(["--check", str(CRDS)]) == 0, "run: uv run python -m headrace.crd.generate"
    assert sorted(p.name for p in CRDS.glob("*.yaml")) == sorted(rendered())


def test_the_helm_chart_ships_the_same_crds_byte_for_byte() -> None:
    """`helm install` and `kubectl apply -f crds/` must create the very same CRDs."""
    assert generate(["--check", str(CHART_CRDS)]) == 0, (
        "run: uv run python -m headrace.crd.generate"
    )
    chart = {p.name: p.read_bytes() for p in CHART_CRDS.glob("*.yaml")}
    assert chart == {p.name: p.read_bytes() for p in CRDS.glob("*.yaml")}


def test_drift_is_detected(tmp_path: Path) -> None:
    generate([str(tmp_path)])
    path = tmp_path / "flowruns.headrace.dev.yaml"
    path.write_text(path.read_text().replace("minLength: 1", "minLength: 2", 1))
    assert generate(["--check", str(tmp_path)]) == 1


def _walk(schema: dict[str, Any], where: str) -> list[str]:
    """Every property that `kubectl explain` would show without a description."""
    missing = []
    for name, prop in (schema.get("properties") or {}).items():
        path = f"{where}.{name}"
        if "description" not in prop:
            missing.append(path)
        missing += _walk(prop, path)
        if "items" in prop:
            missing += _walk(prop["items"], path + "[]")
    return missing


def test_every_spec_field_is_described_and_no_ref_remains() -> None:
    for path in CRDS.glob("*.yaml"):
        text = path.read_text()
        assert "$ref" not in text and "anyOf" not in text, path.name
        crd = yaml.safe_load(text)
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        assert _walk(schema["properties"]["spec"], "spec") == [], path.name


def test_names_do_not_clash_with_apps_deployments() -> None:
    crds = {yaml.safe_load(p.read_text())["spec"]["names"]["kind"]: p for p in CRDS.glob("*.yaml")}
    names = yaml.safe_load(crds["Deployment"].read_text())["spec"]["names"]
    assert "deploy" not in names["shortNames"] and "fdeploy" in names["shortNames"]
    flowrun = yaml.safe_load(crds["FlowRun"].read_text())
    assert flowrun["spec"]["names"]["shortNames"] == ["fr"]
    columns = [c["name"] for c in flowrun["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert {"State", "Deployment", "Started", "Duration", "Age"} <= set(columns)
