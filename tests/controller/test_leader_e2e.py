"""Two operator replicas, one active: leader election through a Lease, on the real API server."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from operator_harness import FlowRuns, OperatorProcess, operator_storage, poll

from cluster.fixtures import Cluster
from cluster.node import RealNode

pytestmark = pytest.mark.cluster

LEADING = "leading: holding Lease"


def test_one_replica_acts_and_the_other_takes_over_within_15_s_when_it_dies(
    crds: Cluster, real_node: RealNode, namespace: str, tmp_path: Path, flowruns: FlowRuns
) -> None:
    env = {
        "HEADRACE_LEADER_ELECTION_NAMESPACE": namespace,
        **operator_storage(crds, namespace),
    }
    replicas = [
        OperatorProcess(crds.kubeconfig, namespace, tmp_path / name, **env) for name in ("a", "b")
    ]
    for replica in replicas:
        replica.workdir.mkdir()
        replica.start()
    try:
        leader = poll(
            lambda: next((r for r in replicas if LEADING in r.log()), None), 30, "a leader"
        )
        standby = next(r for r in replicas if r is not leader)
        flowruns.sleeper("across", 12)  # runs through the failover
        flowruns.wait_running("across", leader)
        assert "FlowRun" not in standby.log()  # it watches nothing while it waits

        killed = time.monotonic()
        leader.stop(signal.SIGKILL)  # no goodbye: its Lease must run out
        poll(lambda: LEADING in standby.log(), 20, "the standby to take the Lease", standby)
        assert time.monotonic() - killed < 15

        status = flowruns.wait_final("across", operator=standby)
        assert status["state"] == "Completed", status
        assert len(status["attempts"]) == 1 and len(flowruns.pods("across")) == 1
        flowruns.create(flowruns.manifest("flowrun-hello"))
        assert flowruns.wait_final("hello", operator=standby)["state"] == "Completed"
    finally:
        flowruns.delete_all()
        for replica in replicas:
            replica.stop()


def test_a_replica_stopped_cleanly_hands_the_lease_over_at_once(
    crds: Cluster, namespace: str, tmp_path: Path
) -> None:
    env = {"HEADRACE_LEADER_ELECTION_NAMESPACE": namespace}
    first = OperatorProcess(crds.kubeconfig, namespace, tmp_path / "first", **env)
    second = OperatorProcess(crds.kubeconfig, namespace, tmp_path / "second", **env)
    for replica in (first, second):
        replica.workdir.mkdir()
    first.start()
    try:
        poll(lambda: LEADING in first.log(), 30, "the first replica to lead", first)
        second.start()
        poll(lambda: "waiting: another replica holds" in second.log(), 30, "the second to wait")
        stopped = time.monotonic()
        assert first.process is not None
        os.killpg(first.process.pid, signal.SIGTERM)  # as Kubernetes stops a pod: it lets go
        poll(lambda: LEADING in second.log(), 10, "the second to lead", second)
        assert time.monotonic() - stopped < 5  # no 10-second wait for the Lease to lapse
    finally:
        first.stop()
        second.stop()
