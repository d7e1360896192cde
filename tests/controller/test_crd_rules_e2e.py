"""What the generated CRDs make the real API server refuse or fill in, with no operator
running: the rules live in the schema (crd/models.py), so `kubectl apply` names the field."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from operator_harness import GROUP, VERSION, FlowRuns

from cluster.fixtures import Cluster

pytestmark = pytest.mark.cluster


def refusal(make: Any) -> str:
    with pytest.raises(ApiException) as refused:
        make()
    assert refused.value.status == 422, refused.value.body
    return str(refused.value.body)


def test_a_schedule_is_a_cron_or_an_interval(idle_flowruns: FlowRuns) -> None:
    both = refusal(
        lambda: idle_flowruns.deployment(
            "both", schedule={"cron": "@hourly", "intervalSeconds": 60}
        )
    )
    assert "spec.schedule" in both
    assert "set exactly one of spec.schedule.cron and spec.schedule.intervalSeconds" in both
    neither = refusal(
        lambda: idle_flowruns.deployment("neither", schedule={"timezone": "Europe/Paris"})
    )
    assert "set exactly one of spec.schedule.cron" in neither
    made = idle_flowruns.deployment("hourly", schedule={"cron": "@hourly"})
    assert made["spec"]["schedule"] == {"cron": "@hourly", "timezone": "UTC"}  # the default


def test_a_concurrency_policy_needs_a_limit(idle_flowruns: FlowRuns) -> None:
    for policy in ("Queue", "Forbid", "Replace"):
        said = refusal(
            lambda p=policy: idle_flowruns.deployment(f"no-limit-{p.lower()}", concurrencyPolicy=p)
        )
        assert "set spec.concurrencyLimit" in said, said
    idle_flowruns.deployment("allowed", concurrencyPolicy="Allow")
    idle_flowruns.deployment("limited", concurrencyPolicy="Forbid", concurrencyLimit=1)


def test_defaults_are_filled_in_by_the_api_server(idle_flowruns: FlowRuns) -> None:
    made = idle_flowruns.deployment("plain")
    assert made["spec"]["retries"] == 0 and made["spec"]["suspend"] is False


def status_write(cluster: Cluster, namespace: str, name: str, status: dict[str, Any]) -> Any:
    return client.CustomObjectsApi(cluster.api_client).patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "flowruns", name, {"status": status}
    )


def condition(kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True",
        "reason": "Completed",
        "message": "",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
        **fields,
    }


def test_status_times_and_conditions_are_checked(
    crds: Cluster, namespace: str, idle_flowruns: FlowRuns
) -> None:
    idle_flowruns.run_of("etl", "checked")
    said = refusal(lambda: status_write(crds, namespace, "checked", {"startTime": "yesterday"}))
    assert "status.startTime" in said
    said = refusal(
        lambda: status_write(
            crds,
            namespace,
            "checked",
            {"attempts": [{"number": 1, "podName": "p", "state": "Running", "startTime": "now"}]},
        )
    )
    assert "status.attempts[0].startTime" in said
    twice = [condition("Ready"), condition("Ready", status="False")]
    said = refusal(lambda: status_write(crds, namespace, "checked", {"conditions": twice}))
    assert "status.conditions[1]" in said and "Duplicate value" in said
    unexplained = [{k: v for k, v in condition("Ready").items() if k != "reason"}]
    said = refusal(lambda: status_write(crds, namespace, "checked", {"conditions": unexplained}))
    assert "status.conditions[0].reason" in said and "Required value" in said
    fine = {
        "state": "Completed",
        "startTime": "2026-01-01T00:00:00.123456Z",
        "completionTime": "2026-01-01T00:01:00Z",
        "conditions": [condition("Ready", observedGeneration=1), condition("Succeeded")],
    }
    written = status_write(crds, namespace, "checked", fine)
    assert [c["type"] for c in written["status"]["conditions"]] == ["Ready", "Succeeded"]
