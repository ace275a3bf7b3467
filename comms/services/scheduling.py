"""When a delivery is due: digest windows and quiet hours in the site's own time zone.

Pure functions of a site's preferences and an instant; no database access. Local times are
turned into instants with ``zoneinfo``: a digest hour that does not exist on a spring-forward
day comes an hour later by the wall clock, and one that occurs twice (autumn) is the first.
"""

from __future__ import annotations

import datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sites.models import DigestFrequency

# How far ahead a window is looked for: a weekly schedule always has one within 8 days.
_LOOKAHEAD_DAYS = 8


class SiteSchedule(NamedTuple):
    """The delivery preferences of one site (``sites.Site``'s fields of the same names)."""

    time_zone: str
    digest_frequency: str
    digest_hour: int
    digest_weekday: int
    quiet_hours_enabled: bool
    quiet_hours_start: datetime.time
    quiet_hours_end: datetime.time


SCHEDULE_FIELDS = SiteSchedule._fields


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _instant(day: datetime.date, at: datetime.time, zone: ZoneInfo) -> datetime.datetime:
    """The UTC instant of a local wall-clock time (see the module note for DST gaps)."""
    local = datetime.datetime.combine(day, at, tzinfo=zone)
    return local.astimezone(datetime.UTC)


def next_digest_window(schedule: SiteSchedule, after: datetime.datetime) -> datetime.datetime:
    """The first digest window of the site strictly after ``after`` (an aware datetime):
    every day at ``digest_hour``, or on ``digest_weekday`` only for weekly digests; in UTC."""
    zone = _zone(schedule.time_zone)
    today = after.astimezone(zone).date()
    hour = datetime.time(schedule.digest_hour)
    for offset in range(_LOOKAHEAD_DAYS):
        day = today + datetime.timedelta(days=offset)
        if (
            schedule.digest_frequency == DigestFrequency.WEEKLY
            and day.weekday() != schedule.digest_weekday
        ):
            continue
        window = _instant(day, hour, zone)
        if window > after:
            return window
    raise AssertionError("a digest schedule has a window every week")  # pragma: no cover


def quiet_hours_end(schedule: SiteSchedule, at: datetime.datetime) -> datetime.datetime | None:
    """If ``at`` falls in the site's quiet hours, the instant they end (UTC); else ``None``.

    Quiet hours may run over midnight (20:00–07:00). Equal start and end mean none.
    """
    start, end = schedule.quiet_hours_start, schedule.quiet_hours_end
    if not schedule.quiet_hours_enabled or start == end:
        return None
    zone = _zone(schedule.time_zone)
    local = at.astimezone(zone)
    now_time, today = local.time(), local.date()
    if start < end:
        quiet = start <= now_time < end
        end_day = today
    else:
        quiet = now_time >= start or now_time < end
        end_day = today if now_time < end else today + datetime.timedelta(days=1)
    if not quiet:
        return None
    return _instant(end_day, end, zone)


def local_day_bounds(time_zone: str, at: datetime.datetime) -> tuple[datetime.datetime, ...]:
    """The start and end (UTC) of the local day in ``time_zone`` that contains ``at``."""
    zone = _zone(time_zone)
    day = at.astimezone(zone).date()
    midnight = datetime.time(0)
    return _instant(day, midnight, zone), _instant(day + datetime.timedelta(days=1), midnight, zone)
