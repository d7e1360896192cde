"""`Block`: Prefect 2's base of configuration blocks, loaded from environment variables.

A block is a pydantic model. `load(name)` reads `HEADRACE_BLOCK_<TYPE>__<NAME>`: the block's
fields as a JSON object, or for a block of one `value` field (Secret, String, JSON, DateTime)
the value itself. Like Prefect's, `load` gives a coroutine in async code. There is no store
to `save` to: the value comes from the pod's spec.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, ClassVar, Self, cast

from pydantic import BaseModel, ConfigDict, ValidationError

from headrace.engine.context import wants_coroutine
from headrace.exceptions import NotSupported
from headrace.settings import block_env_name

_NAME = re.compile(r"[a-z0-9-]+")


class Block(BaseModel):
    """Subclass it with fields, as in Prefect 2; `MyBlock.load("name")` reads them from
    `HEADRACE_BLOCK_MYBLOCK__NAME`, a JSON object."""

    # pydantic v1 (Prefect 2's) made numbers text for a `str` field; blocks' values are text
    # from the environment or literals in code written for it.
    model_config = ConfigDict(coerce_numbers_to_str=True)

    _block_type_name: ClassVar[str | None] = None
    _block_type_slug: ClassVar[str | None] = None

    @classmethod
    def get_block_type_name(cls) -> str:
        return _class_setting(cls, "_block_type_name") or cls.__name__

    @classmethod
    def get_block_type_slug(cls) -> str:
        """As Prefect's: the type name in lowercase, runs of other characters as one dash
        (`DateTime`'s type name "Date Time" gives `date-time`, `MyCreds` gives `mycreds`)."""
        slug = _class_setting(cls, "_block_type_slug") or cls.get_block_type_name()
        return re.sub(r"[^a-z0-9]+", "-", slug.lower()).strip("-")

    @classmethod
    def load(cls, name: str, validate: bool = True, *, _sync: bool | None = None) -> Self:
        """The block `name` (on `Block` itself: `"type-slug/name"`), from its variable.

        A `ValueError` names the variable to set when it is unset, and the fields when its
        value does not fit them, never the value (it may be a secret). `validate=False`
        takes the fields as they are, as Prefect's does. `_sync=True` gives the block even in
        async code, as Prefect 2.16 on."""
        if wants_coroutine(_sync):  # Prefect's `load` is sync-compatible: errors come on `await`
            return cast("Self", cls._read_later(name, validate))
        return cls._read(name, validate)

    @classmethod
    async def _read_later(cls, name: str, validate: bool) -> Self:
        return cls._read(name, validate)

    def __str__(self) -> str:
        return repr(self)  # as pydantic v1's, which Prefect 2's blocks were

    @classmethod
    def _read(cls, name: str, validate: bool) -> Self:
        if not isinstance(name, str):
            raise TypeError(f"a block's name must be a str, not {type(name).__name__}")
        kind: type[Block] = cls
        if cls is Block:
            slug, _, name = name.rpartition("/")
            kind = _block_type(slug, name)
        slug = kind.get_block_type_slug()
        if not _NAME.fullmatch(name):
            raise ValueError(
                f"Unable to find block document named {name} for block type {slug}: "
                "block names are lowercase letters, numbers and dashes"
            )
        variable = block_env_name(slug, name)
        text = os.environ.get(variable)
        if text is None:
            raise ValueError(
                f"Unable to find block document named {name} for block type {slug}: set "
                f"{variable} (in a FlowRun or Deployment: pod.env, with valueFrom.secretKeyRef "
                "for a secret)"
            )
        try:
            fields = kind._fields_from(text)
        except ValueError as error:
            raise ValueError(f"{variable} is not {kind._expects}: {error}") from None
        if not validate:
            return cast("Self", kind.model_construct(**fields))
        try:
            return cast("Self", kind.model_validate(fields))
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in problem['loc']) or 'value'}: {problem['msg']}"
                for problem in error.errors(include_url=False, include_input=False)
            )
            raise ValueError(f"{variable} does not fit block {kind.__name__}: {problems}") from None

    _expects: ClassVar[str] = "a JSON object of the block's fields"

    @classmethod
    def _fields_from(cls, text: str) -> dict[str, Any]:
        """The fields in a variable's text: a JSON object, unless the block says otherwise."""
        fields = json.loads(text)
        if not isinstance(fields, dict):
            raise ValueError(f"it holds a JSON {type(fields).__name__}")
        return fields

    def save(self, name: str | None = None, overwrite: bool = False) -> Any:
        raise NotSupported(_NO_STORE.format(f"{type(self).__name__}.save"))

    @classmethod
    def delete(cls, name: str) -> Any:
        raise NotSupported(_NO_STORE.format(f"{cls.__name__}.delete"))


_NO_STORE = (
    "{} is Prefect 2's, not Headrace's: blocks are read from HEADRACE_BLOCK_<TYPE>__<NAME> "
    "variables, set in a FlowRun's pod.env (from a Secret) or your shell; there is no block "
    "store to write to"
)


def _class_setting(cls: type[Block], name: str) -> str | None:
    """A class-level `_block_type_*`, whether written plainly (a class attribute) or with an
    annotation (pydantic then makes it a private attribute with that default)."""
    private = cls.__private_attributes__.get(name)
    if private is not None:
        return cast("str | None", private.default)
    return cast("str | None", getattr(cls, name))


def _block_type(slug: str, name: str) -> type[Block]:
    """The block class `Block.load("slug/name")` asks for, among those defined so far."""
    if not slug:
        raise ValueError(
            f"Block.load({name!r}) needs the block type too, as 'type-slug/{name}' "
            "(or call load on the block's own class)"
        )
    pending: list[type[Block]] = [Block]
    while pending:
        kind = pending.pop()
        if kind is not Block and kind.get_block_type_slug() == slug:
            return kind
        pending.extend(kind.__subclasses__())
    raise ValueError(f"no block type {slug!r} is defined (import its class first)")
