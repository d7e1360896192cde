"""Settings read from the environment, so a pod spec is all the configuration there is."""

from __future__ import annotations

import os
from pathlib import Path


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def home() -> Path:
    """Where local runs keep results and run records (`HEADRACE_HOME`, default ~/.headrace)."""
    return Path(_env("HEADRACE_HOME") or Path.home() / ".headrace").expanduser()


def result_storage() -> str:
    """Default fsspec URL for results (`HEADRACE_RESULT_STORAGE`).

    Object storage URLs carry no secrets: `s3://bucket/prefix` (the `s3` extra) takes its
    credentials and endpoint from the standard AWS environment, which botocore reads itself:
    `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL_S3` (or `AWS_ENDPOINT_URL`)
    for S3-compatible servers, `AWS_DEFAULT_REGION`. Run records (below) likewise.
    """
    return _env("HEADRACE_RESULT_STORAGE") or (home() / "results").as_uri()


def record_storage() -> str:
    """fsspec URL under which each top-level run writes `<flow-run-id>/record.jsonl`."""
    return _env("HEADRACE_RECORD_STORAGE") or (home() / "runs").as_uri()


def scheduled_start_time() -> float | None:
    """The instant the run was scheduled for (`HEADRACE_SCHEDULED_START_TIME`, ISO 8601): the
    operator sets the schedule's instant, or the FlowRun's creation."""
    value = _env("HEADRACE_SCHEDULED_START_TIME")
    if not value:
        return None
    import datetime as dt

    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def persist_results_default() -> bool:
    """Whether task results are persisted when neither task nor flow says."""
    return _env("HEADRACE_PERSIST_RESULTS").lower() in {"1", "true", "yes"}


def debug() -> bool:
    """`HEADRACE_DEBUG=1` logs the engine's threads, queues and wake-ups."""
    return _env("HEADRACE_DEBUG").lower() in {"1", "true", "yes"}


def sigterm_state() -> str:
    """The state a SIGTERM gives the running flow: `Cancelled` (default) or `TimedOut`.

    With `HEADRACE_DEADLINE` (a Unix time) set, a SIGTERM at or after the deadline means
    TimedOut whatever this says: the operator ends timed-out pods by signal.
    """
    deadline = _env("HEADRACE_DEADLINE")
    if deadline:
        import time

        try:
            if time.time() >= float(deadline):
                return "TimedOut"
        except ValueError:
            pass
    value = _env("HEADRACE_SIGTERM_STATE", "Cancelled")
    return "TimedOut" if value.lower() in {"timedout", "timed_out", "timeout"} else "Cancelled"


def flow_run_id() -> str:
    """An id given to the top-level run from outside (the operator sets it to the FlowRun's)."""
    return _env("HEADRACE_FLOW_RUN_ID")


def flow_run_name() -> str:
    return _env("HEADRACE_FLOW_RUN_NAME")


def deployment_name() -> str:
    return _env("HEADRACE_DEPLOYMENT_NAME")


def deployment_version() -> str:
    return _env("HEADRACE_DEPLOYMENT_VERSION")


def record_flush_interval() -> float:
    return float(_env("HEADRACE_RECORD_FLUSH_SECONDS", "0.5"))


def dask_address() -> str:
    """The Dask scheduler the operator made for this run (`spec.taskRunner.dask`), or ""."""
    return _env("HEADRACE_DASK_ADDRESS")
