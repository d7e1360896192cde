"""Proof that the test control plane is a real Kubernetes API, and that pods really run.

These run against the local cluster (etcd + kube-apiserver + a real node: kubelet,
containerd, runc) or any cluster named by HEADRACE_TEST_KUBECONFIG (pods then use busybox).
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from cluster.fixtures import Cluster
from cluster.helpers import finished_pod, pod_gone, pod_logs, pod_manifest, wait_for

pytestmark = pytest.mark.cluster

GROUP = "tests.headrace.dev"


# -- API machinery -------------------------------------------------------------------


@pytest.fixture(scope="module")
def widget_crd(cluster: Cluster) -> str:
    """A namespaced CRD with a structural schema and a status subresource."""
    ext = client.ApiextensionsV1Api(cluster.api_client)
    plural = f"widgets{uuid.uuid4().hex[:6]}"
    name = f"{plural}.{GROUP}"
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["size"],
                "properties": {
                    "size": {"type": "integer", "minimum": 1},
                    "color": {"type": "string", "enum": ["red", "blue"]},
                },
            },
            "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
        },
    }
    ext.create_custom_resource_definition(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": name},
            "spec": {
                "group": GROUP,
                "scope": "Namespaced",
                "names": {"plural": plural, "singular": plural[:-1], "kind": "Widget"},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {"openAPIV3Schema": schema},
                        "subresources": {"status": {}},
                    }
                ],
            },
        }
    )

    def established() -> bool:
        crd = ext.read_custom_resource_definition(name)
        conditions = crd.status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    wait_for(established, 30, "CRD to be established")
    yield plural
    ext.delete_custom_resource_definition(name)


def create_widget(
    custom: client.CustomObjectsApi, namespace: str, plural: str, name: str, spec: dict[str, Any]
) -> dict[str, Any]:
    body = {"apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec}

    def attempt() -> dict[str, Any] | None:
        try:
            return custom.create_namespaced_custom_object(GROUP, "v1", namespace, plural, body)
        except ApiException as exc:
            if exc.status == 404:  # served a moment after Established
                return None
            raise

    return wait_for(attempt, 30, "CRD endpoint")


def test_crd_schema_rejects_invalid_object(
    cluster: Cluster, namespace: str, widget_crd: str
) -> None:
    custom = client.CustomObjectsApi(cluster.api_client)
    create_widget(custom, namespace, widget_crd, "ok", {"size": 2, "color": "red"})
    with pytest.raises(ApiException) as info:
        create_widget(custom, namespace, widget_crd, "bad", {"size": "huge", "color": "green"})
    assert info.value.status == 422
    assert "spec.size" in info.value.body
    assert "spec.color" in info.value.body


def test_status_subresource(cluster: Cluster, namespace: str, widget_crd: str) -> None:
    custom = client.CustomObjectsApi(cluster.api_client)
    create_widget(custom, namespace, widget_crd, "w", {"size": 1})
    custom.patch_namespaced_custom_object_status(
        GROUP, "v1", namespace, widget_crd, "w", {"status": {"phase": "Ready"}}
    )
    obj = custom.get_namespaced_custom_object(GROUP, "v1", namespace, widget_crd, "w")
    assert obj["status"] == {"phase": "Ready"}
    # Through the main resource, status changes are ignored and spec changes kept.
    obj["spec"]["size"] = 5
    obj["status"] = {"phase": "Hacked"}
    updated = custom.replace_namespaced_custom_object(GROUP, "v1", namespace, widget_crd, "w", obj)
    assert updated["spec"]["size"] == 5
    assert updated["status"] == {"phase": "Ready"}


def test_watch_sees_added_modified_deleted(cluster: Cluster, namespace: str) -> None:
    core = cluster.core
    start = core.list_namespaced_config_map(namespace).metadata.resource_version
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"a": "1"}}
    core.create_namespaced_config_map(namespace, body)
    core.patch_namespaced_config_map("cm", namespace, {"data": {"a": "2"}})
    core.delete_namespaced_config_map("cm", namespace)
    seen = []
    stream = watch.Watch().stream(
        core.list_namespaced_config_map,
        namespace,
        resource_version=start,
        timeout_seconds=10,
        field_selector="metadata.name=cm",
    )
    for event in stream:
        seen.append((event["type"], event["raw_object"]["data"]["a"]))
        if event["type"] == "DELETED":
            break
    assert seen == [("ADDED", "1"), ("MODIFIED", "2"), ("DELETED", "2")]


def test_rbac_enforced_for_restricted_identity(cluster: Cluster, namespace: str) -> None:
    rbac = client.RbacAuthorizationV1Api(cluster.api_client)
    restricted = cluster.service_account_client(namespace, "restricted")
    as_restricted = client.CoreV1Api(restricted)
    with pytest.raises(ApiException) as info:
        as_restricted.list_namespaced_config_map(namespace)
    assert info.value.status == 403

    rbac.create_namespaced_role(
        namespace,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "read-configmaps"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "restricted-reads"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "read-configmaps",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "restricted", "namespace": namespace}],
        },
    )

    def allowed() -> bool:
        try:
            as_restricted.list_namespaced_config_map(namespace)
        except ApiException as exc:
            if exc.status == 403:
                return False
            raise
        return True

    wait_for(allowed, 30, "the RoleBinding to take effect")
    for forbidden in (
        lambda: as_restricted.list_namespaced_pod(namespace),
        lambda: as_restricted.create_namespaced_config_map(
            namespace, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
        ),
        lambda: as_restricted.list_namespaced_config_map("default"),
    ):
        with pytest.raises(ApiException) as info:
            forbidden()
        assert info.value.status == 403
    restricted.close()


def test_owner_reference_garbage_collection(cluster: Cluster, namespace: str) -> None:
    if cluster.control_plane is not None and not cluster.control_plane.with_controller_manager:
        pytest.skip("kube-controller-manager disabled (HEADRACE_CLUSTER_KCM=0)")
    core = cluster.core
    owner = core.create_namespaced_config_map(
        namespace, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}}
    )
    reference = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner.metadata.uid,
    }
    core.create_namespaced_config_map(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "dependent", "ownerReferences": [reference]},
        },
    )
    core.delete_namespaced_config_map("owner", namespace)

    def collected() -> bool:
        names = [cm.metadata.name for cm in core.list_namespaced_config_map(namespace).items]
        return "dependent" not in names

    wait_for(collected, 90, "the garbage collector to delete the dependent")


# -- pods ------------------------------------------------------------------------------


def test_pod_runs_command_and_succeeds(cluster: Cluster, namespace: str) -> None:
    core = cluster.core
    script = 'echo "hello from $POD_NAME" > "$OUT"; cat "$OUT"; echo to-stderr >&2'
    env = [
        {"name": "OUT", "value": "/tmp/out.txt"},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    manifest = pod_manifest("writer", script, image=cluster.pod_image, env=env)
    core.create_namespaced_pod(namespace, manifest)
    pod = finished_pod(core, namespace, "writer")
    assert pod.status.phase == "Succeeded"
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 0
    assert terminated.reason == "Completed"
    assert pod.spec.node_name
    logs = core.read_namespaced_pod_log("writer", namespace)
    assert "hello from writer" in logs  # written to the file, then read back from it
    assert "to-stderr" in logs


def test_failing_pod_reports_exit_code(cluster: Cluster, namespace: str) -> None:
    core = cluster.core
    manifest = pod_manifest("fails", "echo bye; exit 3", image=cluster.pod_image)
    core.create_namespaced_pod(namespace, manifest)
    pod = finished_pod(core, namespace, "fails")
    assert pod.status.phase == "Failed"
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (3, "Error")
    assert core.read_namespaced_pod_log("fails", namespace) == "bye\n"


def follow_logs(core: client.CoreV1Api, namespace: str, name: str) -> list[str]:
    """The pod's log lines as they come, in a thread, until the container ends."""
    lines: list[str] = []

    def follow() -> None:
        stream = core.read_namespaced_pod_log(name, namespace, follow=True, _preload_content=False)
        for chunk in stream.stream():
            lines.extend(chunk.decode().splitlines())

    threading.Thread(target=follow, daemon=True).start()
    time.sleep(0.5)  # the stream is open before anything is sent
    return lines


def test_deleted_pod_gets_sigterm(cluster: Cluster, namespace: str) -> None:
    core = cluster.core
    script = "trap 'echo TERM; exit 0' TERM; echo ready; while :; do sleep 0.1; done"
    core.create_namespaced_pod(namespace, pod_manifest("graceful", script, image=cluster.pod_image))
    wait_for(
        lambda: pod_logs(core, namespace, "graceful") == "ready\n",
        what="the pod to be running",
    )
    lines = follow_logs(core, namespace, "graceful")
    core.delete_namespaced_pod("graceful", namespace)
    wait_for(lambda: pod_gone(core, namespace, "graceful"), what="the pod to be deleted")
    wait_for(lambda: "TERM" in lines, 5, f"the trap's TERM in the logs: {lines}")


def test_pod_ignoring_sigterm_is_killed_after_grace_period(
    cluster: Cluster, namespace: str
) -> None:
    core = cluster.core
    script = "trap '' TERM; echo ready; while :; do sleep 0.1; done"
    manifest = pod_manifest(
        "stubborn", script, image=cluster.pod_image, terminationGracePeriodSeconds=3
    )
    core.create_namespaced_pod(namespace, manifest)
    wait_for(
        lambda: pod_logs(core, namespace, "stubborn") == "ready\n",
        what="the pod to be running",
    )
    started = time.monotonic()
    core.delete_namespaced_pod("stubborn", namespace)
    wait_for(lambda: pod_gone(core, namespace, "stubborn"), what="the pod to be deleted")
    took = time.monotonic() - started
    assert 2.5 <= took < 30, f"pod deletion took {took:.1f}s with a 3s grace period"


def test_active_deadline_fails_pod(cluster: Cluster, namespace: str) -> None:
    core = cluster.core
    # `sh` as a container's PID 1 has no SIGTERM handler, so the kernel ignores SIGTERM and
    # only SIGKILL ends it: a short grace period, or the kill waits the default 30 s.
    manifest = pod_manifest(
        "slow",
        "sleep 60",
        image=cluster.pod_image,
        activeDeadlineSeconds=2,
        terminationGracePeriodSeconds=1,
    )
    core.create_namespaced_pod(namespace, manifest)
    pod = finished_pod(core, namespace, "slow")
    assert pod.status.phase == "Failed"
    assert pod.status.reason == "DeadlineExceeded"
