"""Pod semantics the Headrace engine relies on, as implemented by the process kubelet.

Portable tests also pass on a real cluster (HEADRACE_TEST_KUBECONFIG); those that
inspect files or processes on this machine are skipped there.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from kubernetes import client

from cluster.fixtures import Cluster
from cluster.helpers import IMAGE, finished_pod, pod_logs, pod_manifest, wait_for

pytestmark = pytest.mark.cluster


def local_only(cluster: Cluster) -> None:
    if not cluster.process_kubelet:
        pytest.skip("inspects files/processes of pods running on this machine")


def test_running_pod_status(cluster: Cluster, namespace: str) -> None:
    core = cluster.core
    core.create_namespaced_pod(namespace, pod_manifest("runner", "while :; do sleep 1; done"))

    def running() -> client.V1Pod | None:
        pod = core.read_namespaced_pod("runner", namespace)
        return pod if pod.status.phase == "Running" else None

    pod = wait_for(running, what="the pod to run")
    conditions = {c.type: c.status for c in pod.status.conditions}
    for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready"):
        assert conditions[kind] == "True", kind
    status = pod.status.container_statuses[0]
    assert status.ready and status.started and status.restart_count == 0
    assert status.state.running.started_at is not None
    assert pod.status.pod_ip and pod.status.start_time
    assert pod.spec.node_name


def test_env_from_secrets_configmaps_and_fields(cluster: Cluster, namespace: str) -> None:
    core = cluster.core
    core.create_namespaced_secret(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s"},
            "stringData": {"pw": "x1"},
        },
    )
    core.create_namespaced_config_map(
        namespace,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v2"}},
    )
    env = [
        {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}},
        {"name": "K", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "GREETING", "value": "hi-$(K)"},
    ]
    manifest = pod_manifest("env", 'echo "$PW $K $NS $GREETING $CM_k $1"', env=env)
    container = manifest["spec"]["containers"][0]
    container["args"] = ["sh", "$(PW)"]
    container["envFrom"] = [{"prefix": "CM_", "configMapRef": {"name": "c"}}]
    core.create_namespaced_pod(namespace, manifest)
    assert finished_pod(core, namespace, "env").status.phase == "Succeeded"
    assert pod_logs(core, namespace, "env") == f"x1 v2 {namespace} hi-v2 v2 x1\n"


def test_missing_secret_blocks_until_created(cluster: Cluster, namespace: str) -> None:
    core = cluster.core
    env = [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "late", "key": "pw"}}}]
    core.create_namespaced_pod(namespace, pod_manifest("waits", 'echo "$PW"', env=env))

    def config_error() -> bool:
        statuses = core.read_namespaced_pod("waits", namespace).status.container_statuses
        waiting = statuses[0].state.waiting if statuses else None
        return bool(waiting and waiting.reason == "CreateContainerConfigError")

    wait_for(config_error, what="CreateContainerConfigError")
    core.create_namespaced_secret(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "late"},
            "stringData": {"pw": "ok"},
        },
    )
    assert finished_pod(core, namespace, "waits").status.phase == "Succeeded"
    assert pod_logs(core, namespace, "waits") == "ok\n"


def test_init_containers_run_before_containers(cluster: Cluster, namespace: str) -> None:
    core = cluster.core
    manifest = pod_manifest("init", "echo main")
    manifest["spec"]["initContainers"] = [
        {"name": f"init{i}", "image": IMAGE, "command": ["sh", "-c", f"echo init{i}"]}
        for i in (1, 2)
    ]
    core.create_namespaced_pod(namespace, manifest)
    pod = finished_pod(core, namespace, "init")
    assert pod.status.phase == "Succeeded"
    init = pod.status.init_container_statuses
    assert [s.state.terminated.reason for s in init] == ["Completed", "Completed"]
    assert init[0].state.terminated.finished_at <= init[1].state.terminated.started_at
    first_main = pod.status.container_statuses[0].state.terminated.started_at
    assert init[1].state.terminated.finished_at <= first_main


def test_restart_policy_on_failure(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    local_only(cluster)
    core = cluster.core
    flag = tmp_path / "tried"
    script = 'if [ -e "$FLAG" ]; then echo second; exit 0; fi; touch "$FLAG"; echo first; exit 4'
    manifest = pod_manifest(
        "retry", script, restartPolicy="OnFailure", env=[{"name": "FLAG", "value": str(flag)}]
    )
    core.create_namespaced_pod(namespace, manifest)
    pod = finished_pod(core, namespace, "retry")
    assert pod.status.phase == "Succeeded"
    status = pod.status.container_statuses[0]
    assert status.restart_count == 1
    assert status.last_state.terminated.exit_code == 4
    assert pod_logs(core, namespace, "retry") == "second\n"
    previous = core.read_namespaced_pod_log("retry", namespace, previous=True)
    assert previous == "first\n"


def test_container_without_command_fails_clearly(cluster: Cluster, namespace: str) -> None:
    local_only(cluster)
    core = cluster.core
    manifest = pod_manifest("nocmd", "")
    del manifest["spec"]["containers"][0]["command"]
    core.create_namespaced_pod(namespace, manifest)
    pod = finished_pod(core, namespace, "nocmd")
    assert pod.status.phase == "Failed"
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.reason == "StartError"
    assert "no command" in terminated.message


def test_follow_logs_streams_until_exit(cluster: Cluster, namespace: str) -> None:
    core = cluster.core
    script = "for i in 1 2 3; do echo line$i; sleep 0.3; done"
    core.create_namespaced_pod(namespace, pod_manifest("chatty", script))
    wait_for(lambda: pod_logs(core, namespace, "chatty"), what="first log line")
    started = time.monotonic()
    response = core.read_namespaced_pod_log(
        "chatty", namespace, follow=True, timestamps=True, _preload_content=False
    )
    lines = response.data.decode().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["line1", "line2", "line3"]
    assert all(line.split(" ", 1)[0].endswith("Z") for line in lines)
    assert time.monotonic() - started < 30


def test_pod_for_another_scheduler_is_not_bound(cluster: Cluster, namespace: str) -> None:
    core = cluster.core
    core.create_namespaced_pod(
        namespace, pod_manifest("elsewhere", "true", schedulerName="someone-else")
    )
    time.sleep(2)
    pod = core.read_namespaced_pod("elsewhere", namespace)
    assert pod.spec.node_name is None
    assert pod.status.phase == "Pending"


def test_restart_policy_always_keeps_restarting(cluster: Cluster, namespace: str) -> None:
    core = cluster.core
    core.create_namespaced_pod(namespace, pod_manifest("again", "echo run", restartPolicy="Always"))

    def restarted_twice() -> client.V1Pod | None:
        pod = core.read_namespaced_pod("again", namespace)
        statuses = pod.status.container_statuses or []
        return pod if statuses and statuses[0].restart_count >= 2 else None

    pod = wait_for(restarted_twice, what="two restarts")
    assert pod.status.phase == "Running"
    assert pod.status.container_statuses[0].last_state.terminated.exit_code == 0


def test_many_pods_run_concurrently(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    local_only(cluster)
    core = cluster.core
    count = 8
    # Each pod checks in, then waits for all others: only concurrent execution succeeds.
    script = (
        'touch "$DIR/$HOSTNAME"; i=0; '
        'while [ "$(ls "$DIR" | wc -l)" -lt "$COUNT" ]; do '
        "i=$((i+1)); [ $i -gt 600 ] && exit 1; sleep 0.1; done; echo done"
    )
    env = [{"name": "DIR", "value": str(tmp_path)}, {"name": "COUNT", "value": str(count)}]
    names = [f"p{i}" for i in range(count)]
    for name in names:
        core.create_namespaced_pod(namespace, pod_manifest(name, script, env=env))
    for name in names:
        assert finished_pod(core, namespace, name, timeout=90).status.phase == "Succeeded"
        assert pod_logs(core, namespace, name) == "done\n"


def test_termination_message_from_the_file_or_the_log_tail(
    cluster: Cluster, namespace: str
) -> None:
    core = cluster.core
    path = "/dev/termination-log"
    told = pod_manifest(
        "told", 'echo "all done" > "$MESSAGE_FILE"', env=[{"name": "MESSAGE_FILE", "value": path}]
    )
    core.create_namespaced_pod(namespace, told)
    terminated = finished_pod(core, namespace, "told").status.container_statuses[0].state.terminated
    assert terminated.exit_code == 0 and terminated.message == "all done\n"

    crashed = pod_manifest("crashed", "echo first; echo last words; exit 3")
    crashed["spec"]["containers"][0]["terminationMessagePolicy"] = "FallbackToLogsOnError"
    core.create_namespaced_pod(namespace, crashed)
    terminated = (
        finished_pod(core, namespace, "crashed").status.container_statuses[0].state.terminated
    )
    assert terminated.exit_code == 3 and "last words" in terminated.message
