"""A process kubelet: makes pods actually run, as local processes, without containers.

It registers one Node (Ready, capacity, heartbeats), acts as the scheduler for
pods using the default scheduler (binding subresource), runs each bound pod in a
:class:`~cluster.podworker.PodWorker`, and serves container logs over HTTPS so the
apiserver can proxy ``kubectl logs``. Pods are watched with list+watch, resuming
from the last resourceVersion and re-listing on 410 Gone.

Run: ``python -m cluster.kubelet --kubeconfig ... --node-name ... --port ...``
(the control plane launcher does this, with ``tests/`` on PYTHONPATH).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from cluster import logserver
from cluster.containers import ContainerRun, now
from cluster.kubeconfig import client_from_kubeconfig
from cluster.podworker import POD_IP, PodWorker
from cluster.rawapi import RawApi, status_code

JSON = dict[str, Any]
log = logging.getLogger("kubelet")
HEARTBEAT_SECONDS = 10
KUBELET_VERSION = "v0.0.0-headrace-process"


class Kubelet:
    """Node registration, scheduling (binding) and pod worker bookkeeping."""

    def __init__(self, api: RawApi, node_name: str, port: int, state_dir: Path) -> None:
        self.api = api
        self.node_name = node_name
        self.port = port
        self.state_dir = state_dir
        server = urlsplit(api.api_client.configuration.host)
        self.api_host = server.hostname or "127.0.0.1"
        self.api_port = server.port or 443
        self.shutdown = threading.Event()
        self.workers: dict[str, PodWorker] = {}  # by pod UID
        self.lock = threading.Lock()

    # -- node -----------------------------------------------------------------------------

    def _node_status(self) -> JSON:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        resources = {"cpu": str(os.cpu_count() or 1), "memory": str(memory), "pods": "110"}
        stamp = now()
        ok = {"lastHeartbeatTime": stamp, "lastTransitionTime": stamp}
        conditions = [
            {"type": kind, "status": "False", "reason": f"KubeletHas{reason}", **ok}
            for kind, reason in (
                ("MemoryPressure", "SufficientMemory"),
                ("DiskPressure", "NoDiskPressure"),
                ("PIDPressure", "SufficientPID"),
            )
        ]
        conditions.append(
            {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "headrace process kubelet is posting ready status",
                **ok,
            }
        )
        uname = platform.uname()
        return {
            "capacity": resources,
            "allocatable": resources,
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": POD_IP},
                {"type": "Hostname", "address": self.node_name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
            "nodeInfo": {
                "machineID": "headrace",
                "systemUUID": "headrace",
                "bootID": "headrace",
                "kernelVersion": uname.release,
                "osImage": "headrace process kubelet",
                "containerRuntimeVersion": "headrace-process://0.1",
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64" if uname.machine == "x86_64" else uname.machine,
            },
        }

    def register_node(self) -> None:
        """Create the Node (or take over an existing one) and post a Ready status."""
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node_name,
                "labels": {
                    "kubernetes.io/hostname": self.node_name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "headrace.dev/process-kubelet": "true",
                },
            },
            "spec": {},
        }
        try:
            self.api.post("/api/v1/nodes", node)
        except Exception as exc:
            if status_code(exc) != 409:
                raise
        self.heartbeat()

    def heartbeat(self) -> None:
        self.api.merge_patch(
            f"/api/v1/nodes/{self.node_name}/status", {"status": self._node_status()}
        )

    def _heartbeat_loop(self) -> None:
        while not self.shutdown.wait(HEARTBEAT_SECONDS):
            try:
                self.heartbeat()
            except Exception as exc:
                log.warning("node heartbeat failed: %s", exc)

    # -- pods -----------------------------------------------------------------------------

    def _bind(self, pod: JSON) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        if spec.get("schedulerName", "default-scheduler") != "default-scheduler":
            return
        selector: dict[str, str] = spec.get("nodeSelector") or {}
        labels = {"kubernetes.io/hostname": self.node_name, "kubernetes.io/os": "linux"}
        if any(labels.get(k) != v for k, v in selector.items()):
            log.info(
                "not binding %s/%s: nodeSelector %s", meta["namespace"], meta["name"], selector
            )
            return
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name},
        }
        try:
            self.api.post(
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/binding", binding
            )
            log.info("bound %s/%s to %s", meta["namespace"], meta["name"], self.node_name)
        except Exception as exc:
            if status_code(exc) not in (404, 409):
                log.warning("binding %s/%s failed: %s", meta["namespace"], meta["name"], exc)

    def _fail_orphan(self, pod: JSON) -> None:
        """A non-terminal pod this node ran before a kubelet restart: its processes are gone."""
        meta = pod["metadata"]
        body = {
            "metadata": {"uid": meta["uid"]},
            "status": {
                "phase": "Failed",
                "reason": "KubeletRestarted",
                "message": "the process kubelet restarted and lost this pod's processes",
            },
        }
        try:
            self.api.merge_patch(
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status", body
            )
        except Exception as exc:
            log.warning("could not fail orphaned pod %s: %s", meta["name"], exc)

    def handle(self, kind: str, pod: JSON) -> None:
        """React to one pod event (``kind`` is a watch event type or SYNC from a list)."""
        meta, spec = pod["metadata"], pod["spec"]
        uid = meta["uid"]
        node = spec.get("nodeName") or ""
        if kind == "DELETED":
            with self.lock:
                worker = self.workers.pop(uid, None)
            if worker is not None:
                worker.mark_gone()
            return
        if not node:
            if not meta.get("deletionTimestamp"):
                self._bind(pod)
            return
        if node != self.node_name:
            return
        with self.lock:
            worker = self.workers.get(uid)
        if worker is not None:
            worker.update(pod)
            return
        phase = pod.get("status", {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            return  # finished before this kubelet started; nothing to run
        if kind == "SYNC" and pod.get("status", {}).get("startTime"):
            self._fail_orphan(pod)
            return
        worker = PodWorker(
            self.api, pod, self.state_dir, self.api_host, self.api_port, self.shutdown
        )
        with self.lock:
            self.workers[uid] = worker
        worker.start()

    def lookup_container(self, namespace: str, pod: str, container: str) -> ContainerRun | None:
        with self.lock:
            workers = list(self.workers.values())
        for worker in workers:
            if worker.namespace == namespace and worker.pod_name == pod:
                return worker.container(container)
        return None

    def _relist(self) -> str:
        listing = self.api.get("/api/v1/pods")
        seen = set()
        for pod in listing.get("items", []):
            seen.add(pod["metadata"]["uid"])
            self.handle("SYNC", pod)
        with self.lock:
            vanished = [uid for uid in self.workers if uid not in seen]
        for uid in vanished:  # deleted while we were not watching
            with self.lock:
                worker = self.workers.pop(uid, None)
            if worker is not None:
                worker.mark_gone()
        return str(listing["metadata"]["resourceVersion"])

    def watch_pods(self, on_synced: Any = None) -> None:
        """List+watch all pods until shutdown; re-list on 410 Gone or errors."""
        resource_version: str | None = None
        while not self.shutdown.is_set():
            try:
                if resource_version is None:
                    resource_version = self._relist()
                    if on_synced is not None:
                        on_synced()
                        on_synced = None
                for event in self.api.watch(
                    "/api/v1/pods",
                    resourceVersion=resource_version,
                    allowWatchBookmarks="true",
                ):
                    kind, obj = event["type"], event["object"]
                    if kind == "ERROR":
                        log.info("watch error %s; re-listing", obj.get("code"))
                        resource_version = None
                        break
                    resource_version = obj["metadata"]["resourceVersion"]
                    if kind != "BOOKMARK":
                        self.handle(kind, obj)
            except Exception as exc:
                if self.shutdown.is_set():
                    return
                log.warning("pod watch failed (%s); re-listing", exc)
                log.debug("%s", traceback.format_exc())
                resource_version = None
                time.sleep(1)

    def kill_all(self) -> None:
        self.shutdown.set()
        with self.lock:
            workers = list(self.workers.values())
        for worker in workers:
            worker.kill_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="headrace process kubelet")
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--node-name", default="headrace-node")
    parser.add_argument("--port", type=int, required=True, help="HTTPS port for logs")
    parser.add_argument("--tls-cert", type=Path, required=True)
    parser.add_argument("--tls-key", type=Path, required=True)
    parser.add_argument("--client-ca", type=Path, help="CA for the apiserver's client cert")
    parser.add_argument("--state-dir", type=Path, required=True, help="pod logs and workdirs")
    parser.add_argument("--ready-file", type=Path, help="touched once the node is ready")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    api = RawApi(client_from_kubeconfig(args.kubeconfig, pool_size=64))
    kubelet = Kubelet(api, args.node_name, args.port, args.state_dir)

    def _stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: killing all pods and exiting", signum)
        kubelet.kill_all()
        logging.shutdown()
        os._exit(0)  # the watch may be blocked in a socket read

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    args.state_dir.mkdir(parents=True, exist_ok=True)
    logserver.serve(
        args.port, args.tls_cert, args.tls_key, args.client_ca, kubelet.lookup_container
    )
    kubelet.register_node()
    threading.Thread(target=kubelet._heartbeat_loop, name="heartbeat", daemon=True).start()

    def _synced() -> None:
        log.info("node %s ready; serving logs on 127.0.0.1:%d", args.node_name, args.port)
        if args.ready_file is not None:
            args.ready_file.touch()

    kubelet.watch_pods(on_synced=_synced)
    return 0


if __name__ == "__main__":
    sys.exit(main())
