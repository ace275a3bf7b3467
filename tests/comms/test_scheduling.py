"""When deliveries are due: digest windows, quiet hours and local days in the site's own time
zone, across clock changes. Pure functions of a schedule and an instant: no database."""

from __future__ import annotations

import datetime

import pytest

from comms.services.scheduling import (
    SiteSchedule,
    local_day_bounds,
    next_digest_window,
    quiet_hours_end,
)
from sites.models import DigestFrequency, Weekday

MICROSECOND = datetime.timedelta(microseconds=1)


def utc(text: str) -> datetime.datetime:
    """``"2026-01-14 06:00"`` as an aware UTC instant."""
    return datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.UTC)


def schedule(
    time_zone: str = "UTC",
    *,
    hour: int = 8,
    weekday: int | None = None,
    quiet: tuple[str, str] | None = None,
    quiet_enabled: bool = True,
) -> SiteSchedule:
    """A site's preferences: daily at ``hour`` unless ``weekday`` makes it weekly; quiet hours
    ``(start, end)`` as ``"HH:MM"`` when given."""
    start, end = quiet or ("20:00", "07:00")
    return SiteSchedule(
        time_zone=time_zone,
        digest_frequency=DigestFrequency.DAILY if weekday is None else DigestFrequency.WEEKLY,
        digest_hour=hour,
        digest_weekday=Weekday.MONDAY if weekday is None else weekday,
        quiet_hours_enabled=quiet is not None and quiet_enabled,
        quiet_hours_start=datetime.time.fromisoformat(start),
        quiet_hours_end=datetime.time.fromisoformat(end),
    )


# --- daily windows ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("time_zone", "expected"),
    [
        ("UTC", "2026-01-14 08:00"),
        ("Europe/Berlin", "2026-01-14 07:00"),  # 8:00 CET (UTC+1)
        ("America/New_York", "2026-01-14 13:00"),  # 8:00 EST (UTC-5)
        # It is 15:00 in Tokyo already: tomorrow's 8:00 JST, still the 14th in UTC.
        ("Asia/Tokyo", "2026-01-14 23:00"),
    ],
)
def test_daily_window_is_the_next_local_digest_hour(time_zone, expected):
    after = utc("2026-01-14 06:00")
    assert next_digest_window(schedule(time_zone), after) == utc(expected)


def test_window_follows_the_local_date_not_the_utc_date():
    # 22:00 on the 14th in New York is the 15th in UTC; the next 8:00 local is on the 15th.
    assert next_digest_window(schedule("America/New_York"), utc("2026-01-15 03:00")) == utc(
        "2026-01-15 13:00"
    )


@pytest.mark.parametrize("time_zone", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"])
def test_window_is_strictly_after_the_given_instant(time_zone):
    site = schedule(time_zone)
    window = next_digest_window(site, utc("2026-01-14 06:00"))

    assert next_digest_window(site, window - MICROSECOND) == window
    # An instant exactly at a window has missed it: the next one is a day later.
    assert next_digest_window(site, window) == window + datetime.timedelta(days=1)
    assert next_digest_window(site, window + MICROSECOND) == window + datetime.timedelta(days=1)


def test_unknown_time_zone_is_treated_as_utc():
    assert next_digest_window(schedule("Mars/Olympus_Mons"), utc("2026-01-14 06:00")) == utc(
        "2026-01-14 08:00"
    )


def test_window_accepts_an_instant_in_any_zone():
    berlin_morning = datetime.datetime.fromisoformat("2026-01-14T06:30:00+01:00")
    assert next_digest_window(schedule("Europe/Berlin"), berlin_morning) == utc("2026-01-14 07:00")
    assert next_digest_window(schedule("Europe/Berlin"), berlin_morning).tzinfo == datetime.UTC


# --- weekly windows -----------------------------------------------------------------------


def test_weekly_window_is_on_the_chosen_weekday():
    # Monday the 12th; the site's digest is on Wednesdays at 8:00 Berlin time.
    site = schedule("Europe/Berlin", weekday=Weekday.WEDNESDAY)
    window = next_digest_window(site, utc("2026-01-12 10:00"))
    assert window == utc("2026-01-14 07:00")
    assert window.astimezone(datetime.timezone(datetime.timedelta(hours=1))).weekday() == 2


def test_weekly_window_on_the_day_itself_before_and_after_the_hour():
    site = schedule("Europe/Berlin", weekday=Weekday.WEDNESDAY)
    assert next_digest_window(site, utc("2026-01-14 06:59")) == utc("2026-01-14 07:00")
    # The hour has passed (or is now): next week.
    assert next_digest_window(site, utc("2026-01-14 07:00")) == utc("2026-01-21 07:00")
    assert next_digest_window(site, utc("2026-01-14 18:00")) == utc("2026-01-21 07:00")


def test_weekly_window_uses_the_local_weekday():
    # Monday 8:00 in Tokyo is Sunday 23:00 UTC.
    site = schedule("Asia/Tokyo", weekday=Weekday.MONDAY)
    assert next_digest_window(site, utc("2026-01-14 06:00")) == utc("2026-01-18 23:00")


@pytest.mark.parametrize("weekday", list(Weekday.values))
def test_weekly_window_is_within_a_week_for_every_weekday(weekday):
    after = utc("2026-01-14 12:00")
    window = next_digest_window(schedule("America/New_York", weekday=weekday), after)
    assert after < window <= after + datetime.timedelta(days=7)
    local = window.astimezone(datetime.timezone(datetime.timedelta(hours=-5)))
    assert (local.weekday(), local.hour, local.minute) == (weekday, 8, 0)


# --- clock changes ------------------------------------------------------------------------
# Europe/Berlin: 2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 CEST -> 02:00 CET.
# America/New_York: 2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST.


@pytest.mark.parametrize(
    ("time_zone", "day_before", "after", "expected"),
    [
        # Spring forward: 8:00 local moves from 07:00 UTC to 06:00 UTC.
        ("Europe/Berlin", "2026-03-28 07:00", "2026-03-28 08:00", "2026-03-29 06:00"),
        ("America/New_York", "2026-03-07 13:00", "2026-03-07 14:00", "2026-03-08 12:00"),
        # Fall back: from 06:00 UTC to 07:00 UTC.
        ("Europe/Berlin", "2026-10-24 06:00", "2026-10-24 08:00", "2026-10-25 07:00"),
        ("America/New_York", "2026-10-31 12:00", "2026-10-31 14:00", "2026-11-01 13:00"),
    ],
)
def test_window_stays_at_the_local_hour_across_a_clock_change(
    time_zone, day_before, after, expected
):
    site = schedule(time_zone)
    assert next_digest_window(site, utc(day_before) - MICROSECOND) == utc(day_before)
    assert next_digest_window(site, utc(after)) == utc(expected)
    # And the day after the change keeps the new offset.
    assert next_digest_window(site, utc(expected)) == utc(expected) + datetime.timedelta(days=1)


@pytest.mark.parametrize(
    ("time_zone", "hour", "after", "expected", "next_day"),
    [
        # 02:00 does not exist on these days: the window comes an hour later by the wall
        # clock (03:00 summer time), the instant 02:00 would have been in winter time.
        ("Europe/Berlin", 2, "2026-03-28 12:00", "2026-03-29 01:00", "2026-03-30 00:00"),
        ("America/New_York", 2, "2026-03-07 12:00", "2026-03-08 07:00", "2026-03-09 06:00"),
    ],
)
def test_a_digest_hour_that_does_not_exist_comes_an_hour_later(
    time_zone, hour, after, expected, next_day
):
    site = schedule(time_zone, hour=hour)
    window = next_digest_window(site, utc(after))
    assert window == utc(expected)
    assert next_digest_window(site, window) == utc(next_day)


@pytest.mark.parametrize(
    ("time_zone", "hour", "after", "first", "next_day"),
    [
        # 02:00 happens twice in Berlin on 2026-10-25 (00:00 and 01:00 UTC): the first counts,
        # and the repeated hour does not open a second window.
        ("Europe/Berlin", 2, "2026-10-24 12:00", "2026-10-25 00:00", "2026-10-26 01:00"),
        # 01:00 happens twice in New York on 2026-11-01 (05:00 and 06:00 UTC).
        ("America/New_York", 1, "2026-10-31 12:00", "2026-11-01 05:00", "2026-11-02 06:00"),
    ],
)
def test_a_digest_hour_that_occurs_twice_is_the_first(time_zone, hour, after, first, next_day):
    site = schedule(time_zone, hour=hour)
    window = next_digest_window(site, utc(after))
    assert window == utc(first)
    assert next_digest_window(site, window) == utc(next_day)


def test_weekly_window_across_the_spring_forward_weekend():
    # A Sunday digest at 8:00 Berlin time: the Sunday of the change, at the new offset.
    site = schedule("Europe/Berlin", weekday=Weekday.SUNDAY)
    assert next_digest_window(site, utc("2026-03-23 12:00")) == utc("2026-03-29 06:00")
    assert next_digest_window(site, utc("2026-03-29 06:00")) == utc("2026-04-05 06:00")


# --- quiet hours --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-01-14 18:59", None),  # 19:59 in Berlin
        ("2026-01-14 19:00", "2026-01-15 06:00"),  # 20:00: quiet from the start, inclusive
        ("2026-01-14 22:30", "2026-01-15 06:00"),  # before midnight: ends tomorrow 07:00
        ("2026-01-14 23:00", "2026-01-15 06:00"),  # local midnight
        ("2026-01-15 03:00", "2026-01-15 06:00"),  # after midnight: ends today 07:00
        ("2026-01-15 05:59", "2026-01-15 06:00"),
        ("2026-01-15 06:00", None),  # 07:00: the end is not quiet any more
        ("2026-01-15 11:00", None),
    ],
)
def test_quiet_hours_over_midnight(at, expected):
    site = schedule("Europe/Berlin", quiet=("20:00", "07:00"))
    assert quiet_hours_end(site, utc(at)) == (utc(expected) if expected else None)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-01-14 16:59", None),  # 11:59 in New York
        ("2026-01-14 17:00", "2026-01-14 19:00"),  # 12:00-14:00 local, the same day
        ("2026-01-14 18:30", "2026-01-14 19:00"),
        ("2026-01-14 19:00", None),
        ("2026-01-15 04:00", None),  # 23:00 the evening before
    ],
)
def test_quiet_hours_within_one_day(at, expected):
    site = schedule("America/New_York", quiet=("12:00", "14:00"))
    assert quiet_hours_end(site, utc(at)) == (utc(expected) if expected else None)


def test_quiet_hours_in_tokyo_end_at_the_local_hour():
    # 20:00-07:00 Tokyo: 12:00 UTC is 21:00 there; quiet ends 07:00 JST = 22:00 UTC.
    site = schedule("Asia/Tokyo", quiet=("20:00", "07:00"))
    assert quiet_hours_end(site, utc("2026-01-14 12:00")) == utc("2026-01-14 22:00")


def test_disabled_quiet_hours_are_never_quiet():
    site = schedule("Europe/Berlin", quiet=("20:00", "07:00"), quiet_enabled=False)
    assert quiet_hours_end(site, utc("2026-01-14 22:30")) is None


@pytest.mark.parametrize("at", ["2026-01-14 06:59", "2026-01-14 07:00", "2026-01-14 22:00"])
def test_equal_start_and_end_mean_no_quiet_hours(at):
    site = schedule("Europe/Berlin", quiet=("08:00", "08:00"))
    assert quiet_hours_end(site, utc(at)) is None


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        # 23:00 CET on the night clocks go forward: quiet ends 07:00 CEST (05:00 UTC).
        ("2026-03-28 22:00", "2026-03-29 05:00"),
        # 23:00 CEST on the night clocks go back: quiet ends 07:00 CET (06:00 UTC).
        ("2026-10-24 21:00", "2026-10-25 06:00"),
    ],
)
def test_quiet_hours_end_at_the_local_hour_across_a_clock_change(at, expected):
    site = schedule("Europe/Berlin", quiet=("22:00", "07:00"))
    assert quiet_hours_end(site, utc(at)) == utc(expected)


# --- local days ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("time_zone", "at", "start", "end", "hours"),
    [
        ("UTC", "2026-01-14 12:00", "2026-01-14 00:00", "2026-01-15 00:00", 24),
        ("Asia/Tokyo", "2026-01-14 20:00", "2026-01-14 15:00", "2026-01-15 15:00", 24),
        ("America/New_York", "2026-01-15 03:00", "2026-01-14 05:00", "2026-01-15 05:00", 24),
        # Spring forward: a 23-hour day.
        ("Europe/Berlin", "2026-03-29 12:00", "2026-03-28 23:00", "2026-03-29 22:00", 23),
        ("America/New_York", "2026-03-08 12:00", "2026-03-08 05:00", "2026-03-09 04:00", 23),
        # Fall back: a 25-hour day.
        ("Europe/Berlin", "2026-10-25 12:00", "2026-10-24 22:00", "2026-10-25 23:00", 25),
        ("America/New_York", "2026-11-01 12:00", "2026-11-01 04:00", "2026-11-02 05:00", 25),
    ],
)
def test_local_day_bounds(time_zone, at, start, end, hours):
    bounds = local_day_bounds(time_zone, utc(at))
    assert bounds == (utc(start), utc(end))
    assert bounds[1] - bounds[0] == datetime.timedelta(hours=hours)


def test_local_day_starts_at_local_midnight_inclusive():
    midnight = utc("2026-01-14 23:00")  # 00:00 on the 15th in Berlin
    assert local_day_bounds("Europe/Berlin", midnight)[0] == midnight
    assert local_day_bounds("Europe/Berlin", midnight - MICROSECOND)[1] == midnight
