"""The operator's informer (controller/informer.py) against the real API server: it lists, then
follows a watch; when its place in the watch is lost, it lists again and reports what
vanished meanwhile as deleted."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest
from kubernetes import client

from cluster.fixtures import Cluster
from headrace.controller.informer import Informer
from headrace.controller.kube import Kube
from headrace.controller.podspec import LABEL_RUN
from headrace.controller.problems import ProblemLog

pytestmark = pytest.mark.cluster


class Seen:
    """What the informer told, in order, by pod name."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, kind: str, obj: dict[str, Any]) -> None:
        with self.lock:
            self.events.append((kind, obj["metadata"]["name"]))

    def wait_for(self, kind: str, name: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if (kind, name) in self.events:
                    return
            time.sleep(0.05)
        raise AssertionError(f"no {kind} for {name} within {timeout}s; told: {self.events}")


def unschedulable_pod(name: str, labelled: bool = True) -> client.V1Pod:
    """A pod no node runs (its node does not exist): it stays as created."""
    labels = {LABEL_RUN: name} if labelled else {}
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1PodSpec(
            node_name="no-such-node",
            containers=[client.V1Container(name="c", image="example.invalid/none")],
        ),
    )


def start_informer(cluster: Cluster, namespace: str, seen: Seen) -> tuple[Kube, Informer]:
    kube = Kube(cluster.api_client.configuration)
    informer = kube.informer(
        "pods", namespace, seen, ProblemLog(logging.getLogger("test")), LABEL_RUN
    )
    informer.prime()
    informer.start()
    return kube, informer


def test_the_informer_primes_then_follows_labelled_pods(cluster: Cluster, namespace: str) -> None:
    core = cluster.core
    core.create_namespaced_pod(namespace, unschedulable_pod("before"))
    seen = Seen()
    kube, informer = start_informer(cluster, namespace, seen)
    try:
        assert kube.pods.get(namespace, "before") is not None  # listed, not told as news
        assert seen.events == []
        core.create_namespaced_pod(namespace, unschedulable_pod("after"))
        core.create_namespaced_pod(namespace, unschedulable_pod("stranger", labelled=False))
        seen.wait_for("ADDED", "after")
        core.patch_namespaced_pod("after", namespace, {"metadata": {"annotations": {"a": "b"}}})
        seen.wait_for("MODIFIED", "after")
        core.delete_namespaced_pod("before", namespace, grace_period_seconds=0)
        seen.wait_for("DELETED", "before")
        assert all(name != "stranger" for _, name in seen.events)
    finally:
        informer.stop()


def test_a_watch_resumed_from_an_old_place_tells_what_vanished_meanwhile(
    cluster: Cluster, namespace: str
) -> None:
    core = cluster.core
    for name in ("kept", "vanishing"):
        core.create_namespaced_pod(namespace, unschedulable_pod(name))
    seen = Seen()
    kube = Kube(cluster.api_client.configuration)
    informer = kube.informer(
        "pods", namespace, seen, ProblemLog(logging.getLogger("test")), LABEL_RUN
    )
    informer.prime()
    # Deleted while the informer is not watching, and its place set far back: the API server
    # replays from there, or answers 410 Gone (after an etcd compaction) and the informer lists
    # again (tests/controller/test_informer.py covers that path alone).
    core.delete_namespaced_pod("vanishing", namespace, grace_period_seconds=0)
    informer._version = "1"
    informer.start()
    try:
        seen.wait_for("DELETED", "vanishing")
        assert ("DELETED", "kept") not in seen.events
        assert kube.pods.get(namespace, "kept") is not None
        core.create_namespaced_pod(namespace, unschedulable_pod("later"))
        seen.wait_for("ADDED", "later")  # and it watches on from the new list
    finally:
        informer.stop()


def test_open_watches_never_cost_the_requests_a_new_connection(
    crds: Cluster, namespace: str
) -> None:
    """A burst of requests reuses its kept connections while both watches are open: one
    TLS handshake per connection, not one every few requests (each one costs the API server
    CPU that a burst of runs needs)."""
    kube = Kube(crds.api_client.configuration, max_in_flight=4)
    problems = ProblemLog(logging.getLogger("test"))
    informers = [
        kube.informer("pods", namespace, Seen(), problems, LABEL_RUN),
        kube.informer("flowruns", namespace, Seen(), problems, LABEL_RUN),
    ]
    for informer in informers:
        informer.prime()
        informer.start()
    try:
        time.sleep(0.5)  # both watches are open, each on its own connection

        listing = kube.list_page("pods", namespace)
        about = {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {"name": "x", "namespace": namespace},
        }

        def requests() -> None:
            for index in range(10):
                assert kube.get_custom("flowruns", namespace, f"absent-{index}") is None
                assert listing(limit=1)["kind"] == "PodList"  # read as plain JSON
                kube.event(about, "Normal", "Tested", f"event {index}")  # posted by its thread

        threads = [threading.Thread(target=requests) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        deadline = time.monotonic() + 30
        while len(crds.core.list_namespaced_event(namespace).items) < 80:
            assert time.monotonic() < deadline, "the 80 events were not all posted"
            time.sleep(0.2)
        pools = kube.api_client.rest_client.pool_manager.pools
        keys = pools.keys()
        made = sum(pools[key].num_connections for key in keys)
        assert made <= 4, f"{made} connections made for 240 requests, 4 at a time"
    finally:
        for informer in informers:
            informer.stop()
