"""Serializers turn results into bytes; each names itself so a stored result says how to load it."""

from __future__ import annotations

import json
import pickle
from typing import Any, Protocol

from headrace.results.deep import call_deep


class Serializer(Protocol):
    name: str
    extension: str

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class JSONSerializer:
    """Readable results for JSON-able values; the UI previews these."""

    name = "json"
    extension = "json"

    def dumps(self, value: Any) -> bytes:
        return call_deep(json.dumps, value, separators=(",", ":")).encode()

    def loads(self, data: bytes) -> Any:
        return call_deep(json.loads, data)


class PickleSerializer:
    """Any picklable value; the default, because task results are arbitrary Python objects."""

    name = "pickle"
    extension = "pickle"

    def dumps(self, value: Any) -> bytes:
        return call_deep(pickle.dumps, value, protocol=pickle.HIGHEST_PROTOCOL)

    def loads(self, data: bytes) -> Any:
        return call_deep(pickle.loads, data)


_SERIALIZERS: dict[str, Serializer] = {"json": JSONSerializer(), "pickle": PickleSerializer()}


def get_serializer(serializer: str | Serializer) -> Serializer:
    if not isinstance(serializer, str):
        return serializer
    try:
        return _SERIALIZERS[serializer]
    except KeyError:
        known = ", ".join(sorted(_SERIALIZERS))
        raise ValueError(
            f"result_serializer={serializer!r} is not known; use one of: {known}"
        ) from None


class AutoSerializer:
    """JSON when the value survives a JSON round trip unchanged, else pickle.

    Readable results where possible (the results view previews JSON), any object otherwise.
    """

    name = "auto"
    extension = "result"

    def __init__(self) -> None:
        self._json = JSONSerializer()
        self._pickle = PickleSerializer()

    def choose(self, value: Any) -> Serializer:
        try:
            if call_deep(self._round_trips, value):
                return self._json
        except (TypeError, ValueError, OverflowError):
            pass
        return self._pickle

    def _round_trips(self, value: Any) -> bool:
        # Comparing values nested deeper than the recursion limit recurses too: run it deep.
        return bool(self._json.loads(self._json.dumps(value)) == value)

    def dumps(self, value: Any) -> bytes:
        return self.choose(value).dumps(value)

    def loads(self, data: bytes) -> Any:  # never used: the header names the real serializer
        raise NotImplementedError


_SERIALIZERS["auto"] = AutoSerializer()
