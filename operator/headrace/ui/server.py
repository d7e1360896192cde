"""The web UI's server: the built front end plus a small JSON API over FlowRuns and records.

Everything the page shows comes from two places the operator already writes: the FlowRun's
status (read with the kubernetes client) and the run record (read with `headrace.records`).
Result files are served only for locations named by a record or a FlowRun status, so the
server never becomes a way to read arbitrary files.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from headrace import settings, states
from headrace.records.reader import LOST_AFTER, find_record
from headrace.sources import FlowRunSource, flowrun_summary, load_kube_client, local_runs
from headrace.ui.auth import KubeAuth, Unauthenticated, bearer
from headrace.ui.graph import graph_delta, graph_payload
from headrace.ui.records import RecordCache, result_body, result_info

STATIC = Path(__file__).parent / "static"
MAX_ARTIFACTS_LISTED = 1000  # the newest; the page lists them, and asks for one by id
_dumps = functools.partial(json.dumps, separators=(",", ":"), default=str)

KUBE: web.AppKey[FlowRunSource | None] = web.AppKey("kube", FlowRunSource)
AUTH: web.AppKey[KubeAuth | None] = web.AppKey("auth", KubeAuth)
RECORDS: web.AppKey[RecordCache] = web.AppKey("records", RecordCache)
NAMESPACE: web.AppKey[str | None] = web.AppKey("namespace", str)


@dataclass
class Run:
    """One run the API was asked about: its FlowRun (if any) and where its record is."""

    record: str | None
    result: str | None
    flowrun: dict[str, Any] | None = None


def _json(data: Any, request: web.Request | None = None, tag: str | None = None) -> web.Response:
    response = web.Response(text=_dumps(data), content_type="application/json")
    if tag is not None:
        response.headers["ETag"] = tag
        response.headers["Cache-Control"] = "no-cache"
    if request is not None and len(response.text or "") > 8192:
        response.enable_compression()
    return response


async def _thread(fn: Any, *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


async def resolve(request: web.Request) -> Run:
    """The run named by the URL: `/api/flowruns/NS/NAME/...` or `/api/local/ID/...`."""
    info = request.match_info
    if "run_id" in info:
        try:
            url = find_record(info["run_id"])
        except FileNotFoundError as error:
            raise web.HTTPNotFound(text=str(error)) from error
        return Run(url, None)
    kube = request.app[KUBE]
    if kube is None:
        raise web.HTTPServiceUnavailable(text="no Kubernetes configuration: set KUBECONFIG")
    obj = await _thread(kube.get, info["namespace"], info["name"])
    if obj is None:
        raise web.HTTPNotFound(text=f"FlowRun {info['namespace']}/{info['name']} not found")
    status = obj.get("status") or {}
    return Run(status.get("recordLocation"), status.get("resultLocation"), obj)


@web.middleware
async def authorize(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """With `--auth kubernetes`, the API answers only a caller with a Kubernetes identity
    (401 otherwise), and only about namespaces it may list FlowRuns in (403 otherwise). The
    page and its assets carry no data and stay open, so the page can ask for a token."""
    auth = request.app[AUTH]
    path = request.path
    if auth is None or not path.startswith("/api/") or path == "/api/config":
        return await handler(request)
    token = bearer(request.headers, request.cookies)
    try:
        await _thread(auth.identity, token)
    except Unauthenticated as error:
        return web.json_response(
            {"error": str(error)}, status=401, headers={"WWW-Authenticate": "Bearer"}
        )
    if path.startswith("/api/local"):
        return web.json_response(
            {"error": "local runs are not served with --auth: they are this machine's files"},
            status=403,
        )
    namespace = request.match_info.get("namespace") or request.query.get("namespace")
    if namespace and not await _thread(auth.may_list, token, namespace):
        return web.json_response(
            {"error": f"this token may not list FlowRuns in namespace {namespace}"}, status=403
        )
    request["token"] = token
    return await handler(request)


async def index(request: web.Request) -> web.StreamResponse:
    page = STATIC / "index.html"
    if not page.exists():
        return web.Response(
            status=500, text="the UI is not built: run `npm ci && npm run build` in ui/"
        )
    return web.FileResponse(page, headers={"Cache-Control": "no-cache"})


def state_vocabulary() -> list[tuple[str, str]]:
    """Every state name headrace/states.py makes, with its type: the page's state names and
    chips come from here, so there is no second list of them in the front end."""
    found: dict[str, str] = {}
    for name, make in vars(states).items():
        # Any callable but a class: a factory need not be a Python function (a compiled
        # states.py has none), and a class is no factory.
        if name[:1].isupper() and callable(make) and not isinstance(make, type):
            with contextlib.suppress(TypeError):  # needs arguments: not a state factory
                state = make()
                if isinstance(state, states.State):
                    found.setdefault(state.name, state.type.value)
    return list(found.items())


async def api_config(request: web.Request) -> web.Response:
    return _json(
        {
            "kube": request.app[KUBE] is not None,
            "namespace": request.app[NAMESPACE],
            "records": None if request.app[AUTH] else settings.current().record_storage,
            "states": state_vocabulary(),
            "lostAfter": LOST_AFTER,
            "auth": request.app[AUTH] is not None,
        }
    )


async def api_flowruns(request: web.Request) -> web.Response:
    """Run history: every FlowRun, newest first, filtered and paged on the server."""
    kube = request.app[KUBE]
    if kube is None:
        return _json({"items": [], "total": 0, "deployments": [], "states": [], "kube": False})
    query = request.query
    namespace = query.get("namespace") or request.app[NAMESPACE]
    auth = request.app[AUTH]
    if auth is not None and not namespace:
        # Every namespace the caller may read, and only those.
        readable = await _thread(auth.readable_namespaces, request["token"])
        if readable is None:
            objs = await _thread(kube.list, None)
        else:
            lists = await asyncio.gather(*(_thread(kube.list, ns) for ns in readable))
            objs = [obj for found in lists for obj in found]
    elif auth is not None and not await _thread(auth.may_list, request["token"], namespace):
        return web.json_response(
            {"error": f"this token may not list FlowRuns in namespace {namespace}"}, status=403
        )
    else:
        objs = await _thread(kube.list, namespace)
    runs = [flowrun_summary(obj) for obj in objs]
    runs.sort(key=lambda r: (r["created"] or "", r["name"] or ""), reverse=True)
    deployments = sorted({r["deployment"] for r in runs if r["deployment"]})
    states = sorted({r["state"] for r in runs})
    if query.get("deployment"):
        runs = [r for r in runs if r["deployment"] == query["deployment"]]
    if query.get("q"):
        runs = [r for r in runs if query["q"].lower() in (r["name"] or "").lower()]
    # Counted before the state filter: the chips show what each state would give.
    state_counts: dict[str, int] = {}
    for r in runs:
        state_counts[r["state"]] = state_counts.get(r["state"], 0) + 1
    if query.get("state"):
        runs = [r for r in runs if r["state"] == query["state"]]
    page_size = max(1, min(500, int(query.get("pageSize", "50"))))
    page = max(0, int(query.get("page", "0")))
    return _json(
        {
            "items": runs[page * page_size : (page + 1) * page_size],
            "total": len(runs),
            "page": page,
            "pageSize": page_size,
            "deployments": deployments,
            "states": states,
            "stateCounts": state_counts,
            "kube": True,
        }
    )


async def api_local_runs(request: web.Request) -> web.Response:
    return _json({"items": await _thread(local_runs)})


async def api_run(request: web.Request) -> web.Response:
    run = await resolve(request)
    body: dict[str, Any] = {"record": run.record, "resultLocation": run.result}
    if run.flowrun is not None:
        obj = run.flowrun
        body["flowrun"] = {
            **flowrun_summary(obj),
            "status": obj.get("status") or {},
            "spec": obj.get("spec") or {},
        }
        body["final"] = (obj.get("status") or {}).get("state") in states.FINAL_STATES
    return _json(body)


async def api_graph(request: web.Request) -> web.Response:
    """The record as columns. A page that has a cursor asks `?since=CURSOR` and gets only the
    task runs changed after it (or a 304), so a live 10,000-task run is not sent every second;
    without one it is polled with If-None-Match, so an idle run costs a 304."""
    run = await resolve(request)
    if run.record is None:
        return _json({"waiting": "the run has no record yet"})
    cache = request.app[RECORDS]
    since = request.query.get("since")
    try:
        if since:
            record, cursor, changed = await _thread(cache.changes, run.record, since)
            if changed is not None:
                if cursor == since:
                    return web.Response(status=304, headers={"X-Now": str(time.time())})
                delta = await _thread(graph_delta, record, changed)
                return _json({**delta, "cursor": cursor, "now": time.time()}, request)
        payload, tag = await _thread(cache.payload, run.record, graph_payload)
    except FileNotFoundError:
        return _json({"waiting": f"no run record at {run.record} yet"})
    etag = '"' + hashlib.sha1(tag.encode()).hexdigest()[:16] + '"'
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag})
    # `now` lets the page judge `lastSeen` by this server's clock, not the browser's.
    body = {**payload, "cursor": tag.rpartition("#")[2], "now": time.time()}
    return _json(body, request, etag)


async def api_logs(request: web.Request) -> web.Response:
    """Log lines of the record after index `after`, optionally of one task's runs only."""
    run = await resolve(request)
    if run.record is None:
        return _json({"total": 0, "lines": []})
    try:
        record, _ = await _thread(request.app[RECORDS].get, run.record)
    except FileNotFoundError:
        return _json({"total": 0, "lines": []})
    after = int(request.query.get("after", "0"))
    task = request.query.get("task") or ""
    lines = record.logs[after:]
    if task:
        lines = [e for e in lines if (e.get("task_run_name") or "").startswith(task)]
    return _json({"total": len(record.logs), "lines": lines[-5000:]}, request)


async def api_artifacts(request: web.Request) -> web.Response:
    """The run's artifacts, newest first, without their content (`?id=` gives one whole):
    a run may make thousands, each up to a megabyte."""
    run = await resolve(request)
    artifacts: list[Any] = []
    if run.record is not None:
        with contextlib.suppress(FileNotFoundError):
            record, _ = await _thread(request.app[RECORDS].get, run.record)
            artifacts = record.artifacts
    wanted = request.query.get("id")
    if wanted is not None:
        found = next((item for item in artifacts if item["id"] == wanted), None)
        if found is None:
            raise web.HTTPNotFound(text=f"no artifact {wanted!r} in the run's record")
        return _json(found, request)
    items = [
        {name: value for name, value in item.items() if name != "data"}
        | {"size": len(item["data"].encode())}
        for item in reversed(artifacts[-MAX_ARTIFACTS_LISTED:])
    ]
    return _json({"total": len(artifacts), "items": items}, request)


async def api_pod_logs(request: web.Request) -> web.Response:
    """Each attempt's container output: what the engine printed outside the record."""
    run = await resolve(request)
    kube = request.app[KUBE]
    if run.flowrun is None or kube is None:
        return _json({"pods": []})
    namespace = run.flowrun["metadata"]["namespace"]
    pods = []
    for attempt in (run.flowrun.get("status") or {}).get("attempts") or []:
        text = await _thread(kube.pod_log, namespace, attempt["podName"])
        pods.append({"attempt": attempt.get("number"), "pod": attempt["podName"], "text": text})
    return _json({"pods": pods}, request)


def _result_locations(run: Run, record: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    flow_result = run.result
    if record is not None:
        with contextlib.suppress(ValueError):
            flow_result = flow_result or record.root["state"].get("result")
    if flow_result:
        rows.append({"id": "flow", "name": "flow result", "key": "", "location": flow_result})
    if record is not None:
        for task in record.task_runs.values():
            location = task["state"].get("result")
            if location:
                rows.append(
                    {
                        "id": task["id"],
                        "name": task["name"],
                        "key": task.get("task_key") or task["name"],
                        "state": task["state"]["name"],
                        "location": location,
                    }
                )
    return rows


async def _results_of(request: web.Request) -> tuple[Run, list[dict[str, Any]]]:
    run = await resolve(request)
    record = None
    if run.record is not None:
        try:
            record, _ = await _thread(request.app[RECORDS].get, run.record)
        except FileNotFoundError:
            record = None
    return run, _result_locations(run, record)


async def api_results(request: web.Request) -> web.Response:
    """A page of result locations, each with its header's type and size and a preview."""
    _, rows = await _results_of(request)
    query = request.query
    if query.get("q"):
        rows = [r for r in rows if query["q"].lower() in r["name"].lower()]
    offset = max(0, int(query.get("offset", "0")))
    limit = max(1, min(500, int(query.get("limit", "100"))))
    page = rows[offset : offset + limit]
    infos = await asyncio.gather(*(_thread(result_info, r["location"]) for r in page))
    items = [{**row, **info} for row, info in zip(page, infos, strict=True)]
    return _json({"total": len(rows), "offset": offset, "items": items}, request)


async def api_result_file(request: web.Request) -> web.Response:
    """The result of one task run (or `flow`), read from wherever the record says it is."""
    _, rows = await _results_of(request)
    wanted = request.query.get("id", "flow")
    row = next((r for r in rows if r["id"] == wanted), None)
    if row is None:
        raise web.HTTPNotFound(text=f"no result recorded for {wanted}")
    try:
        body, kind = await _thread(result_body, row["location"])
    except FileNotFoundError as error:
        raise web.HTTPNotFound(text=f"result file missing: {row['location']}") from error
    return web.Response(body=body, content_type=kind)


def make_app(
    kube: FlowRunSource | None, namespace: str | None = None, auth: KubeAuth | None = None
) -> web.Application:
    """The UI as an aiohttp app, mountable in another app (e.g. the operator's) later."""
    app = web.Application(middlewares=[authorize])
    app[KUBE] = kube
    app[AUTH] = auth
    app[RECORDS] = RecordCache()
    app[NAMESPACE] = namespace
    routes = app.router
    routes.add_get("/", index)
    routes.add_get("/api/config", api_config)
    routes.add_get("/api/flowruns", api_flowruns)
    routes.add_get("/api/local", api_local_runs)
    for prefix in ("/api/flowruns/{namespace}/{name}", "/api/local/{run_id}"):
        routes.add_get(prefix, api_run)
        routes.add_get(prefix + "/graph", api_graph)
        routes.add_get(prefix + "/logs", api_logs)
        routes.add_get(prefix + "/podlogs", api_pod_logs)
        routes.add_get(prefix + "/artifacts", api_artifacts)
        routes.add_get(prefix + "/results", api_results)
        routes.add_get(prefix + "/results/file", api_result_file)
    if (STATIC / "assets").is_dir():
        routes.add_static("/assets", STATIC / "assets")
    return app


async def _serve(app: web.Application, host: str, port: int) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    print(f"Headrace UI on http://{host}:{bound}/", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def run_ui(host: str, port: int, namespace: str | None, auth: str = "none") -> int:
    """`headrace ui`: serve until interrupted. Port 0 picks a free port (printed). With
    `auth="kubernetes"` every API call needs the caller's own token (see ui/auth.py)."""
    api_client = load_kube_client()
    if api_client is None:
        if auth == "kubernetes":
            print(
                "headrace ui: --auth kubernetes needs a Kubernetes configuration", file=sys.stderr
            )
            return 2
        print("headrace ui: no Kubernetes configuration; showing local runs only", file=sys.stderr)
    kube = FlowRunSource(api_client) if api_client is not None else None
    checker = KubeAuth(api_client) if auth == "kubernetes" and api_client is not None else None
    app = make_app(kube, namespace, checker)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(app, host, port))
    return 0


__all__ = ["make_app", "run_ui"]
