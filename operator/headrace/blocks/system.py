"""Prefect 2's system blocks: a `Secret`, a `String`, a `JSON` value and a `DateTime`.

Each is loaded from its variable's text as it is (`HEADRACE_BLOCK_SECRET__DB_PASSWORD` holds the
password itself); a `JSON` block's variable holds JSON.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, ClassVar

from pydantic import Field, SecretStr

from headrace.blocks.core import Block


class _OneValue(Block):
    _expects: ClassVar[str] = "a value"

    @classmethod
    def _fields_from(cls, text: str) -> dict[str, Any]:
        return {"value": text}


class Secret(_OneValue):
    """A secret text: shown as `**********`; `get()` gives it."""

    value: SecretStr = Field(description="A string value that should be kept secret.")

    def get(self) -> str:
        return self.value.get_secret_value()


class String(_OneValue):
    value: str = Field(description="A string value.")


class DateTime(_OneValue):
    """An ISO 8601 time (a `datetime`; Prefect's is pendulum's)."""

    _block_type_name: ClassVar[str | None] = "Date Time"
    value: dt.datetime = Field(description="An ISO 8601-compatible datetime value.")


class JSON(Block):
    """Any JSON value; its variable holds JSON text."""

    _expects: ClassVar[str] = "JSON"
    value: Any = Field(description="A JSON-compatible value.")

    @classmethod
    def _fields_from(cls, text: str) -> dict[str, Any]:
        return {"value": json.loads(text)}


__all__ = ["JSON", "DateTime", "Secret", "String"]
