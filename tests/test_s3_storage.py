"""Results and run records on real S3 (SeaweedFS, the ``s3_server`` fixture), no mocks.

The engine and `headrace logs` get the bucket URL from HEADRACE_*_STORAGE and the credentials
and endpoint only from the standard AWS environment, as a pod would from a Secret.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cluster.helpers import headrace_cli
from cluster.s3 import S3Server

REPO = Path(__file__).resolve().parents[1]
FLOW = """
from headrace import flow, get_run_logger, task


@task(persist_result=True)
def double(x: int) -> int:
    get_run_logger().info("doubling %s", x)
    return 2 * x


@flow(name="s3-flow")
def pipeline(n: int = 21) -> int:
    logger = get_run_logger()
    logger.info("first line")
    value = double(n)
    logger.info("last line")
    return value
"""
OUR_LINES = ("first line", "doubling 21", "last line")
# AWS settings of the outer environment that would compete with the server's (HEADRACE_*
# ones are dropped too): the tests must pass on a machine that has real AWS credentials.
CLEARED = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE")


@dataclass
class S3Run:
    flow_run_id: str
    results: str  # s3://bucket/<prefix>/results
    records: str  # s3://bucket/<prefix>/runs
    env: dict[str, str]
    completed: subprocess.CompletedProcess[str]


def _env(tmp_path: Path, server: S3Server, prefix: str, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("HEADRACE_") and k not in CLEARED
    }
    env.update(server.env())
    env.update(
        HEADRACE_HOME=str(tmp_path / "home"),
        HEADRACE_RESULT_STORAGE=server.url(f"{prefix}/results"),
        HEADRACE_RECORD_STORAGE=server.url(f"{prefix}/runs"),
        AWS_CONFIG_FILE=str(tmp_path / "no-aws-config"),  # nothing from ~/.aws either
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    env.update(extra)
    return env


@pytest.fixture
def s3_run(tmp_path: Path, s3_server: S3Server) -> S3Run:
    """One local `headrace run` of FLOW with results and record in a fresh bucket prefix."""
    prefix = f"t-{uuid.uuid4().hex[:10]}"
    flow_run_id = uuid.uuid4().hex
    (tmp_path / "flow.py").write_text(textwrap.dedent(FLOW))
    env = _env(tmp_path, s3_server, prefix, HEADRACE_FLOW_RUN_ID=flow_run_id)
    completed = headrace_cli(
        "run", "flow.py:pipeline", "--no-progress", env=env, cwd=tmp_path, timeout=60
    )
    assert completed.returncode == 0, completed.stderr
    return S3Run(
        flow_run_id,
        env["HEADRACE_RESULT_STORAGE"],
        env["HEADRACE_RECORD_STORAGE"],
        env,
        completed,
    )


@pytest.fixture
def aws_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process reads S3 the way the engine does: env only, no fsspec storage options."""
    import s3fs

    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    s3fs.S3FileSystem.clear_instance_cache()  # an instance made under other env keeps its keys
    yield
    s3fs.S3FileSystem.clear_instance_cache()


def test_server_requires_its_credentials(s3_server: S3Server) -> None:
    import s3fs

    fs = s3_server.filesystem()
    fs.pipe(s3_server.url("probe.txt"), b"hello")
    assert fs.cat(s3_server.url("probe.txt")) == b"hello"
    options = s3_server.storage_options() | {"secret": "not-the-secret"}
    wrong = s3fs.S3FileSystem(skip_instance_cache=True, **options)
    with pytest.raises(PermissionError):
        wrong.cat(s3_server.url("probe.txt"))


def test_a_run_writes_its_result_and_record_to_the_bucket(
    s3_run: S3Run, s3_server: S3Server
) -> None:
    fs = s3_server.filesystem()
    record = f"{s3_run.records}/{s3_run.flow_run_id}/record.jsonl"
    assert fs.exists(record)
    results = fs.find(f"{s3_run.results}/{s3_run.flow_run_id}")
    assert len(results) == 2, results  # the task's (persist_result=True) and the flow's
    assert f"record     {record}" in s3_run.completed.stderr
    assert f"result     {s3_run.results}/{s3_run.flow_run_id}/" in s3_run.completed.stderr
    assert s3_server.secret_key not in s3_run.completed.stdout + s3_run.completed.stderr


def test_reading_the_record_and_result_back(s3_run: S3Run, aws_env: None) -> None:
    from headrace.records import RunRecord, find_record
    from headrace.records.untrusted import engine_report, read_summary
    from headrace.results import load_result

    url = find_record(s3_run.flow_run_id, s3_run.records)
    assert url == f"{s3_run.records}/{s3_run.flow_run_id}/record.jsonl"
    record = RunRecord.load(url)
    assert record.is_final()
    assert record.root["name"] and record.root["flow_name"] == "s3-flow"
    [task_run] = record.task_runs.values()
    assert task_run["state"]["name"] == "Completed"
    messages = [e["message"] for e in record.logs]
    assert [m for m in messages if m in OUR_LINES] == list(OUR_LINES)

    summary = read_summary(url)
    assert summary is not None and summary["counts"] == {"Completed": 1}

    report = engine_report(url)
    assert report["state"] == "Completed"
    assert report["flowRunId"] == s3_run.flow_run_id
    assert report["result"].startswith(f"{s3_run.results}/{s3_run.flow_run_id}/")
    assert load_result(report["result"]) == 42
    assert load_result(task_run["state"]["result"]) == 42


def test_logs_reverse_from_s3_record_storage(s3_run: S3Run, tmp_path: Path) -> None:
    shown = headrace_cli(
        "logs", s3_run.flow_run_id, "--reverse", env=s3_run.env, cwd=tmp_path, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    messages = [line.rsplit(" | ", 1)[1] for line in shown.stdout.splitlines()]
    assert len(messages) > len(OUR_LINES)  # the engine's own lines too
    assert [m for m in messages if m in OUR_LINES] == list(reversed(OUR_LINES))


def test_wrong_credentials_fail_fast_and_clearly(s3_run: S3Run, tmp_path: Path) -> None:
    env = s3_run.env | {"AWS_SECRET_ACCESS_KEY": "wrong-" + uuid.uuid4().hex}
    started = time.monotonic()
    shown = headrace_cli("logs", s3_run.flow_run_id, env=env, cwd=tmp_path, timeout=30)
    took = time.monotonic() - started
    assert shown.returncode == 2, (shown.stdout, shown.stderr)
    assert shown.stderr.startswith("headrace logs: access to s3://"), shown.stderr
    assert "AWS_SECRET_ACCESS_KEY" in shown.stderr, shown.stderr
    assert "Traceback" not in shown.stderr
    assert env["AWS_SECRET_ACCESS_KEY"] not in shown.stderr
    assert took < 15, took


def test_a_run_with_wrong_credentials_fails_without_hanging(
    s3_server: S3Server, tmp_path: Path
) -> None:
    (tmp_path / "flow.py").write_text(textwrap.dedent(FLOW))
    secret = "wrong-" + uuid.uuid4().hex
    env = _env(tmp_path, s3_server, "never", AWS_SECRET_ACCESS_KEY=secret)
    started = time.monotonic()
    run = headrace_cli(
        "run", "flow.py:pipeline", "--no-progress", env=env, cwd=tmp_path, timeout=60
    )
    took = time.monotonic() - started
    assert run.returncode != 0, run.stderr
    last = run.stderr.splitlines()[-1]
    assert last.startswith("headrace run: access to s3://headrace-test/never/"), run.stderr
    assert "signature" in last, last
    assert secret not in run.stdout + run.stderr
    assert took < 30, took
