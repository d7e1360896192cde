"""What the operator knows of the cluster: the newest copy of each object it watches.

Reconciles read from here, not from the API server: watch events fill it, and so do the
answers to the operator's own writes, so a pod just created or a status just patched is seen
by the next reconcile before its watch event comes back. A copy never goes back to an older
resourceVersion (an event that lags behind a write's answer is dropped).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

Key = tuple[str, str]  # namespace, name


def key_of(obj: dict[str, Any]) -> Key:
    meta = obj["metadata"]
    return meta.get("namespace") or "", meta["name"]


def _version(obj: dict[str, Any]) -> int | None:
    try:
        return int(obj["metadata"].get("resourceVersion") or "")
    except ValueError:
        return None


def lean(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without `metadata.managedFields`, which no decision reads and which can be
    as big as the rest of the object."""
    meta = obj.get("metadata") or {}
    if "managedFields" not in meta:
        return obj
    return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


class Store:
    """Objects of one kind by namespace and name; safe to use from any thread.

    `shrink` turns an object into what is worth keeping of it (an ended FlowRun needs its
    name, owner, state and times, not its parameters): 10,000 stored runs stay small.
    """

    def __init__(self, shrink: Callable[[dict[str, Any]], dict[str, Any]] = lean) -> None:
        self._shrink = shrink
        self._lock = threading.Lock()
        self._objects: dict[Key, dict[str, Any]] = {}
        self._gone: dict[Key, dict[str, Any]] = {}

    def put(self, obj: dict[str, Any]) -> bool:
        """Keep `obj` unless a newer copy is known; whether it was kept."""
        obj = self._shrink(obj)
        key = key_of(obj)
        with self._lock:
            known = self._objects.get(key)
            if known is not None and known["metadata"].get("uid") == obj["metadata"].get("uid"):
                new, old = _version(obj), _version(known)
                if new is not None and old is not None and new < old:
                    return False
            self._objects[key] = obj
            self._gone.pop(key, None)
            return True

    def remove(self, obj: dict[str, Any], keep_last: bool = False) -> None:
        """The object was deleted. With `keep_last`, its last copy stays readable through
        `last_seen` until `forget`: only while someone still needs it, or it would pile up."""
        key = key_of(obj)
        with self._lock:
            known = self._objects.get(key)
            if known is None or known["metadata"].get("uid") == obj["metadata"].get("uid"):
                self._objects.pop(key, None)
                if keep_last:
                    self._gone[key] = self._shrink(obj)

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._objects.get((namespace, name))

    def last_seen(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The final copy of a deleted object (a pod's exit code outlives the pod)."""
        with self._lock:
            return self._gone.get((namespace, name))

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._gone.pop((namespace, name), None)

    def select(self, namespace: str, match: Callable[[dict[str, Any]], bool]) -> list[Any]:
        with self._lock:
            found = [o for (ns, _), o in self._objects.items() if ns == namespace and match(o)]
        return found

    def __len__(self) -> int:
        with self._lock:
            return len(self._objects)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        with self._lock:
            return iter(list(self._objects.values()))
