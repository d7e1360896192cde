"""List, then watch, one kind of object into the operator's cache, as client-go's reflector does.

FlowRuns and pods are watched here rather than through kopf. kopf spends about a millisecond
of CPU on every watch event (causes, loggers, handler kwargs) and keeps a memory per object;
with some seven events per FlowRun, that was most of the operator's CPU under a burst and much
of its memory over 10,000 stored runs. Here an event is parsed once, put in the cache and
handed to `on_event`. kopf still runs the operator's lifecycle and the Deployments' daemons.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from headrace.controller.cache import Store, key_of
from headrace.controller.problems import ProblemLog

logger = logging.getLogger("headrace.operator")

# One watch request lasts this long (the API server ends it; the informer resumes from the
# last resourceVersion). The client's read timeout is a little longer, so a connection that
# died silently is noticed, too.
WATCH_SECONDS = 240
READ_TIMEOUT_SECONDS = WATCH_SECONDS + 30
MAX_BACKOFF_SECONDS = 30.0

OnEvent = Callable[[str, dict[str, Any]], None]  # (ADDED | MODIFIED | DELETED, object)


class Stream(Protocol):
    """A watch response: its lines, and a way to end it from another thread."""

    def __iter__(self) -> Iterator[bytes]: ...

    def shutdown(self) -> None: ...

    def release_conn(self) -> None: ...


ListPage = Callable[..., dict[str, Any]]  # (limit=, _continue=) -> a list's JSON
OpenWatch = Callable[[str], Stream]  # resourceVersion -> a watch's response


class Gone(Exception):
    """The watch's resourceVersion is too old (410): list again."""


class Listing:
    """Every item of a paged list, then the list's resourceVersion in `version`: 10,000
    objects never sit in memory twice over."""

    def __init__(self, list_page: ListPage, size: int = 500) -> None:
        self._list_page = list_page
        self._size = size
        self.version: str | None = None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": self._size}
            if token:
                kwargs["_continue"] = token
            listed = self._list_page(**kwargs)
            yield from listed.get("items") or []
            meta = listed.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                self.version = str(meta.get("resourceVersion") or "") or None
                return


def events(lines: Iterable[bytes]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(type, object) of each line of a watch response; an ERROR 410 raises Gone."""
    for line in lines:
        if not line.strip():
            continue
        event = json.loads(line)
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone(obj.get("message") or "resourceVersion too old")
            raise RuntimeError(f"watch error {obj.get('code')}: {obj.get('message')}")
        yield str(kind), obj


class Informer:
    """One collection (one namespace, or all): `prime` lists it into `store`, then a thread
    watches it, calling `on_event` for each change (after a relist, for each object listed and
    each one gone). From then on `on_event` keeps the store: what to keep of a deleted object
    is its decision."""

    def __init__(
        self,
        what: str,
        list_page: ListPage,
        open_watch: OpenWatch,
        store: Store,
        on_event: OnEvent,
        problems: ProblemLog,
        namespace: str | None = None,
    ) -> None:
        self.what = what
        self._list_page = list_page
        self._open_watch = open_watch
        self._store = store
        self._on_event = on_event
        self._problems = problems
        self._namespace = namespace
        self._version: str | None = None
        self._stopped = threading.Event()
        self._stream: Stream | None = None
        self._thread: threading.Thread | None = None

    def prime(self) -> None:
        """Fill the store before any reconcile runs: no decision on a half-filled cache."""
        listing = Listing(self._list_page)
        for item in listing:
            self._store.put(item)
        self._version = listing.version

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"headrace-watch-{self.what}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        stream = self._stream
        if stream is not None:
            with contextlib.suppress(Exception):  # already closed: nothing to unblock
                stream.shutdown()  # unblocks the read in the watch thread
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        failures = 0
        while not self._stopped.is_set():
            try:
                if self._version is None:
                    self._relist()
                self._watch()
                failures = 0
            except Gone:
                self._version = None  # the API server no longer has our place: list again
            except Exception as error:
                if self._stopped.is_set():
                    return
                failures += 1
                self._problems.problem(f"watching {self.what}", error)
                self._stopped.wait(min(MAX_BACKOFF_SECONDS, 0.5 * 2**failures))

    def _relist(self) -> None:
        """List again after losing the watch's place: what is gone is told as DELETED."""
        seen: set[tuple[str, str]] = set()
        listing = Listing(self._list_page)
        for item in listing:
            seen.add(key_of(item))
            self._on_event("MODIFIED", item)
        for known in self._store:
            in_scope = self._namespace is None or key_of(known)[0] == self._namespace
            if in_scope and key_of(known) not in seen:
                self._on_event("DELETED", known)
        self._version = listing.version

    def _watch(self) -> None:
        assert self._version is not None
        stream = self._stream = self._open_watch(self._version)
        try:
            for kind, obj in events(stream):
                if self._stopped.is_set():
                    return
                version = (obj.get("metadata") or {}).get("resourceVersion")
                if version:
                    self._version = str(version)
                if kind != "BOOKMARK":
                    self._on_event(kind, obj)
        finally:
            self._stream = None
            stream.release_conn()
