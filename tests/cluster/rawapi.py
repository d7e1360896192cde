"""JSON-in, JSON-out access to the Kubernetes API through the ``kubernetes`` client.

The throughput benchmark works on plain dicts (pod specs, merge patches, watch lines)
rather than generated models: it is faster, and immune to model validation
quirks between client and server versions. Auth, TLS and connection pooling still
come from the project's ``kubernetes`` client.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

JSON = dict[str, Any]
MERGE_PATCH = "application/merge-patch+json"


class RawApi:
    """Minimal REST helper on top of an :class:`kubernetes.client.ApiClient`."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.api_client = api_client

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | tuple[float, float] | None = 30,
    ) -> Any:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        params = [(k, v) for k, v in (query or {}).items() if v is not None]
        request = self.api_client.param_serialize(
            method=method,
            resource_path=path,
            query_params=params,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api_client.call_api(*request, _request_timeout=timeout)
        if not 200 <= response.status <= 299:
            response.read()  # type: ignore[no-untyped-call]
            raise ApiException.from_response(http_resp=response, body=None, data=None)
        return response

    def request(self, method: str, path: str, **kwargs: Any) -> JSON:
        """Perform a request and decode the JSON answer; raises ApiException on non-2xx."""
        response = self._call(method, path, **kwargs)
        data = response.read()
        return json.loads(data) if data else {}

    def get(self, path: str, **query: Any) -> JSON:
        return self.request("GET", path, query=query)

    def post(self, path: str, body: JSON) -> JSON:
        return self.request("POST", path, body=body)

    def merge_patch(self, path: str, body: JSON) -> JSON:
        return self.request("PATCH", path, body=body, content_type=MERGE_PATCH)

    def delete(self, path: str, body: JSON | None = None) -> JSON:
        return self.request("DELETE", path, body=body)

    def watch(self, path: str, timeout_seconds: int = 300, **query: Any) -> Iterator[JSON]:
        """Yield watch events (``{"type", "object"}``) until the server ends the stream."""
        query = {"watch": "true", "timeoutSeconds": timeout_seconds, **query}
        response = self._call("GET", path, query=query, timeout=(10, timeout_seconds + 30))
        raw = response.response
        try:
            buffer = b""
            for chunk in raw.stream(amt=65536, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        finally:
            raw.release_conn()


def status_code(exc: BaseException) -> int | None:
    """HTTP status of an ApiException (None for other errors)."""
    return getattr(exc, "status", None) if isinstance(exc, ApiException) else None
