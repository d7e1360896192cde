"""`headrace deploy` and `headrace run --deployment` against the real control plane."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from operator_harness import EXAMPLES, FlowRuns, OperatorProcess

from cluster.helpers import headrace_cli
from headrace.results import load_result

pytestmark = pytest.mark.cluster
FLOWS = EXAMPLES / "flows"


def test_deploy_prints_a_manifest_with_the_flows_parameters(tmp_path: object) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "headrace",
            "deploy",
            f"{FLOWS}/cluster_flows.py:hello",
            "--name",
            "hello",
            "--image",
            "registry.example/flows:1",
            "--interval",
            "60",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    manifest = yaml.safe_load(result.stdout)
    spec = manifest["spec"]
    assert spec["entrypoint"] == "/opt/flows/cluster_flows.py:hello"
    assert spec["parameters"] == {"name": "world", "n": 3}
    # kubectl reads YAML 1.1, where a bare `n:` key is the boolean false.
    assert '"n": 3' in result.stdout
    assert spec["parameterSchema"]["properties"]["n"]["type"] == "integer"
    assert spec["schedule"] == {"intervalSeconds": 60}


def test_deploy_apply_then_run_deployment_follows_to_the_end(
    operator_process: OperatorProcess, flowruns: FlowRuns
) -> None:
    kubeconfig = str(operator_process.kubeconfig)
    applied = headrace_cli(
        "deploy",
        f"{FLOWS}/cluster_flows.py:hello",
        "--name",
        "greeter",
        "--image",
        str(flowruns.image),  # the flow image, loaded into the node (no pull: a local tag)
        "--path-in-image",
        "/opt/flows/cluster_flows.py",
        "--version",
        "7",
        "-n",
        flowruns.namespace,
        "--apply",
        kubeconfig=kubeconfig,
    )
    assert applied.returncode == 0, applied.stderr
    assert "created" in applied.stdout

    ran = headrace_cli(
        "run",
        "--deployment",
        "greeter",
        "-p",
        "name=cli",
        "-n",
        flowruns.namespace,
        kubeconfig=kubeconfig,
    )
    assert ran.returncode == 0, ran.stderr + operator_process.log()[-2000:]
    assert "Completed" in ran.stderr
    (name,) = flowruns.names()
    status = flowruns.status(name)
    assert load_result(status["resultLocation"])["greeting"] == "hello cli"

    bad = headrace_cli(
        "run",
        "--deployment",
        "greeter",
        "-p",
        "n=lots",
        "-n",
        flowruns.namespace,
        kubeconfig=kubeconfig,
    )
    assert bad.returncode == 1
    assert "parameter 'n'" in bad.stderr
