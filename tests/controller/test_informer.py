"""The informer's relist (controller/informer.py), pure: a watch place lost to etcd compaction
cannot be provoked on demand on the test cluster (tests/controller/test_informer_e2e.py
follows the real API server)."""

from __future__ import annotations

import json
import logging
import threading

from headrace.controller.cache import Store
from headrace.controller.informer import Informer
from headrace.controller.problems import ProblemLog


def pod(name: str, version: str) -> dict[str, object]:
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": version, "uid": name}}


def test_an_informer_that_lost_its_place_lists_again_and_tells_what_is_gone() -> None:
    """A watch answered 410 Gone (etcd compacted past its place): list again; what the list
    no longer has is told as DELETED, the rest as MODIFIED, and the watch goes on from there."""
    cluster = {"a": pod("a", "5"), "b": pod("b", "6")}
    lists = {"count": 0}

    def list_page(**_: object) -> dict[str, object]:
        lists["count"] += 1
        return {
            "metadata": {"resourceVersion": str(6 + lists["count"])},
            "items": list(cluster.values()),
        }

    class Stream:
        def __init__(self, lines: list[bytes]) -> None:
            self.lines = lines

        def __iter__(self):  # type: ignore[no-untyped-def]
            return iter(self.lines)

        def shutdown(self) -> None:
            pass

        def release_conn(self) -> None:
            pass

    watches: list[str] = []
    told: list[tuple[str, str]] = []
    done = threading.Event()

    def open_watch(version: str) -> Stream:
        watches.append(version)
        if len(watches) == 1:
            gone = {"type": "ERROR", "object": {"code": 410, "message": "too old"}}
            return Stream([json.dumps(gone).encode() + b"\n"])
        done.set()
        return Stream([])

    store = Store()
    informer = Informer(
        "pods",
        list_page,
        open_watch,
        store,
        lambda kind, obj: told.append((kind, obj["metadata"]["name"])),
        ProblemLog(logging.getLogger("test")),
        "ns",
    )
    informer.prime()
    del cluster["b"]  # gone while the watch was down
    informer.start()
    try:
        assert done.wait(5)
    finally:
        informer.stop()
    assert watches[:2] == ["7", "8"]  # from the first list's place, then the second's
    assert sorted(told) == [("DELETED", "b"), ("MODIFIED", "a")]
