"""Schedule arithmetic and concurrency admission: the pure decisions behind Deployments."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from headrace.controller.concurrency import admit
from headrace.controller.deployments import CREATED_BY, SCHEDULED_TIME, created_by_schedule
from headrace.controller.schedules import MAX_CATCH_UP, InvalidSchedule, Timetable, run_name
from headrace.crd.models import Schedule

T0 = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_interval_times_count_from_the_anchor() -> None:
    every = Timetable(Schedule(interval_seconds=60))
    assert every.due(T0, T0, at(150)) == [at(60), at(120)]
    assert every.due(T0, at(120), at(150)) == []  # already handled: nothing twice
    assert every.next_after(T0, at(150)) == at(180)


def test_cron_honours_its_timezone() -> None:
    nine_in_paris = Timetable(Schedule(cron="0 9 * * *", timezone="Europe/Paris"))
    assert nine_in_paris.next_after(T0, T0) == dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
    summer = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
    assert nine_in_paris.next_after(T0, summer) == dt.datetime(2026, 7, 1, 7, 0, tzinfo=dt.UTC)


def test_catch_up_is_bounded_and_starting_deadline_applies() -> None:
    every = Timetable(Schedule(interval_seconds=1, starting_deadline_seconds=10))
    due = every.due(T0, T0, at(1000))
    assert len(due) == MAX_CATCH_UP and due[-1] == at(1000)
    assert every.too_late(at(980), at(1000)) and not every.too_late(at(995), at(1000))


def test_names_are_deterministic() -> None:
    assert run_name("etl", at(5)) == "etl-20260301-120005"
    assert run_name("etl", at(5)) == run_name(
        "etl", at(5).astimezone(dt.timezone(dt.timedelta(hours=3)))
    )


def test_invalid_schedules_name_the_field() -> None:
    assert "spec.schedule.cron" in (Timetable(Schedule(cron="every day")).validate() or "")
    assert "spec.schedule.timezone" in (
        Timetable(Schedule(cron="* * * * *", timezone="Mars/Base")).validate() or ""
    )


def test_a_spec_is_read_by_the_crd_model() -> None:
    """The CRD's Schedule is the one definition of the fields (camelCase, its defaults)."""
    timetable = Timetable.from_spec({"cron": "0 9 * * *", "startingDeadlineSeconds": 60})
    assert timetable is not None and timetable.schedule.timezone == "UTC"
    assert timetable.schedule.starting_deadline_seconds == 60
    assert Timetable.from_spec(None) is None
    with pytest.raises(InvalidSchedule, match=r"set exactly one of spec\.schedule\.cron"):
        Timetable.from_spec({"cron": "* * * * *", "intervalSeconds": 5})


def run(name: str, created: str, state: str | None = None, started: bool = False) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if state:
        status["state"] = state
    if started:
        status["attempts"] = [{"number": 1}]
    return {"metadata": {"name": name, "creationTimestamp": created}, "status": status}


def test_queue_admits_in_creation_order() -> None:
    runs = [run("a", "t1", "Running", True), run("b", "t2"), run("c", "t3")]
    assert not admit("b", runs, 1, "Queue").start
    assert admit("b", runs, 2, "Queue").start
    assert not admit("c", runs, 2, "Queue").start  # b is ahead of it
    waiting = admit("c", runs, 1, "Queue")
    assert waiting.reason == "WaitingForConcurrencySlot" and "1 of 1 running" in waiting.message


def test_forbid_replace_and_allow() -> None:
    runs = [run("old", "t1", "Running", True), run("new", "t2")]
    assert admit("new", runs, 1, "Forbid").reason == "ConcurrencyLimitForbid"
    replace = admit("new", runs, 1, "Replace")
    assert not replace.start and replace.replace == ["old"]
    assert admit("new", runs, 1, "Allow").start
    finished = [run("old", "t1", "Completed", True), run("new", "t2")]
    assert admit("new", finished, 1, "Forbid").start


def _run(labels: dict[str, str], annotations: dict[str, str], owner_uid: str | None) -> Any:
    owners = [{"kind": "Deployment", "name": "etl", "uid": owner_uid}] if owner_uid else []
    return {
        "metadata": {
            "name": "etl-20260301-120000",
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": owners,
        }
    }


def test_only_runs_the_schedule_made_and_the_deployment_owns_are_its_to_trim() -> None:
    made = {CREATED_BY: "schedule"}
    assert created_by_schedule(_run(made, {}, "uid-1"), "uid-1")
    # Made by an operator before the label existed: its scheduled-time annotation says so.
    assert created_by_schedule(_run({}, {SCHEDULED_TIME: T0.isoformat()}, "uid-1"), "uid-1")
    assert not created_by_schedule(_run({}, {}, None), "uid-1")  # applied from git
    assert not created_by_schedule(_run(made, {}, None), "uid-1")  # a copied label alone
    assert not created_by_schedule(_run(made, {}, "uid-0"), "uid-1")  # an earlier Deployment's
