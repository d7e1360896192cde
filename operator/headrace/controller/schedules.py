"""When a Deployment's runs are due: cron (with a timezone) or a fixed interval.

Pure functions of the schedule, an anchor and a clock, so a restarted operator computes the
same times again, and the same FlowRun names: a run is never made twice nor silently lost.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter

from headrace.crd.models import CRON_PATTERN

MAX_CATCH_UP = 100  # like CronJob: past this many missed times, only the newest count


@dataclass(frozen=True)
class Schedule:
    cron: str | None = None
    timezone: str | None = None
    interval_seconds: int | None = None
    starting_deadline_seconds: int | None = None

    @classmethod
    def from_spec(cls, spec: dict[str, object] | None) -> Schedule | None:
        if not spec:
            return None
        schedule = cls(
            cron=spec.get("cron"),  # type: ignore[arg-type]
            timezone=spec.get("timezone"),  # type: ignore[arg-type]
            interval_seconds=spec.get("intervalSeconds"),  # type: ignore[arg-type]
            starting_deadline_seconds=spec.get("startingDeadlineSeconds"),  # type: ignore[arg-type]
        )
        return schedule if schedule.cron or schedule.interval_seconds else None

    def validate(self) -> str | None:
        """A message naming the bad field, or None."""
        if self.cron and self.interval_seconds:
            return "set only one of spec.schedule.cron and spec.schedule.intervalSeconds"
        if self.cron and (
            not re.match(CRON_PATTERN, self.cron) or not croniter.is_valid(self.cron)
        ):
            return (
                f"spec.schedule.cron {self.cron!r} is not a five-field cron expression "
                "(minute hour day month weekday) or a macro such as @hourly"
            )
        if self.timezone:
            try:
                ZoneInfo(self.timezone)
            except Exception:
                return f"spec.schedule.timezone {self.timezone!r} is not an IANA timezone"
        if self.cron:
            try:
                self.next_after(dt.datetime.now(dt.UTC), dt.datetime.now(dt.UTC))
            except CroniterBadDateError:
                return f"spec.schedule.cron {self.cron!r} never fires (no such date)"
        return None

    def next_after(self, anchor: dt.datetime, after: dt.datetime) -> dt.datetime:
        """The first scheduled time strictly after `after` (interval times count from anchor)."""
        if self.interval_seconds:
            step = dt.timedelta(seconds=self.interval_seconds)
            if after < anchor:
                return anchor + step
            count = (after - anchor) // step + 1
            return anchor + count * step
        assert self.cron is not None
        zone = ZoneInfo(self.timezone or "UTC")
        base = after.astimezone(zone)
        following: dt.datetime = croniter(self.cron, base).get_next(dt.datetime)
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
        if self.interval_seconds:
            return now - dt.timedelta(seconds=self.interval_seconds) * (MAX_CATCH_UP + 1)
        assert self.cron is not None
        times = croniter(self.cron, now.astimezone(ZoneInfo(self.timezone or "UTC")))
        for _ in range(MAX_CATCH_UP + 1):
            times.get_prev(dt.datetime)
        start: dt.datetime = times.get_prev(dt.datetime)
        return start.astimezone(dt.UTC)

    def too_late(self, scheduled: dt.datetime, now: dt.datetime) -> bool:
        limit = self.starting_deadline_seconds
        return limit is not None and (now - scheduled).total_seconds() > limit


def run_name(deployment: str, scheduled: dt.datetime) -> str:
    """Deterministic: the same Deployment and time always name the same FlowRun."""
    stamp = scheduled.astimezone(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return f"{deployment[: 253 - len(stamp) - 1]}-{stamp}"
