"""The work queue and the cache under the operator's reconciles (pure, threads only)."""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable

from headrace.controller.cache import Store
from headrace.controller.workqueue import WorkQueue


def pod(name: str, version: str, uid: str = "u1", **extra: object) -> dict[str, object]:
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": version, "uid": uid}}


def test_the_cache_never_goes_back_to_an_older_copy() -> None:
    store = Store()
    assert store.put(pod("a", "10"))
    assert not store.put(pod("a", "9"))  # a watch event behind our own write's answer
    assert store.get("ns", "a")["metadata"]["resourceVersion"] == "10"  # type: ignore[index]
    assert store.put(pod("a", "3", uid="u2"))  # a new object of that name
    store.remove(pod("a", "11", uid="u2"), keep_last=True)
    assert store.get("ns", "a") is None
    assert store.last_seen("ns", "a")["metadata"]["resourceVersion"] == "11"  # type: ignore[index]
    store.forget("ns", "a")
    assert store.last_seen("ns", "a") is None
    store.put(pod("b", "1"))
    store.remove(pod("b", "2"))  # nobody waits for it: nothing is kept
    assert store.last_seen("ns", "b") is None


def test_a_key_is_reconciled_once_at_a_time_and_again_after_a_late_event() -> None:
    running = threading.Event()
    release = threading.Event()
    calls: list[Hashable] = []
    concurrent = {"now": 0, "max": 0}
    lock = threading.Lock()

    def reconcile(key: Hashable) -> float | None:
        with lock:
            concurrent["now"] += 1
            concurrent["max"] = max(concurrent["max"], concurrent["now"])
        calls.append(key)
        if len(calls) == 1:
            running.set()
            release.wait(5)
        with lock:
            concurrent["now"] -= 1
        return None

    queue = WorkQueue(reconcile, workers=4, on_error=lambda key, error: None)
    queue.start()
    try:
        queue.add("run")
        assert running.wait(5)
        for _ in range(100):  # a burst of events while it is being reconciled
            queue.add("run")
        release.set()
        deadline = time.monotonic() + 5
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
    finally:
        queue.stop()
    assert calls == ["run", "run"]  # the burst became one more look, not a hundred
    assert concurrent["max"] == 1


def test_a_delayed_look_comes_no_sooner_and_an_event_brings_it_forward() -> None:
    seen: list[float] = []
    start = time.monotonic()
    queue = WorkQueue(
        lambda key: seen.append(time.monotonic() - start) or None,
        workers=1,
        on_error=lambda key, error: None,
    )
    queue.start()
    try:
        queue.add("later", delay=0.3)
        queue.add("later", delay=10)  # a later wish does not postpone it
        time.sleep(0.5)
        queue.add("soon", delay=5)
        queue.add("soon")  # an event: now
        time.sleep(0.2)
    finally:
        queue.stop()
    assert len(seen) == 2
    assert 0.3 <= seen[0] < 0.5


def test_a_failing_reconcile_backs_off_and_is_reported() -> None:
    errors: list[Exception] = []
    attempts: list[float] = []

    def reconcile(key: Hashable) -> float | None:
        attempts.append(time.monotonic())
        raise RuntimeError("API down")

    queue = WorkQueue(reconcile, workers=1, on_error=lambda key, error: errors.append(error))
    queue.start()
    try:
        queue.add("run")
        time.sleep(1.8)
    finally:
        queue.stop()
    assert 2 <= len(attempts) <= 3  # 0 s, then 1 s later, then 2 s after that
    assert attempts[1] - attempts[0] >= 0.9
    assert all(isinstance(error, RuntimeError) for error in errors)


def test_a_key_added_first_goes_ahead_of_keys_already_due() -> None:
    order: list[Hashable] = []
    done = threading.Event()

    def reconcile(key: Hashable) -> float | None:
        order.append(key)
        if len(order) == 4:
            done.set()
        return None

    queue = WorkQueue(reconcile, workers=1, on_error=lambda key, error: None)
    for key in ("old-1", "old-2", "old-3"):
        queue.add(key)
    queue.add("new", first=True)
    queue.add("new")  # a later plain add does not push it back
    queue.start()
    try:
        assert done.wait(5)
    finally:
        queue.stop()
    assert order == ["new", "old-1", "old-2", "old-3"]


def test_the_queue_reports_how_long_each_key_waited_once_due() -> None:
    now = [100.0]
    waits: list[tuple[float, bool]] = []
    done = threading.Event()

    def reconcile(key: Hashable) -> float | None:
        if key == "late":
            done.set()
        return None

    queue = WorkQueue(
        reconcile,
        workers=1,
        on_error=lambda key, error: None,
        clock=lambda: now[0],
        on_wait=lambda seconds, first: waits.append((seconds, first)),
    )
    queue.add("new", first=True)
    queue.add("late", delay=1.0)  # due at 101
    now[0] = 103.5  # the new key waited 3.5 s; the other 2.5 s past its due time
    queue.start()
    try:
        assert done.wait(5)
    finally:
        queue.stop()
    assert waits == [(3.5, True), (2.5, False)]


def test_a_new_run_does_not_wait_for_a_worker_busy_with_an_older_one() -> None:
    release = threading.Event()
    started_slow = threading.Event()
    reconciled_new = threading.Event()
    order: list[Hashable] = []

    def reconcile(key: Hashable) -> float | None:
        order.append(key)
        if key == "older":  # an older run's write, waiting on a slow API server
            started_slow.set()
            release.wait(5)
        elif key == "new":
            reconciled_new.set()
        return None

    queue = WorkQueue(reconcile, workers=1, on_error=lambda key, error: None, first_workers=1)
    queue.start()
    try:
        queue.add("older")
        assert started_slow.wait(5)
        queue.add("another")  # not new: only the busy worker may take it
        queue.add("new", first=True)
        assert reconciled_new.wait(5)  # while "older" still holds the only general worker
        assert "another" not in order
        release.set()
    finally:
        release.set()
        queue.stop()
