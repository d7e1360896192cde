"""The few Kubernetes API calls the operator makes, each named for what it does.

All through the kubernetes client. kopf, which watches the Deployments and keeps their
schedule daemons (controller/handlers.py), talks to the API server with a client of its own
(aiohttp) that it does not offer for other calls: that second client is kopf's own, and no
code of ours makes a request through it.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from headrace.controller import metrics
from headrace.controller.cache import Store, lean
from headrace.controller.events import EventSender, build_event
from headrace.controller.informer import (
    READ_TIMEOUT_SECONDS,
    WATCH_SECONDS,
    Gone,
    Informer,
    Listing,
    ListPage,
    OnEvent,
    OpenWatch,
    Stream,
)
from headrace.controller.problems import ProblemLog
from headrace.crd.models import GROUP, VERSION
from headrace.states import FINAL_STATES
from headrace.timestamps import now_iso

logger = logging.getLogger("headrace.operator")

MERGE_PATCH = "application/merge-patch+json"


def api_message(error: ApiException) -> str:
    """The API server's own words for a refusal (they name the offending field)."""
    try:
        body = json.loads(error.body or "")
        return str(body.get("message") or error.reason)
    except (ValueError, AttributeError):
        return str(error.reason)


MAX_RETRY_AFTER_SECONDS = 10.0


def retry_after(error: ApiException) -> float | None:
    """Seconds to wait before asking again, when the API server is only busy (429 Too Many
    Requests, 503 with a Retry-After): the request was fine and will succeed later."""
    if error.status not in (429, 503):
        return None
    headers = error.headers or {}
    raw = headers.get("Retry-After")
    if raw is None and error.status == 503:
        return None  # a 503 without Retry-After is an outage, not back-pressure
    try:
        seconds = float(raw) if raw is not None else 1.0
    except ValueError:
        seconds = 1.0
    return min(MAX_RETRY_AFTER_SECONDS, max(0.1, seconds))


def ended_run_essentials(run: dict[str, Any]) -> dict[str, Any]:
    """An ended FlowRun as the operator still needs it: who it is, whose it is, how and when it
    ended (for history limits and counts). Its spec and the rest of its status are not read
    again."""
    run = lean(run)
    status = run.get("status") or {}
    if status.get("state") not in FINAL_STATES:
        return run
    spec = run.get("spec") or {}
    kept = {"state", "completionTime", "startTime", "deployment", "observedGeneration"}
    return {
        **run,
        "spec": {"deploymentRef": spec["deploymentRef"]} if spec.get("deploymentRef") else {},
        "status": {key: value for key, value in status.items() if key in kept},
    }


class Conflict(Exception):
    """A write was based on an older copy than the API server's; the cache now has the new one."""


class Kube:
    """API calls, at most `max_in_flight` at once: the operator never floods the API server.

    Reads go to the stores (controller/cache.py), which watch events fill; every write's
    answer goes there too.
    """

    def __init__(
        self, configuration: client.Configuration | None = None, max_in_flight: int = 16
    ) -> None:
        configuration = copy.deepcopy(configuration or client.Configuration.get_default_copy())
        # One kept connection per request in flight: the client's default pool (5 per CPU) is
        # smaller on a small node, and each request past it paid a TLS handshake.
        configuration.connection_pool_maxsize = max_in_flight
        api_client = client.ApiClient(configuration)
        self.api_client = api_client
        metrics.instrument(self.api_client)  # times every request (controller/metrics.py)
        self.core = client.CoreV1Api(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)
        # Watches on a pool of their own: each holds its connection for minutes, and in the
        # requests' pool they pushed kept connections out, so a burst paid a TLS handshake
        # (on both ends) for every few requests.
        watch_client = client.ApiClient(configuration)
        metrics.instrument(watch_client)
        self._watch_core = client.CoreV1Api(watch_client)
        self._watch_custom = client.CustomObjectsApi(watch_client)
        self._in_flight = threading.BoundedSemaphore(max_in_flight)
        self.flowruns = Store(shrink=ended_run_essentials)
        self.deployments = Store()
        self.pods = Store()
        self.events = EventSender(self._post_event)

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with self._in_flight:
            return fn(*args, **kwargs)

    def _call_allowing(
        self, status: int, fn: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> None:
        """Call, taking an answer of `status` as done: 404 for a delete of what is already
        gone, 409 for a create of what already exists."""
        try:
            self._call(fn, *args, **kwargs)
        except ApiException as error:
            if error.status != status:
                raise

    def _json(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Call and parse the answer as plain JSON: the client's typed models, built and then
        turned back into dicts, cost more CPU than the request itself.

        The body is read inside the in-flight bound: its connection is out of the pool until
        then, and one returned past the pool's size is closed (the next request pays a new
        TLS handshake)."""
        with self._in_flight:
            body = fn(*args, _preload_content=False, **kwargs).data
        return json.loads(body)  # type: ignore[no-any-return]

    # -- custom resources -----------------------------------------------------------------
    def get_custom(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            found = self._call(
                self.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, plural, name
            )
            return found  # type: ignore[no-any-return]
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def prime_deployments(self, namespaces: list[str]) -> None:
        """Fill the Deployments' store before the first reconcile (kopf's watch keeps it)."""
        scopes: list[str | None] = list(namespaces) or [None]
        for namespace in scopes:
            for item in Listing(self.list_page("deployments", namespace)):
                self.deployments.put(item)

    def informer(
        self,
        plural: str,
        namespace: str | None,
        on_event: OnEvent,
        problems: ProblemLog,
        pod_label: str,
    ) -> Informer:
        """FlowRuns or (labelled) pods of one namespace, or all, into their store."""
        store = self.pods if plural == "pods" else self.store(plural)
        where = f"{plural} in {namespace}" if namespace else plural
        return Informer(
            where,
            self.list_page(plural, namespace, pod_label),
            self._open_watch(plural, namespace, pod_label),
            store,
            on_event,
            problems,
            namespace,
        )

    def _list_call(
        self, plural: str, namespace: str | None, pod_label: str | None, watch: bool = False
    ) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
        core, custom = (self._watch_core, self._watch_custom) if watch else (self.core, self.custom)
        if plural == "pods":
            selector = {"label_selector": pod_label} if pod_label else {}
            if namespace is None:
                return core.list_pod_for_all_namespaces, (), selector
            return core.list_namespaced_pod, (namespace,), selector
        if namespace is None:
            return custom.list_cluster_custom_object, (GROUP, VERSION, plural), {}
        return custom.list_namespaced_custom_object, (GROUP, VERSION, namespace, plural), {}

    def list_page(
        self, plural: str, namespace: str | None, pod_label: str | None = None
    ) -> ListPage:
        fn, args, selector = self._list_call(plural, namespace, pod_label)

        def page(**kwargs: Any) -> dict[str, Any]:
            return self._json(fn, *args, **selector, **kwargs)

        return page

    def _open_watch(self, plural: str, namespace: str | None, pod_label: str | None) -> OpenWatch:
        fn, args, selector = self._list_call(plural, namespace, pod_label, watch=True)

        def open_watch(resource_version: str) -> Stream:
            # Not through the in-flight bound: a watch is open for minutes.
            try:
                response = fn(
                    *args,
                    **selector,
                    watch=True,
                    resource_version=resource_version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=WATCH_SECONDS,
                    _preload_content=False,
                    _request_timeout=READ_TIMEOUT_SECONDS,
                )
            except ApiException as error:
                if error.status == 410:
                    raise Gone(api_message(error)) from None
                raise
            return response  # type: ignore[no-any-return]

        return open_watch

    def store(self, plural: str) -> Store:
        return self.flowruns if plural == "flowruns" else self.deployments

    def patch_status(
        self,
        plural: str,
        namespace: str,
        name: str,
        status: dict[str, Any],
        resource_version: str | None = None,
    ) -> None:
        """Merge `status` in; with `resource_version`, only over that very copy (else Conflict)."""
        body: dict[str, Any] = {"status": status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        try:
            patched = self._call(
                self.custom.patch_namespaced_custom_object_status,
                GROUP,
                VERSION,
                namespace,
                plural,
                name,
                body,
                _content_type=MERGE_PATCH,
            )
        except ApiException as error:
            if error.status == 404:  # deleted meanwhile: nothing left to report to
                return
            if error.status == 409:
                fresh = self.get_custom(plural, namespace, name)
                if fresh is not None:
                    self.store(plural).put(fresh)
                raise Conflict(f"{plural} {namespace}/{name} changed meanwhile") from None
            raise
        self.store(plural).put(patched)

    def list_custom(self, plural: str, namespace: str) -> list[dict[str, Any]]:
        listed = self._call(
            self.custom.list_namespaced_custom_object, GROUP, VERSION, namespace, plural
        )
        return list(listed.get("items") or [])

    def create_custom(self, plural: str, namespace: str, body: dict[str, Any]) -> bool:
        """Create; False if one of that name exists already (how schedules avoid duplicates)."""
        try:
            created = self._call(
                self.custom.create_namespaced_custom_object, GROUP, VERSION, namespace, plural, body
            )
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        self.store(plural).put(created)
        return True

    def patch_custom(self, plural: str, namespace: str, name: str, patch: dict[str, Any]) -> None:
        try:
            patched = self._call(
                self.custom.patch_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                plural,
                name,
                patch,
            )
        except ApiException as error:
            if error.status != 404:
                raise
        else:
            self.store(plural).put(patched)

    def delete_custom(self, plural: str, namespace: str, name: str) -> None:
        self._call_allowing(
            404,
            self.custom.delete_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
        )

    # -- pods -----------------------------------------------------------------------------
    def get_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._json(self.core.read_namespaced_pod, name, namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def create_pod(self, namespace: str, pod: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create, or adopt the pod of that name if it exists: (pod, created?)."""
        try:
            created = self._json(self.core.create_namespaced_pod, namespace, pod)
        except ApiException as error:
            if error.status != 409:
                raise
        else:
            self.pods.put(created)
            return created, True
        existing = self.get_pod(namespace, pod["metadata"]["name"])
        if existing is None:
            raise RuntimeError(f"pod {pod['metadata']['name']} conflicts but cannot be read")
        self.pods.put(existing)
        return existing, False

    def delete_pod(self, namespace: str, name: str, grace_seconds: int | None) -> None:
        self._call_allowing(
            404,
            self.core.delete_namespaced_pod,
            name,
            namespace,
            grace_period_seconds=grace_seconds,
            propagation_policy="Background",
        )

    # -- a run's Dask cluster: Services, and dask-kubernetes' resources ------------------------
    def create_dask_resource(self, plural: str, namespace: str, body: dict[str, Any]) -> None:
        """Create a DaskCluster or DaskWorkerGroup, or keep the one of that name."""
        group, version = body["apiVersion"].split("/")
        self._call_allowing(
            409,
            self.custom.create_namespaced_custom_object,
            group,
            version,
            namespace,
            plural,
            body,
        )

    def delete_dask_resource(self, plural: str, namespace: str, name: str) -> None:
        self._call_allowing(
            404,
            self.custom.delete_namespaced_custom_object,
            "kubernetes.dask.org",
            "v1",
            namespace,
            plural,
            name,
        )

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """Pods by label, read from the API server: pods another operator makes are not in
        the cache, which holds only the pods Headrace labels."""
        listed = self._json(self.core.list_namespaced_pod, namespace, label_selector=selector)
        return list(listed.get("items") or [])

    def create_service(self, namespace: str, service: dict[str, Any]) -> None:
        """Create, or keep the Service of that name if it exists (the caller checks owners)."""
        self._call_allowing(409, self.core.create_namespaced_service, namespace, service)

    def delete_service(self, namespace: str, name: str) -> None:
        self._call_allowing(404, self.core.delete_namespaced_service, name, namespace)

    def remove_finalizer(self, pod: dict[str, Any], finalizer: str) -> None:
        """Drop one finalizer (a JSON patch guarded by a test, so others' edits are kept)."""
        finalizers = pod["metadata"].get("finalizers") or []
        if finalizer not in finalizers:
            return
        index = finalizers.index(finalizer)
        patch = [
            {"op": "test", "path": f"/metadata/finalizers/{index}", "value": finalizer},
            {"op": "remove", "path": f"/metadata/finalizers/{index}"},
        ]
        try:
            patched = self._json(
                self.core.patch_namespaced_pod,
                pod["metadata"]["name"],
                pod["metadata"]["namespace"],
                patch,
                _content_type="application/json-patch+json",
            )
        except ApiException as error:
            if error.status not in (404, 409, 422):
                raise
        else:
            self.pods.put(patched)

    # -- events ---------------------------------------------------------------------------
    def event(self, obj: dict[str, Any], kind: str, reason: str, message: str) -> None:
        """A Kubernetes Event on the object, what `kubectl describe` shows; posted by the
        event thread (controller/events.py), so no reconcile waits for it."""
        self.events.send(build_event(obj, kind, reason, message, now_iso()))

    def _post_event(self, body: dict[str, Any]) -> None:
        namespace = body["metadata"]["namespace"]
        try:
            # Its answer read to the end, so the connection goes back to the pool: one left
            # unread is closed, and every event then cost a TLS handshake.
            self._json(self.core.create_namespaced_event, namespace, body)
        except ApiException as error:
            logger.warning(
                "could not record event %s on %s: %s",
                body["reason"],
                body["involvedObject"]["name"],
                error.reason,
            )
