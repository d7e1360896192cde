"""Result files: one JSON header line (serializer, type, expiry) then the serialized bytes.

The header lets anyone holding only a URI load the value, preview it or see that a cached
result has expired, without knowing which task wrote it. Local paths skip fsspec: writing one
small file is most of a persisted task's overhead.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from headrace.results.serializers import Serializer, get_serializer

_MAGIC = "headrace-result"


def local_path(url: str) -> Path | None:
    if url.startswith("file://"):
        return Path(unquote(urlparse(url).path))
    if "://" not in url:
        return Path(url).expanduser().absolute()
    return None


def _join(base: str, key: str) -> str:
    return base.rstrip("/") + "/" + key


# The slugs of Prefect's file system blocks: `result_storage="local-file-system/dev"` names a
# saved block (headrace.filesystems), not a relative path.
STORAGE_BLOCK_SLUGS = ("local-file-system", "remote-file-system")


def names_a_storage_block(value: str) -> bool:
    return value.partition("/")[0] in STORAGE_BLOCK_SLUGS and "/" in value


def normalize_url(url: str) -> str:
    """Plain paths become file:// URLs so every recorded location is a URI."""
    path = local_path(url)
    return path.as_uri() if path is not None else url.rstrip("/")


@contextlib.contextmanager
def _refusals_named(url: str) -> Iterator[None]:
    """Say which URL was refused and where credentials come from: S3 often says "Forbidden"."""
    try:
        yield
    except PermissionError as error:
        raise PermissionError(
            f"access to {url} refused ({error}); credentials come from the environment"
            " (for s3://: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL_S3)"
        ) from error


def write_bytes(url: str, data: bytes) -> None:
    path = local_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        return
    import fsspec  # noqa: PLC0415 (remote URLs only: a local run never pays its import)

    with _refusals_named(url), fsspec.open(url, "wb") as handle:
        handle.write(data)


def read_bytes(url: str) -> bytes:
    path = local_path(url)
    if path is not None:
        return path.read_bytes()
    import fsspec  # noqa: PLC0415 (remote URLs only: a local run never pays its import)

    with _refusals_named(url), fsspec.open(url, "rb") as handle:
        data: bytes = handle.read()
        return data


def exists(url: str) -> bool:
    path = local_path(url)
    if path is not None:
        return path.exists()
    import fsspec  # noqa: PLC0415 (remote URLs only: a local run never pays its import)

    with _refusals_named(url):
        fs, fs_path = fsspec.core.url_to_fs(url)
        return bool(fs.exists(fs_path))


def _type_name(value: Any) -> str:
    kind = type(value)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


def encode(value: Any, serializer: Serializer, expires: float | None = None) -> bytes:
    choose = getattr(serializer, "choose", None)
    if choose is not None:
        serializer = choose(value)
    payload = serializer.dumps(value)
    header = {
        _MAGIC: 1,
        "serializer": serializer.name,
        "type": _type_name(value),
        "size": len(payload),
        "expires": expires,
        "created": time.time(),
    }
    return json.dumps(header).encode() + b"\n" + payload


def decode(data: bytes) -> tuple[dict[str, Any], Any]:
    newline = data.index(b"\n")
    header = json.loads(data[:newline])
    if header.get(_MAGIC) != 1:
        raise ValueError("not a Headrace result file (header line missing)")
    value = get_serializer(header["serializer"]).loads(data[newline + 1 :])
    return header, value


def read_header(url: str) -> dict[str, Any]:
    data = read_bytes(url)
    header: dict[str, Any] = json.loads(data[: data.index(b"\n")])
    return header


def load_result(url: str) -> Any:
    """Load a persisted result from its URI."""
    return decode(read_bytes(url))[1]


class ResultStore:
    """Writes results under one base URL with one serializer."""

    def __init__(self, base_url: str, serializer: str | Serializer = "auto") -> None:
        self.base_url = normalize_url(base_url)
        self.serializer = get_serializer(serializer)

    def write(self, value: Any, key: str, expires: float | None = None) -> str:
        url = _join(self.base_url, key)
        write_bytes(url, encode(value, self.serializer, expires))
        return url

    def result_key(self, flow_run_id: str, name: str) -> str:
        return f"{flow_run_id}/{name}.{self.serializer.extension}"

    def cached(self, cache_key: str) -> str | None:
        """The URI of a live cached result for `cache_key`, or None."""
        url = _join(self.base_url, f"cache/{cache_key}")
        try:
            header = read_header(url)
        except (FileNotFoundError, ValueError):
            return None
        expires = header.get("expires")
        if expires is not None and expires < time.time():
            return None
        return url

    def cache_key_path(self, cache_key: str) -> str:
        return f"cache/{cache_key}"
