"""Message load: what TrialHub's batching spares the sites, per study-site and ISO week.

PRODUCT.md: "Message load is measured: per site per week, stand-alone messages by tier, digest
lines, dedup savings." Everything is counted over **in-app** deliveries of kind ``message``
to the people of a study-site (``Delivery.study_site``: the study-site through which a
recipient was reached); email copies and escalation notices are not counted as load.
A week is an ISO week in UTC (Monday 00:00 to Monday 00:00 UTC), labelled ``2026-W47``, and
a delivery counts in the week of its ``delivered_at`` (stand-alone: when it was delivered;
folded into a digest: when the digest was built).

Per study-site and week:

- ``standalone`` {critical, key, routine, info}: distinct messages delivered stand-alone
  (not via a digest) to the study-site that week, by the message's tier.
- ``digest_items``: message deliveries folded into digests, one per recipient.
- ``digest_lines``: the lines those digests show; in one digest, items sharing a dedup key
  (on a study) are one line, every other item is its own line.
- ``digests``: digests that carried at least one of those items (a digest is one in-app
  notification to its recipient; one that also carries other study-sites' items counts at
  each of them).
- ``dedup_saved`` = ``digest_items - digest_lines``.
- ``throttle_saved``: "send now" routine deliveries over the study's daily per-site limit,
  folded into digests instead of going alone.
- ``notifications``: stand-alone deliveries received by people + ``digests``;
  ``without_batching``: every message delivery a notification of its own (stand-alone
  deliveries + ``digest_items``); ``reduction`` = ``1 - notifications / without_batching``
  (``None`` when nothing was delivered).
- ``median_ack_hours`` and ``ack_n``: the median, over the key and critical deliveries
  **acknowledged** that week, of the hours from its delivery to its
  acknowledgement, and how many there were; ``None`` when ``ack_n`` is 0.
- ``escalated``: key and critical deliveries **escalated** (overdue acknowledgement) that week.

Totals over weeks, over study-sites or both are the sums of the counts above — the load the
sites bore: a message reaching three sites counts three times — while medians are computed
in the database over the acknowledgements of each grouping, never averaged.

All figures are aggregates in SQL (``GROUP BY`` study-site and week), so the number of
queries does not depend on the amount of data: one for the load, one for escalations and one
(a ``UNION ALL`` of four groupings) for the acknowledgement medians.

Tenancy: ``message_load_rows`` takes study ids that the caller has already resolved through
a tenancy-aware selector (the performance app reuses it for the CRO scorecard and the
``key_ack_hours`` KPI). ``message_load_for_study`` resolves the study itself: message load
is the sponsor's and the CRO's view of the sites, so only sponsor and CRO people who see the
study get it; anyone else, site people included, gets ``Http404``.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace

from django.core.exceptions import ValidationError
from django.db.models import (
    Aggregate,
    Case,
    CharField,
    Count,
    DateField,
    F,
    FloatField,
    Func,
    IntegerField,
    Q,
    Value,
    When,
)
from django.db.models.functions import Cast, Concat, TruncWeek
from django.http import Http404
from django.utils import timezone

from comms.models import ACK_TIERS, Channel, Delivery, DeliveryKind, Tier
from sites.models import StudySite
from trialhub.models import OrganizationKind, Study
from trialhub.permissions import membership_of
from trialhub.selectors import study_for_user

DEFAULT_WEEKS = 12
MAX_WEEKS = 52
TIERS: tuple[str, ...] = (Tier.CRITICAL, Tier.KEY, Tier.ROUTINE, Tier.INFO)
# Organisation kinds whose people see a study's message load.
VIEWER_KINDS = frozenset({OrganizationKind.SPONSOR, OrganizationKind.CRO})
UTC = datetime.UTC
WEEK = datetime.timedelta(days=7)


class Median(Aggregate):
    """PostgreSQL's continuous median: ``percentile_cont(0.5) WITHIN GROUP (ORDER BY x)``."""

    function = "PERCENTILE_CONT"
    name = "Median"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


class Hours(Func):
    """An interval in hours, as a double."""

    template = "EXTRACT(EPOCH FROM %(expressions)s)::double precision / 3600"
    output_field = FloatField()


@dataclass
class Load:
    """The counts of one study-site-week (or of a sum of them); see the module docstring."""

    standalone: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TIERS, 0))
    standalone_received: int = 0
    digests: int = 0
    digest_items: int = 0
    digest_lines: int = 0
    throttle_saved: int = 0
    escalated: int = 0
    median_ack_hours: float | None = None
    ack_n: int = 0

    @property
    def dedup_saved(self) -> int:
        return self.digest_items - self.digest_lines

    @property
    def notifications(self) -> int:
        return self.standalone_received + self.digests

    @property
    def without_batching(self) -> int:
        return self.standalone_received + self.digest_items

    @property
    def reduction(self) -> float | None:
        if not self.without_batching:
            return None
        return round(1 - self.notifications / self.without_batching, 4)

    @property
    def reduction_percent(self) -> int | None:
        return None if self.reduction is None else round(self.reduction * 100)

    @property
    def standalone_total(self) -> int:
        return sum(self.standalone.values())

    def __add__(self, other: Load) -> Load:
        """Counts add up; the median does not (it is set from its own grouping)."""
        summed = {
            spec.name: getattr(self, spec.name) + getattr(other, spec.name)
            for spec in fields(self)
            if spec.name not in ("standalone", "median_ack_hours", "ack_n")
        }
        standalone = {tier: self.standalone[tier] + other.standalone[tier] for tier in TIERS}
        return Load(standalone=standalone, **summed)


@dataclass(frozen=True)
class LoadRow:
    """One grouping's load. ``study_site_id`` None: all study-sites of the studies asked
    for; ``week`` (the Monday of the ISO week) None: the whole date range."""

    study_site_id: int | None
    week: datetime.date | None
    load: Load


def week_start(moment: datetime.datetime) -> datetime.date:
    """The Monday (UTC) of the ISO week holding ``moment``."""
    day = moment.astimezone(UTC).date()
    return day - datetime.timedelta(days=day.weekday())


def week_label(monday: datetime.date) -> str:
    year, week, _day = monday.isocalendar()
    return f"{year}-W{week:02d}"


def last_weeks(*, weeks: int, now: datetime.datetime) -> list[datetime.date]:
    """The Mondays of the last ``weeks`` ISO weeks, oldest first, the current week last."""
    current = week_start(now)
    return [current - WEEK * back for back in range(weeks - 1, -1, -1)]


def _week_bounds(mondays: list[datetime.date]) -> tuple[datetime.datetime, datetime.datetime]:
    since = datetime.datetime.combine(mondays[0], datetime.time(), tzinfo=UTC)
    return since, datetime.datetime.combine(mondays[-1], datetime.time(), tzinfo=UTC) + WEEK


def _week_of(field_name: str) -> TruncWeek:
    return TruncWeek(field_name, tzinfo=UTC, output_field=DateField())


def _message_deliveries(study_ids: Iterable[int]):
    """In-app deliveries of messages of these studies to the people of a study-site."""
    return Delivery.objects.filter(
        kind=DeliveryKind.MESSAGE,
        channel=Channel.IN_APP,
        message__study_id__in=list(study_ids),
        study_site__isnull=False,
    ).order_by()


# The line a digest item shows on: one per dedup key (the study is the study-site's), or
# one per message without a key — the rule of ``comms.services.digests``.
_DIGEST_LINE = Concat(
    Cast("digest_id", CharField()),
    Value(":"),
    Case(
        When(message__dedup_key="", then=Concat(Value("m"), Cast("message_id", CharField()))),
        default=Concat(Value("k"), "message__dedup_key"),
        output_field=CharField(),
    ),
    output_field=CharField(),
)
_STANDALONE = Q(digest__isnull=True, via_digest=False)
_IN_DIGEST = Q(digest__isnull=False)


def _load_cells(study_ids, since, until) -> dict[tuple[int, datetime.date], Load]:
    """Counts per (study-site, week of delivery); one query."""
    tier_counts = {
        f"standalone_{tier}": Count(
            "message_id", distinct=True, filter=_STANDALONE & Q(message__tier=tier)
        )
        for tier in TIERS
    }
    rows = (
        _message_deliveries(study_ids)
        .filter(delivered_at__gte=since, delivered_at__lt=until)
        .annotate(week=_week_of("delivered_at"))
        .values("study_site_id", "week")
        .annotate(
            **tier_counts,
            standalone_received=Count("id", filter=_STANDALONE),
            digests=Count("digest_id", distinct=True),
            digest_items=Count("id", filter=_IN_DIGEST),
            digest_lines=Count(_DIGEST_LINE, distinct=True, filter=_IN_DIGEST),
            throttle_saved=Count("id", filter=_IN_DIGEST & Q(throttled=True)),
        )
    )
    return {
        (row["study_site_id"], row["week"]): Load(
            standalone={tier: row[f"standalone_{tier}"] for tier in TIERS},
            standalone_received=row["standalone_received"],
            digests=row["digests"],
            digest_items=row["digest_items"],
            digest_lines=row["digest_lines"],
            throttle_saved=row["throttle_saved"],
        )
        for row in rows
    }


def _escalated_cells(study_ids, since, until) -> dict[tuple[int, datetime.date], int]:
    """Key and critical deliveries escalated, per (study-site, week of escalation)."""
    rows = (
        _message_deliveries(study_ids)
        .filter(message__tier__in=ACK_TIERS, escalated_at__gte=since, escalated_at__lt=until)
        .annotate(week=_week_of("escalated_at"))
        .values("study_site_id", "week")
        .annotate(escalated=Count("id"))
    )
    return {(row["study_site_id"], row["week"]): row["escalated"] for row in rows}


def _ack_medians(
    study_ids, since, until
) -> dict[tuple[int | None, datetime.date | None], tuple[float | None, int]]:
    """Median hours from delivery to acknowledgement, and how many, per (study-site, week of
    acknowledgement), per study-site, per week and overall: four groupings, one query."""
    acknowledged = (
        _message_deliveries(study_ids)
        .filter(
            message__tier__in=ACK_TIERS,
            acknowledged_at__gte=since,
            acknowledged_at__lt=until,
        )
        .annotate(hours=Hours(F("acknowledged_at") - F("delivered_at")))
    )
    every_site = Value(None, output_field=IntegerField())
    every_week = Value(None, output_field=DateField())

    def grouped(site, week):
        return (
            acknowledged.annotate(group_site=site, group_week=week)
            .values("group_site", "group_week")
            .annotate(median=Median("hours"), n=Count("id"))
            .order_by()
        )

    by_site_week = grouped(F("study_site_id"), _week_of("acknowledged_at"))
    rows = by_site_week.union(
        grouped(F("study_site_id"), every_week),
        grouped(every_site, _week_of("acknowledged_at")),
        grouped(every_site, every_week),
        all=True,
    )
    return {
        (row["group_site"], row["group_week"]): (
            None if row["median"] is None else round(row["median"], 2),
            row["n"],
        )
        for row in rows
    }


def message_load_rows(
    *, study_ids: Iterable[int], since: datetime.datetime, until: datetime.datetime
) -> list[LoadRow]:
    """The message load of the given studies between ``since`` (included) and ``until``
    (excluded), in the shape of SQL ``GROUPING SETS``: one row per (study-site, week) with
    any traffic, one per study-site (``week`` None), one per week (``study_site_id`` None)
    and one overall (both None). Weeks are ISO weeks in UTC; give week-aligned bounds (see
    ``last_weeks``) for whole weeks. Three queries whatever the size.

    No tenancy is applied here: pass only study ids the user may see (resolved through
    ``trialhub.selectors``), and site people must not get other sites' rows.
    """
    study_ids = list(study_ids)
    cells = _load_cells(study_ids, since, until)
    for key, escalated in _escalated_cells(study_ids, since, until).items():
        cells.setdefault(key, Load()).escalated = escalated
    medians = _ack_medians(study_ids, since, until)
    for key in medians:
        if key[0] is not None and key[1] is not None:
            cells.setdefault(key, Load())

    by_site: dict[int, Load] = {}
    by_week: dict[datetime.date, Load] = {}
    overall = Load()
    for (study_site_id, week), load in cells.items():
        by_site[study_site_id] = by_site.get(study_site_id, Load()) + load
        by_week[week] = by_week.get(week, Load()) + load
        overall = overall + load

    def with_median(key, load: Load) -> Load:
        median, n = medians.get(key, (None, 0))
        return replace(load, median_ack_hours=median, ack_n=n)

    rows = [LoadRow(*key, with_median(key, load)) for key, load in sorted(cells.items())]
    rows += [LoadRow(s, None, with_median((s, None), load)) for s, load in sorted(by_site.items())]
    rows += [LoadRow(None, w, with_median((None, w), load)) for w, load in sorted(by_week.items())]
    rows.append(LoadRow(None, None, with_median((None, None), overall)))
    return rows


# --- one study, for its sponsor and CROs ------------------------------------------------------


@dataclass(frozen=True)
class WeekLoad:
    week: datetime.date  # its Monday
    load: Load

    @property
    def label(self) -> str:
        return week_label(self.week)


@dataclass
class SiteLoad:
    """One study-site's load: one ``WeekLoad`` per week of the range (oldest first) and
    their ``summary`` over the range. The study's totals use the same shape, without a site."""

    weeks: list[WeekLoad]
    summary: Load
    study_site: StudySite | None = None


@dataclass
class StudyMessageLoad:
    study: Study
    weeks: list[datetime.date]
    sites: list[SiteLoad]
    totals: SiteLoad

    @property
    def week_labels(self) -> list[str]:
        return [week_label(monday) for monday in self.weeks]


def validate_weeks(weeks) -> int:
    """``weeks`` as an int in 1–52; ``ValidationError`` on ``weeks`` otherwise."""
    try:
        weeks = int(weeks)
    except (TypeError, ValueError):
        raise ValidationError({"weeks": "A whole number of weeks."}) from None
    if not 1 <= weeks <= MAX_WEEKS:
        raise ValidationError({"weeks": f"Between 1 and {MAX_WEEKS} weeks."})
    return weeks


def message_load_study_for_user(user, study_id: int | str) -> Study:
    """The study if ``user`` sees it and belongs to a sponsor or a CRO; ``Http404`` for
    anyone else (a site person sees the study but not the sites' load)."""
    membership = membership_of(user)
    if membership is None or membership.organization.kind not in VIEWER_KINDS:
        raise Http404("No such study.")
    return study_for_user(user, study_id)


def message_load_for_study(
    *,
    user,
    study: Study | int,
    weeks: int | str = DEFAULT_WEEKS,
    now: datetime.datetime | None = None,
) -> StudyMessageLoad:
    """The last ``weeks`` ISO weeks (the current one included) of a study's message load,
    for its sponsor and CRO people: every study-site of the study by site name (with zero
    weeks where nothing happened) and the study's totals.

    The study is resolved here through ``message_load_study_for_user`` (``Http404`` when out
    of reach or for site people) before ``weeks`` is checked: outside 1–52 it is a
    ``ValidationError`` on ``weeks``. Five queries after the user's membership, whatever the
    size.
    """
    study = message_load_study_for_user(user, getattr(study, "pk", study))
    weeks = validate_weeks(weeks)
    mondays = last_weeks(weeks=weeks, now=now or timezone.now())
    since, until = _week_bounds(mondays)
    rows = message_load_rows(study_ids=[study.pk], since=since, until=until)
    found = {(row.study_site_id, row.week): row.load for row in rows}

    def site_load(study_site_id: int | None, study_site: StudySite | None = None) -> SiteLoad:
        return SiteLoad(
            weeks=[
                WeekLoad(monday, found.get((study_site_id, monday), Load())) for monday in mondays
            ],
            summary=found.get((study_site_id, None), Load()),
            study_site=study_site,
        )

    study_sites = (
        StudySite.objects.filter(study=study).select_related("site").order_by("site__name", "id")
    )
    return StudyMessageLoad(
        study=study,
        weeks=mondays,
        sites=[site_load(study_site.id, study_site) for study_site in study_sites],
        totals=site_load(None),
    )
