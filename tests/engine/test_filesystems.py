"""Prefect 2's file system blocks as `result_storage`, observed under Prefect 2.14.21 with the
same flow: a result lands under the block's basepath, for an instance and for a saved block
named by its slug."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from headrace import flow, task
from headrace.exceptions import NotSupported
from headrace.filesystems import LocalFileSystem, RemoteFileSystem


def files(directory: Path) -> list[Path]:
    return [path for path in directory.rglob("*") if path.is_file()]


def test_a_block_or_a_saved_blocks_slug_is_where_results_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local, saved, remote, flows = (tmp_path / name for name in ("local", "saved", "remote", "f"))
    monkeypatch.setenv(
        "HEADRACE_BLOCK_LOCAL_FILE_SYSTEM__DEV", json.dumps({"basepath": str(saved)})
    )

    @task(persist_result=True, result_storage=LocalFileSystem(basepath=str(local)))
    def one(x: int) -> int:
        return x + 1

    @task(persist_result=True, result_storage="local-file-system/dev")
    def two(x: int) -> int:
        return x + 2

    @task(persist_result=True, result_storage=RemoteFileSystem(basepath=remote.as_uri()))
    def three(x: int) -> int:
        return x + 3

    @flow(result_storage=LocalFileSystem(basepath=str(flows)))
    def adds() -> tuple[int, int, int]:
        return one(1), two(1), three(1)

    assert adds() == (2, 3, 4)
    assert [len(files(d)) for d in (local, saved, remote, flows)] == [1, 1, 1, 1]
    assert LocalFileSystem.get_block_type_slug() == "local-file-system"


def test_what_cannot_be_a_storage_is_refused_naming_it() -> None:
    with pytest.raises(TypeError, match="result_storage must be an fsspec URL"):

        @task(result_storage=42)  # type: ignore[arg-type]
        def bad(x: int) -> int:
            return x

    @task(
        persist_result=True,
        result_storage=RemoteFileSystem(basepath="s3://b", settings={"key": "k"}),
    )
    def with_settings(x: int) -> int:
        return x

    @flow
    def uses() -> int:
        return with_settings(1)

    with pytest.raises(NotSupported, match=r"RemoteFileSystem\(settings=...\): .* environment"):
        uses()
