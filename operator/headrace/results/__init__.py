"""Persisting run results to any fsspec URL, and reading them back."""

from headrace.results.serializers import (
    JSONSerializer,
    PickleSerializer,
    Serializer,
    get_serializer,
)
from headrace.results.store import ResultStore, load_result

__all__ = [
    "JSONSerializer",
    "PickleSerializer",
    "ResultStore",
    "Serializer",
    "get_serializer",
    "load_result",
]
