"""When a Deployment's runs are due: cron (with a timezone) or a fixed interval.

Pure functions of the schedule, an anchor and a clock, so a restarted operator computes the
same times again, and the same FlowRun names: a run is never made twice nor silently lost.
The schedule's fields are the CRD's (`crd.models.Schedule`, their one definition); a
`Timetable` is that schedule as the times it fires.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter
from pydantic import ValidationError

from headrace.crd.models import CRON_PATTERN, Schedule

MAX_CATCH_UP = 100  # like CronJob: past this many missed times, only the newest count


class InvalidSchedule(ValueError):
    """A `spec.schedule` that is not a Schedule; the message names the field."""


@dataclass(frozen=True)
class Timetable:
    schedule: Schedule

    @classmethod
    def from_spec(cls, spec: dict[str, object] | None) -> Timetable | None:
        """The timetable of a Deployment's `spec.schedule` (None without one)."""
        if not spec:
            return None
        try:
            return cls(Schedule.model_validate(spec))
        except ValidationError as error:
            problems = [
                ".".join(["spec.schedule", *map(str, e["loc"])]) + f": {e['msg']}"
                for e in error.errors()
            ]
            raise InvalidSchedule("; ".join(problems)) from None

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.schedule.timezone or "UTC")

    def validate(self) -> str | None:
        """A message naming the bad field, or None: what the CRD's CEL rules cannot check."""
        cron = self.schedule.cron
        if cron and (not re.match(CRON_PATTERN, cron) or not croniter.is_valid(cron)):
            return (
                f"spec.schedule.cron {cron!r} is not a five-field cron expression "
                "(minute hour day month weekday) or a macro such as @hourly"
            )
        try:
            self.zone()
        except Exception:
            return f"spec.schedule.timezone {self.schedule.timezone!r} is not an IANA timezone"
        if cron:
            try:
                self.next_after(dt.datetime.now(dt.UTC), dt.datetime.now(dt.UTC))
            except CroniterBadDateError:
                return f"spec.schedule.cron {cron!r} never fires (no such date)"
        return None

    def next_after(self, anchor: dt.datetime, after: dt.datetime) -> dt.datetime:
        """The first scheduled time strictly after `after` (interval times count from anchor)."""
        interval = self.schedule.interval_seconds
        if interval:
            step = dt.timedelta(seconds=interval)
            if after < anchor:
                return anchor + step
            count = (after - anchor) // step + 1
            return anchor + count * step
        assert self.schedule.cron is not None
        base = after.astimezone(self.zone())
        following: dt.datetime = croniter(self.schedule.cron, base).get_next(dt.datetime)
        return following.astimezone(dt.UTC)

    def due(self, anchor: dt.datetime, after: dt.datetime, now: dt.datetime) -> list[dt.datetime]:
        """Scheduled times in (after, now], oldest first, at most MAX_CATCH_UP of the newest."""
        times: list[dt.datetime] = []
        moment = after
        # Start just before the newest MAX_CATCH_UP times: a stale `after` with a one-second
        # interval or an every-minute cron must not mean a loop over every time since.
        moment = max(moment, self._catch_up_start(now))
        while True:
            moment = self.next_after(anchor, moment)
            if moment > now:
                return times
            times.append(moment)
            if len(times) > MAX_CATCH_UP:
                times.pop(0)

    def _catch_up_start(self, now: dt.datetime) -> dt.datetime:
        interval = self.schedule.interval_seconds
        if interval:
            return now - dt.timedelta(seconds=interval) * (MAX_CATCH_UP + 1)
        assert self.schedule.cron is not None
        times = croniter(self.schedule.cron, now.astimezone(self.zone()))
        for _ in range(MAX_CATCH_UP + 1):
            times.get_prev(dt.datetime)
        start: dt.datetime = times.get_prev(dt.datetime)
        return start.astimezone(dt.UTC)

    def too_late(self, scheduled: dt.datetime, now: dt.datetime) -> bool:
        limit = self.schedule.starting_deadline_seconds
        return limit is not None and (now - scheduled).total_seconds() > limit


def run_name(deployment: str, scheduled: dt.datetime) -> str:
    """Deterministic: the same Deployment and time always name the same FlowRun."""
    stamp = scheduled.astimezone(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return f"{deployment[: 253 - len(stamp) - 1]}-{stamp}"
