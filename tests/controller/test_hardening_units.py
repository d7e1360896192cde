"""Pure pieces of the operator's defences: storage reads, bounded text, schedules."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from headrace.controller.outcome import bounded
from headrace.controller.parameters import ParameterError, check_parameters
from headrace.controller.schedules import MAX_CATCH_UP, Timetable
from headrace.controller.storage import NotReadYet, StorageReads, readable
from headrace.crd.models import EnvVar, PodOverrides, Schedule


def test_only_urls_under_an_allowed_prefix_are_readable() -> None:
    allowed = ("s3://runs/headrace", "file:///data/hr/")
    assert readable("s3://runs/headrace/runs/x/record.jsonl", allowed)
    assert readable("file:///data/hr/runs/x/record.jsonl", allowed)
    assert not readable("s3://runs/headrace-other/x", allowed)
    assert not readable("file:///data/hr/../../etc/passwd", allowed)
    assert not readable("http://169.254.169.254/latest/meta-data", allowed)
    assert not readable("file:///var/run/secrets/kubernetes.io/serviceaccount/token", allowed)


def test_a_read_that_never_returns_does_not_hold_the_caller() -> None:
    now = [0.0]
    reads = StorageReads(("s3://ok",), timeout=5, clock=lambda: now[0])
    release = threading.Event()

    def hangs(url: str) -> dict[str, object]:
        release.wait()
        return {"state": "Completed"}

    assert reads.summary("s3://ok/r", hangs) is None  # started; the caller goes on
    assert reads.summary("s3://ok/r", hangs) is None
    with pytest.raises(NotReadYet):
        reads.report("s3://ok/rep", hangs)
    now[0] = 6.0
    assert reads.report("s3://ok/rep", hangs) == {}  # past the timeout: judge from the pod
    assert reads.report("s3://elsewhere/rep", hangs) == {}  # never read at all
    release.set()


def test_bounded_text_keeps_the_head_and_drops_control_characters() -> None:
    text = bounded("ValueError: boom\x1b[31m" + "x" * 5000)
    assert text.startswith("ValueError: boom[31m") and len(text) == 1024


def test_an_invalid_schema_and_a_remote_ref_are_refused_without_a_request() -> None:
    with pytest.raises(ParameterError, match="not a valid JSON schema") as bad:
        check_parameters("d", {"type": "nonsense"}, {})
    assert bad.value.reason == "InvalidParameterSchema"
    with pytest.raises(ParameterError, match="only references inside the schema"):
        check_parameters("d", {"$ref": "http://127.0.0.1:9/schema.json"}, {"x": 1})
    check_parameters(
        "d",
        {"$defs": {"n": {"type": "integer"}}, "properties": {"x": {"$ref": "#/$defs/n"}}},
        {"x": 1},
    )


def test_schedules_refuse_seconds_fields_and_report_dates_that_never_come() -> None:
    assert "five-field" in (Timetable(Schedule(cron="*/5 * * * * *")).validate() or "")
    assert "never fires" in (Timetable(Schedule(cron="0 0 30 2 *")).validate() or "")
    assert Timetable(Schedule(cron="0 3 * * 1-5")).validate() is None


def test_a_stale_schedule_catches_up_only_the_newest_times() -> None:
    now = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
    year_ago = now - dt.timedelta(days=365)
    for schedule in (
        Timetable(Schedule(interval_seconds=1)),
        Timetable(Schedule(cron="* * * * *")),
    ):
        due = schedule.due(year_ago, year_ago, now)
        assert len(due) == MAX_CATCH_UP
        assert due[-1] <= now and (now - due[-1]).total_seconds() < 61


def test_pod_overrides_cannot_replace_operator_variables_or_confinement() -> None:
    with pytest.raises(ValueError, match="set by the operator"):
        EnvVar(name="HEADRACE_RESULT_STORAGE", value="x")
    with pytest.raises(ValueError, match="set by the operator"):
        EnvVar(name="HEADRACE_BLOCKS", value="x")
    # A flow's blocks and variables are the user's (headrace.blocks, headrace.variables).
    assert EnvVar(name="HEADRACE_BLOCK_SECRET__DB", value="x").name.endswith("__DB")
    assert EnvVar(name="HEADRACE_VARIABLE_REGION", value="x").name.endswith("REGION")
    with pytest.raises(ValueError, match="confinement"):
        PodOverrides(annotations={"container.apparmor.security.beta.kubernetes.io/flow": "x"})


def test_the_same_problem_is_logged_once_a_minute_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    from kubernetes.client.exceptions import ApiException

    from headrace.controller.problems import ProblemLog

    now = [0.0]
    log = ProblemLog(logging.getLogger("test.problems"), interval=60, clock=lambda: now[0])
    outage = ApiException(status=503, reason="Service Unavailable")
    with caplog.at_level(logging.ERROR, "test.problems"):
        written = [log.problem("reconciling a FlowRun", outage) for _ in range(1000)]
        now[0] = 61.0
        log.problem("reconciling a FlowRun", outage)
        log.problem("reconciling a FlowRun", KeyError("status"))
    assert written.count(True) == 1
    lines = [record.getMessage() for record in caplog.records]
    assert lines[0] == "reconciling a FlowRun failed: API error 503 Service Unavailable; retrying"
    assert "(and 999 more times since)" in lines[1]
    assert caplog.records[0].exc_info is None  # an API error needs no traceback
    assert caplog.records[2].exc_info is not None  # a bug in our code does
