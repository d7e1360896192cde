"""The kubelet's HTTPS endpoint for ``kubectl logs``.

The apiserver proxies ``pods/log`` to ``https://<node InternalIP>:<kubeletEndpoint
port>/containerLogs/{namespace}/{pod}/{container}``, authenticating with its
kubelet client certificate and verifying ours against the test CA.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from cluster.containers import ContainerRun, read_log_lines

log = logging.getLogger("kubelet.logs")
# (namespace, pod, container) -> the container, or None if unknown
Lookup = Callable[[str, str, str], ContainerRun | None]


def _parse_time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _cri_time(stamp: str) -> float:
    # CRI stamps carry 9 fractional digits; datetime wants at most 6.
    head, _, frac = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(head).replace(tzinfo=UTC).timestamp() + float(f"0.{frac or 0}")


class _Handler(BaseHTTPRequestHandler):
    server: _LogServer

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _error(self, code: int, message: str) -> None:
        body = message.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        if parts == ["healthz"]:
            self._error(200, "ok")
            return
        if len(parts) != 4 or parts[0] != "containerLogs":
            self._error(404, f"not found: {url.path}")
            return
        _, namespace, pod, container = parts
        run = self.server.lookup(namespace, pod, container)
        if run is None:
            self._error(404, f'container "{container}" in pod "{pod}" not found on this node')
            return
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self._serve(run, query)

    def _serve(self, run: ContainerRun, query: dict[str, str]) -> None:
        previous = query.get("previous") == "true"
        if previous and run.restart_count == 0:
            self._error(400, f'previous terminated container "{run.name}" not found')
            return
        path = run.log_path(run.restart_count - 1 if previous else None)
        follow = query.get("follow") == "true" and not previous
        timestamps = query.get("timestamps") == "true"
        since = None
        if "sinceSeconds" in query:
            since = time.time() - int(query["sinceSeconds"])
        elif "sinceTime" in query:
            since = _parse_time(query["sinceTime"])
        limit = int(query["limitBytes"]) if "limitBytes" in query else None
        entries = read_log_lines(path)
        seen = len(entries)
        if since is not None:
            entries = [e for e in entries if _cri_time(e[0]) >= since]
        if "tailLines" in query:
            tail = int(query["tailLines"])
            entries = entries[-tail:] if tail > 0 else []
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.end_headers()
        sent = 0

        def emit(batch: list[tuple[str, str, bytes]]) -> bool:
            nonlocal sent
            for stamp, _stream, content in batch:
                line = (f"{stamp} ".encode() if timestamps else b"") + content + b"\n"
                if limit is not None and sent + len(line) > limit:
                    self.wfile.write(line[: limit - sent])
                    return False
                self.wfile.write(line)
                sent += len(line)
            self.wfile.flush()
            return True

        if not emit(entries) or not follow:
            return
        current = run.restart_count
        while True:
            # Follow this attempt (waiting for it to start if need be) until it ends.
            still_running = (
                not run.closed
                and run.restart_count == current
                and (run.running or not run.attempted)
            )
            time.sleep(0.2)
            entries = read_log_lines(path)
            if not emit(entries[seen:]):
                return
            seen = len(entries)
            if not still_running:
                return


class _LogServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], lookup: Lookup, context: ssl.SSLContext) -> None:
        super().__init__(address, _Handler)
        self.lookup = lookup
        self.context = context

    def get_request(self):  # type: ignore[no-untyped-def]
        sock, addr = super().get_request()
        # Handshake in the handler thread, not in the accept loop.
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def finish_request(self, request, client_address):  # type: ignore[no-untyped-def]
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake with %s failed: %s", client_address, exc)
            return
        super().finish_request(request, client_address)


def serve(
    port: int, cert: Path, key: Path, client_ca: Path | None, lookup: Lookup
) -> ThreadingHTTPServer:
    """Start the HTTPS log server on 127.0.0.1:``port`` in a daemon thread."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    if client_ca is not None:
        context.load_verify_locations(str(client_ca))
        context.verify_mode = ssl.CERT_REQUIRED  # only the apiserver may read logs
    server = _LogServer(("127.0.0.1", port), lookup, context)
    threading.Thread(target=server.serve_forever, name="log-server", daemon=True).start()
    return server
