"""Prefect 2's file system blocks, as `result_storage`: `LocalFileSystem(basepath=...)`,
`RemoteFileSystem(basepath="s3://...")`, or a saved one by its slug, `"local-file-system/dev"`.

Headrace's result storage is an fsspec URL; each block stands for its `basepath` as one. A
saved block is read from its variable like any other (`HEADRACE_BLOCK_LOCAL_FILE_SYSTEM__DEV`,
`{"basepath": "/data/results"}`), when the run first stores a result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import Field

from headrace.blocks.core import Block
from headrace.exceptions import NotSupported
from headrace.results.store import names_a_storage_block, normalize_url


@runtime_checkable
class StorageBlock(Protocol):
    """What `result_storage` takes besides a URL: a block that names one."""

    def storage_url(self) -> str: ...


class LocalFileSystem(Block):
    """Results in a directory of this machine (or of the pod: keep it on a volume)."""

    _block_type_name = "Local File System"
    basepath: str | None = Field(default=None, description="Default local path for this block.")

    def storage_url(self) -> str:
        return normalize_url(str(Path(self.basepath or ".").expanduser().resolve()))


class RemoteFileSystem(Block):
    """Results under an fsspec URL (`s3://bucket/prefix`, `gs://...`)."""

    _block_type_name = "Remote File System"
    basepath: str = Field(description="Default path for this block to write to.")
    settings: dict[str, Any] = Field(default_factory=dict)

    def storage_url(self) -> str:
        if self.settings:
            raise NotSupported(
                "RemoteFileSystem(settings=...): Headrace's storage takes its credentials from "
                "the environment (AWS_ACCESS_KEY_ID, ...; on a cluster, resultStorageSecret), "
                "so give the basepath alone"
            )
        return normalize_url(self.basepath)


def storage_url(value: str | StorageBlock) -> str:
    """The URL a `result_storage` names; a saved block's slug is loaded now."""
    if isinstance(value, str):
        if not names_a_storage_block(value):
            return value
        block = Block.load(value, _sync=True)
        if not isinstance(block, StorageBlock):  # a subclass of the user's with that slug
            raise TypeError(f"result_storage {value!r} is a {type(block).__name__}, no storage")
        return block.storage_url()
    return value.storage_url()


__all__ = ["LocalFileSystem", "RemoteFileSystem", "StorageBlock", "storage_url"]
