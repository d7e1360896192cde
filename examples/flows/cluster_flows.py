"""Small flows the operator examples and end-to-end tests run on a cluster."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from pathlib import Path

import fsspec

from headrace import flow, get_run_logger, task, variables
from headrace.blocks.system import Secret


@task
def double(x: int) -> int:
    return 2 * x


@flow
def hello(name: str = "world", n: int = 3) -> dict[str, object]:
    """Greets and sums a small mapped stage, so the status shows task progress."""
    get_run_logger().info("hello, %s", name)
    doubled = double.map(list(range(n)))
    return {"greeting": f"hello {name}", "total": sum(f.result() for f in doubled)}


@task
def fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@flow
def uses_a_secret(block: str = "db-password", variable: str = "region") -> dict[str, object]:
    """Prefect 2 code reading a Secret block and a variable, which the FlowRun's pod.env gives
    (HEADRACE_BLOCK_SECRET__DB_PASSWORD, HEADRACE_VARIABLE_REGION). Returns only the secret's
    digest: a result is readable by whoever may read the run's storage."""
    secret = Secret.load(block)
    get_run_logger().info("loaded %s", secret)  # shown as SecretStr('**********')
    return {"sha256": fingerprint(secret.get()), "region": variables.get(variable)}


@flow
def runs_a_deployment(deployment: str = "child", n: int = 2) -> dict[str, object]:
    """Prefect 2's `run_deployment` in a flow pod: a FlowRun of the Deployment, followed to
    its end, its result read from the storage both share. The pod needs its account's token
    and the rights to make FlowRuns (README, "Running a Deployment from a flow")."""
    from headrace.deployments import run_deployment  # the kubernetes client: only here

    child = run_deployment(
        f"hello/{deployment}", parameters={"name": "child", "n": n}, timeout=300, poll_interval=1
    )
    return {"name": child.name, "state": child.state.name, "result": child.state.result()}


@flow
def asks_the_api() -> dict[str, int]:
    """What a flow pod's API token lets its code do: the HTTP status of each call (the
    attacker's view of `pod.automountServiceAccountToken`)."""
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    config.load_incluster_config()  # type: ignore[no-untyped-call]
    namespace = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read_text().strip()
    core, custom = client.CoreV1Api(), client.CustomObjectsApi()
    run = {"metadata": {"generateName": "made-"}, "spec": {"deploymentRef": {"name": "x"}}}
    run |= {"apiVersion": "headrace.dev/v1alpha1", "kind": "FlowRun"}
    calls = {
        "list secrets": lambda: core.list_namespaced_secret(namespace),
        "list pods": lambda: core.list_namespaced_pod(namespace),
        "list flowruns": lambda: custom.list_namespaced_custom_object(
            "headrace.dev", "v1alpha1", namespace, "flowruns"
        ),
        "create flowrun": lambda: custom.create_namespaced_custom_object(
            "headrace.dev", "v1alpha1", namespace, "flowruns", run
        ),
    }
    statuses: dict[str, int] = {}
    for name, call in calls.items():
        try:
            call()
            statuses[name] = 200
        except ApiException as error:
            statuses[name] = error.status
    return statuses


@flow
def fails(reason: str = "boom") -> None:
    raise ValueError(reason)


@flow
def sleeps(seconds: float = 60, marker: str = "") -> str:
    """Sleeps in a blocking call; with `marker` (a path or URL, s3:// included), writes
    the exception that ended the sleep there: a test sees the engine got the SIGTERM."""
    try:
        time.sleep(seconds)
    except BaseException as error:
        if marker:
            with fsspec.open(marker, "w") as handle:
                handle.write(type(error).__name__)
        raise
    return "slept"


@flow
def flaky() -> int:
    """Fails on the first attempt (pod) and succeeds on the next."""
    attempt = int(os.environ.get("HEADRACE_ATTEMPT", "1"))
    if attempt == 1:
        raise RuntimeError("first attempt fails on purpose")
    return attempt


@flow
def hog(megabytes: int = 512) -> int:
    """Holds `megabytes` of memory: over the pod's memory limit, the kernel kills it."""
    held = [bytearray(1024 * 1024) for _ in range(megabytes)]
    time.sleep(5)
    return len(held)


@flow
def stubborn(seconds: float = 600) -> str:
    """Ignores SIGTERM, as a flow stuck in native code would: only SIGKILL ends it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(seconds)
    return "outlasted"


@task
def where(x: int, seconds: float = 0) -> dict[str, object]:
    """Which host ran it: in a FlowRun with `taskRunner.dask`, a worker pod's name."""
    import socket
    import time

    time.sleep(seconds)
    return {"x": x, "host": socket.gethostname()}


@flow
def spread(n: int = 8, seconds: float = 0) -> dict[str, object]:
    """A mapped stage that names the hosts its task runs ran on, and the flow's own."""
    import socket

    ran = [future.result() for future in where.map(list(range(n)), seconds=seconds)]
    return {
        "hosts": sorted({str(item["host"]) for item in ran}),
        "flow_host": socket.gethostname(),
        "total": sum(int(str(item["x"])) for item in ran),
    }
