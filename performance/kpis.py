"""The KPI engine: PRODUCT.md "Performance" KPIs per study-site, cumulative to a period.

``study_kpis`` returns ``{study_site_id: {slug: KpiValue(value, n)}}`` for every study-site of
a study; ``study_totals`` the same KPIs for the study as a whole. Both read a constant number
of queries whatever the number of sites and months: the snapshot sums grouped by study-site
(one), the study-sites' targets and milestones (one), the acknowledgement medians (one) and
the CRA history (one); ``study_kpis_series`` the same four for any
number of months. The divisions are done on those few aggregated rows.

Definitions (``period`` is a month; it "ends" on the first day of the next month, exclusive):

- Snapshot KPIs are cumulative: ratios of the sums over every snapshot month ``<= period``.
  ``data_entry_lag_days`` is the CRF-page-weighted mean of the monthly medians (months
  without a median do not count; n = the CRF pages of the months that do).
- ``enrolment_vs_target`` = enrolled ÷ (target × elapsed fraction). The models hold no
  per-site planned enrolment period, so the elapsed fraction is that of the **study's**
  planned period (``Study.planned_start`` to ``Study.planned_end``) at the period's end,
  clamped to 0–1. Null when the target is 0 or nothing has elapsed yet. n = enrolled.
- ``enrolment_rate`` = enrolled ÷ months since activation, where the months are counted
  as calendar months from the activation month through the period month inclusive (a site
  activated on 15 January has 3 months at the end of March). n = those months; null when
  the site was not activated by the period's end.
- A study-site without any snapshot up to the period has every snapshot KPI null.
- ``activation_cycle_days`` (selected → activated) and ``days_to_first_patient`` (activated
  → first patient in): whole days from the StudySite milestones, null while the later
  milestone is missing or falls after the period's end. n = 1 when present, else 0.
- ``key_ack_hours``: the median hours from delivery to acknowledgement of the key and
  critical in-app message deliveries reached through the study-site and acknowledged before
  the period's end (midnight UTC) (n = how many; null when none).
- ``cra_changes_12m``: distinct CRAs whose study-site assignment overlapped the 12 months
  before the period's end (n = the same count).
- ``sae_late`` is the cumulative count; n = the snapshot months it covers.

"Not enough data": a KPI whose n is below ``minimum_samples[slug]`` (defaults in
``DEFAULT_MINIMUM_SAMPLES``) or whose denominator is 0 has the value ``None``, never 0.
Rates are fractions. Study totals are ratios of sums over the sites, never means of ratios.

Tenancy: none here; callers pass a study they resolved through a tenancy-aware selector.
"""

from __future__ import annotations

import datetime
from bisect import bisect_left
from dataclasses import dataclass, fields
from typing import NamedTuple

from django.db import connection
from django.db.models import Count, F, FloatField, Q, Sum, Window
from django.db.models.functions import Cast

from comms.models import ACK_TIERS, Channel, Delivery, DeliveryKind
from performance.models import COUNT_FIELDS, MetricSnapshot
from sites.models import StudySite
from trialhub.models import RoleAssignment, Study, StudyRole

KPI_SLUGS: tuple[str, ...] = (
    "enrolment_vs_target",
    "enrolment_rate",
    "screen_failure_rate",
    "early_discontinuation_rate",
    "activation_cycle_days",
    "days_to_first_patient",
    "data_entry_lag_days",
    "query_rate",
    "query_resolution_days",
    "deviation_rate",
    "sae_late",
    "key_ack_hours",
    "cra_changes_12m",
)
DEFAULT_MINIMUM_SAMPLES: dict[str, int] = {
    "screen_failure_rate": 10,
    "early_discontinuation_rate": 5,
}
# The snapshot counts the KPIs add up (no KPI reads minor deviations or monitoring visits).
SUMMED_FIELDS = tuple(
    name for name in COUNT_FIELDS if name not in {"deviations_minor", "monitoring_visits"}
)
ROUNDING = 4
# KPIs read from the snapshots alone: "not enough data" while a group has none.
SNAPSHOT_KPIS = (
    "enrolment_vs_target",
    "enrolment_rate",
    "screen_failure_rate",
    "early_discontinuation_rate",
    "data_entry_lag_days",
    "query_rate",
    "query_resolution_days",
    "deviation_rate",
    "sae_late",
)


class KpiValue(NamedTuple):
    value: float | None
    n: int


@dataclass
class KpiInputs:
    """The sums one study-site (or the whole study, by adding sites) contributes."""

    screened: int = 0
    screen_failures: int = 0
    enrolled: int = 0
    discontinued: int = 0
    crf_pages: int = 0
    queries_opened: int = 0
    queries_resolved: int = 0
    query_resolution_days: int = 0
    deviations_major: int = 0
    sae_late: int = 0
    snapshot_months: int = 0
    lag_weighted: float = 0.0  # sum of monthly median × that month's CRF pages
    lag_pages: int = 0  # CRF pages of the months that have a median
    target: int = 0
    active_enrolled: int = 0  # enrolled at study-sites activated by the period's end
    active_months: int = 0
    activation_days: int = 0
    activation_n: int = 0
    first_patient_days: int = 0
    first_patient_n: int = 0
    ack_median: float | None = None
    ack_n: int = 0
    cras: int = 0
    cra_sites: int = 0  # study-sites counted in ``cras`` (1 for a site)

    def __add__(self, other: KpiInputs) -> KpiInputs:
        """Sum of two groups; medians cannot be added, so the sum carries none."""
        summed = {
            spec.name: getattr(self, spec.name) + getattr(other, spec.name)
            for spec in fields(self)
            if spec.name != "ack_median"
        }
        return KpiInputs(**summed, ack_median=None)


def period_bounds(period: datetime.date) -> tuple[datetime.date, datetime.date]:
    """The month's first day and the next month's first day (exclusive end)."""
    start = period.replace(day=1)
    end = (start + datetime.timedelta(days=32)).replace(day=1)
    return start, end


def elapsed_fraction(study: Study, end: datetime.date) -> float | None:
    """Share of the study's planned period elapsed at ``end``, clamped to 0–1."""
    if study.planned_start is None or study.planned_end is None:
        return None
    total = (study.planned_end - study.planned_start).days
    if total <= 0:
        return 1.0 if end > study.planned_start else None
    return min(max((end - study.planned_start).days / total, 0.0), 1.0)


def _months_between(first: datetime.date, last: datetime.date) -> int:
    """Calendar months from ``first``'s month through ``last``'s month, inclusive."""
    return (last.year - first.year) * 12 + last.month - first.month + 1


def _snapshot_sums(study: Study, ends: list[datetime.date]) -> dict[datetime.date, dict]:
    """``{end: {study_site_id: sums}}``: the snapshot sums of every month before each end.

    One end (a scorecard) is a plain GROUP BY; several (a trend) one pass of running sums
    (window functions over each study-site's months), of which each end takes the last row
    before it.
    """
    lag = Cast("data_entry_lag_days", FloatField())
    with_lag = Q(data_entry_lag_days__isnull=False)
    # Prefixed: an alias equal to a column name would shadow it in the other sums.
    sums = {
        **{f"sum_{name}": Sum(name) for name in SUMMED_FIELDS},
        "sum_snapshot_months": Count("id"),
        "sum_lag_weighted": Sum(lag * F("crf_pages"), filter=with_lag, output_field=FloatField()),
        "sum_lag_pages": Sum("crf_pages", filter=with_lag),
    }
    snapshots = MetricSnapshot.objects.filter(study_site__study=study, period__lt=max(ends))
    if len(ends) == 1:
        rows = snapshots.values("study_site_id").annotate(**sums).order_by()
        return {ends[0]: {row.pop("study_site_id"): _sums(row) for row in rows}}
    running = {
        name: Window(aggregate, partition_by=[F("study_site_id")], order_by=F("period").asc())
        for name, aggregate in sums.items()
    }
    # Read with a plain cursor (the raw numbers need no Django converters), in site and
    # month order; only each end's last row becomes a dict.
    query = snapshots.annotate(**running).values_list("study_site_id", "period", *running)
    sql, params = query.order_by("study_site_id", "period").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    names = [name.removeprefix("sum_") for name in running]
    by_end: dict[datetime.date, dict] = {end: {} for end in ends}
    first = 0
    while first < len(rows):
        site_id, last = rows[first][0], first
        while last < len(rows) and rows[last][0] == site_id:
            last += 1
        periods = [row[1] for row in rows[first:last]]
        for end in ends:
            before = bisect_left(periods, end)
            if before:
                values = rows[first + before - 1][2:]
                by_end[end][site_id] = {n: v or 0 for n, v in zip(names, values, strict=True)}
        first = last
    return by_end


def _sums(row: dict) -> dict:
    return {name.removeprefix("sum_"): value or 0 for name, value in row.items()}


def _end_instant(end: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(end, datetime.time(), tzinfo=datetime.UTC)


_ACK_MEDIANS_SQL = """
    SELECT ends.end_at, delivery.study_site_id,
           PERCENTILE_CONT(0.5) WITHIN GROUP (
               ORDER BY EXTRACT(EPOCH FROM delivery.acknowledged_at - delivery.delivered_at) / 3600
           ),
           COUNT(*)
    FROM UNNEST(%(ends)s::timestamptz[]) AS ends(end_at)
    JOIN {delivery} AS delivery ON delivery.acknowledged_at < ends.end_at
    JOIN {study_site} AS study_site ON study_site.id = delivery.study_site_id
    WHERE study_site.study_id = %(study)s AND delivery.kind = %(kind)s
      AND delivery.channel = %(channel)s AND delivery.tier = ANY(%(tiers)s)
      AND delivery.delivered_at IS NOT NULL
    GROUP BY {grouping}
"""


def _ack_medians(
    study: Study, ends: list[datetime.date], *, study_wide: bool
) -> dict[datetime.date, dict]:
    """``{end: {study_site_id: (median hours, n)}}`` of the acknowledged key and critical
    in-app deliveries before each end, with the whole study's under the key ``None`` when
    ``study_wide`` (a median of its own: it costs as much again, so only for totals)."""
    instants = {_end_instant(end): end for end in ends}
    per_site = "ends.end_at, delivery.study_site_id"
    sql = _ACK_MEDIANS_SQL.format(
        delivery=Delivery._meta.db_table,
        study_site=StudySite._meta.db_table,
        grouping=f"GROUPING SETS (({per_site}), (ends.end_at))" if study_wide else per_site,
    )
    params = {
        "ends": list(instants),
        "study": study.id,
        "kind": DeliveryKind.MESSAGE,
        "channel": Channel.IN_APP,
        "tiers": list(ACK_TIERS),
    }
    medians: dict[datetime.date, dict] = {end: {None: (None, 0)} for end in ends}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for end_at, site_id, median, count in cursor.fetchall():
            medians[instants[end_at]][site_id] = (median, count)
    return medians


_ACK_HOURS_SQL = """
    SELECT delivery.study_site_id, delivery.acknowledged_at,
           (EXTRACT(EPOCH FROM delivery.acknowledged_at - delivery.delivered_at) / 3600)
               ::double precision
    FROM {delivery} AS delivery
    JOIN {study_site} AS study_site ON study_site.id = delivery.study_site_id
    WHERE study_site.study_id = %(study)s AND delivery.kind = %(kind)s
      AND delivery.channel = %(channel)s AND delivery.tier = ANY(%(tiers)s)
      AND delivery.delivered_at IS NOT NULL AND delivery.acknowledged_at < %(until)s
    ORDER BY delivery.acknowledged_at
"""


def _median(values: list[float]) -> float:
    """PostgreSQL's ``percentile_cont(0.5)`` of sorted values, to the same last bit."""
    middle = (len(values) - 1) * 0.5
    low = int(middle)
    if middle == low:
        return values[low]
    return values[low] + (values[low + 1] - values[low]) * (middle - low)


def _running_ack_medians(
    study: Study, ends: list[datetime.date], *, study_wide: bool
) -> dict[datetime.date, dict]:
    """``_ack_medians`` for many ends at once: the acknowledgements are read once, in the
    order they came, and each end takes the medians of those before it (in SQL, every end
    would sort every earlier acknowledgement again)."""
    sql = _ACK_HOURS_SQL.format(
        delivery=Delivery._meta.db_table, study_site=StudySite._meta.db_table
    )
    params = {
        "study": study.id,
        "kind": DeliveryKind.MESSAGE,
        "channel": Channel.IN_APP,
        "tiers": list(ACK_TIERS),
        "until": _end_instant(max(ends)),
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    by_site: dict[int | None, tuple[list, list]] = {}
    for site_id, acknowledged_at, hours in rows:
        for key in (site_id, None) if study_wide else (site_id,):
            times, values = by_site.setdefault(key, ([], []))
            times.append(acknowledged_at)
            values.append(hours)
    medians: dict[datetime.date, dict] = {end: {None: (None, 0)} for end in ends}
    for end in ends:
        instant = _end_instant(end)
        for key, (times, values) in by_site.items():
            count = bisect_left(times, instant)
            if count:
                medians[end][key] = (_median(sorted(values[:count])), count)
    return medians


_CRA_COUNTS_SQL = """
    SELECT ends.end_on, assignment.study_site_id, COUNT(DISTINCT assignment.user_id)
    FROM UNNEST(%(ends)s::date[]) AS ends(end_on)
    JOIN {assignment} AS assignment
      ON assignment.start_date < ends.end_on
     AND (assignment.end_date IS NULL
          OR assignment.end_date > ends.end_on - INTERVAL '12 months')
    WHERE assignment.study_id = %(study)s AND assignment.role = %(role)s
      AND assignment.study_site_id IS NOT NULL
    GROUP BY ends.end_on, assignment.study_site_id
"""


def _cra_counts(study: Study, ends: list[datetime.date]) -> dict[datetime.date, dict[int, int]]:
    """``{end: {study_site_id: distinct CRAs}}`` whose assignment overlapped the 12 months
    before each end."""
    counts: dict[datetime.date, dict[int, int]] = {end: {} for end in ends}
    with connection.cursor() as cursor:
        cursor.execute(
            _CRA_COUNTS_SQL.format(assignment=RoleAssignment._meta.db_table),
            {"ends": ends, "study": study.id, "role": StudyRole.CRA},
        )
        for end, site_id, cras in cursor.fetchall():
            counts[end][site_id] = cras
    return counts


def _inputs_by_end(
    study: Study, ends: list[datetime.date], *, totals: bool = True
) -> dict[datetime.date, tuple]:
    """``{end: ({study_site_id: KpiInputs}, (study ack median, n))}`` in four queries (the
    study's median is ``(None, 0)`` unless ``totals``)."""
    # One end: the medians in SQL; a run of ends (a trend): one ordered read, medians here.
    medians = _ack_medians if len(ends) == 1 else _running_ack_medians
    sums, acks = _snapshot_sums(study, ends), medians(study, ends, study_wide=totals)
    cras = _cra_counts(study, ends)
    study_sites = list(
        StudySite.objects.filter(study=study).values(
            "id", "enrolment_target", "selected_on", "activated_on", "first_patient_in_on"
        )
    )
    return {
        end: (
            {
                row["id"]: _site_inputs(row, end, sums[end], acks[end], cras[end])
                for row in study_sites
            },
            acks[end][None],
        )
        for end in ends
    }


def _site_inputs(study_site: dict, end: datetime.date, sums, acks, cras) -> KpiInputs:
    site_id = study_site["id"]
    inputs = KpiInputs(**sums.get(site_id, {}), target=study_site["enrolment_target"])
    selected, activated = study_site["selected_on"], study_site["activated_on"]
    first_patient = study_site["first_patient_in_on"]
    if activated is not None and activated < end:
        inputs.active_enrolled = inputs.enrolled
        inputs.active_months = _months_between(activated, end - datetime.timedelta(days=1))
        if selected is not None:
            inputs.activation_days, inputs.activation_n = (activated - selected).days, 1
        if first_patient is not None and first_patient < end:
            inputs.first_patient_days = (first_patient - activated).days
            inputs.first_patient_n = 1
    inputs.ack_median, inputs.ack_n = acks.get(site_id, (None, 0))
    inputs.cras, inputs.cra_sites = cras.get(site_id, 0), 1
    return inputs


def kpis_from_inputs(
    inputs: KpiInputs, *, fraction: float | None, minimum_samples: dict[str, int]
) -> dict[str, KpiValue]:
    """The 13 KPIs of one group of sums (a study-site, or the study's total)."""
    minimum = {**DEFAULT_MINIMUM_SAMPLES, **minimum_samples}

    def ratio(slug: str, numerator: float, denominator: float, n: int) -> KpiValue:
        if not denominator or n < minimum.get(slug, 0):
            return KpiValue(None, n)
        return KpiValue(round(numerator / denominator, ROUNDING), n)

    expected = inputs.target * fraction if fraction else 0
    ack = inputs.ack_median if inputs.ack_n else None
    kpis = {
        "enrolment_vs_target": ratio(
            "enrolment_vs_target", inputs.enrolled, expected, inputs.enrolled
        ),
        "enrolment_rate": ratio(
            "enrolment_rate", inputs.active_enrolled, inputs.active_months, inputs.active_months
        ),
        "screen_failure_rate": ratio(
            "screen_failure_rate", inputs.screen_failures, inputs.screened, inputs.screened
        ),
        "early_discontinuation_rate": ratio(
            "early_discontinuation_rate", inputs.discontinued, inputs.enrolled, inputs.enrolled
        ),
        "activation_cycle_days": ratio(
            "activation_cycle_days",
            inputs.activation_days,
            inputs.activation_n,
            inputs.activation_n,
        ),
        "days_to_first_patient": ratio(
            "days_to_first_patient",
            inputs.first_patient_days,
            inputs.first_patient_n,
            inputs.first_patient_n,
        ),
        "data_entry_lag_days": ratio(
            "data_entry_lag_days", inputs.lag_weighted, inputs.lag_pages, inputs.lag_pages
        ),
        "query_rate": ratio(
            "query_rate", inputs.queries_opened * 100, inputs.crf_pages, inputs.crf_pages
        ),
        "query_resolution_days": ratio(
            "query_resolution_days",
            inputs.query_resolution_days,
            inputs.queries_resolved,
            inputs.queries_resolved,
        ),
        "deviation_rate": ratio(
            "deviation_rate", inputs.deviations_major, inputs.enrolled, inputs.enrolled
        ),
        "sae_late": ratio("sae_late", inputs.sae_late, 1, inputs.snapshot_months),
        "key_ack_hours": ratio("key_ack_hours", ack or 0, 1, inputs.ack_n)
        if ack is not None
        else KpiValue(None, 0),
        "cra_changes_12m": ratio("cra_changes_12m", inputs.cras, inputs.cra_sites, inputs.cras),
    }
    if inputs.snapshot_months == 0:
        # No snapshot yet: 0 enrolled or 0 late SAEs would read as a result.
        for slug in SNAPSHOT_KPIS:
            kpis[slug] = KpiValue(None, kpis[slug].n)
    return kpis


def study_kpis(
    *, study: Study, period: datetime.date, minimum_samples: dict | None = None
) -> dict[int, dict[str, KpiValue]]:
    """Every study-site's KPIs, cumulative to ``period`` (see the module docstring)."""
    return study_kpis_series(study=study, periods=[period], minimum_samples=minimum_samples)[
        period_bounds(period)[0]
    ]


def study_kpis_series(
    *, study: Study, periods: list[datetime.date], minimum_samples: dict | None = None
) -> dict[datetime.date, dict[int, dict[str, KpiValue]]]:
    """``{period: {study_site_id: {slug: KpiValue}}}`` for several months at once (a trend),
    in the same four queries as one month."""
    return study_kpis_series_with_totals(
        study=study, periods=periods, minimum_samples=minimum_samples, totals=False
    )[0]


def study_kpis_series_with_totals(
    *,
    study: Study,
    periods: list[datetime.date],
    minimum_samples: dict | None = None,
    totals: bool = True,
) -> tuple[dict, dict[str, KpiValue] | None]:
    """``study_kpis_series`` and, from the same four queries, the study's totals at the
    latest of the periods (see ``study_totals``; ``None`` unless ``totals``)."""
    months = sorted({period_bounds(period)[0] for period in periods})
    ends = [period_bounds(month)[1] for month in months]
    by_end = _inputs_by_end(study, ends, totals=totals)
    minimum_samples = minimum_samples or {}
    series = {}
    for month, end in zip(months, ends, strict=True):
        fraction = elapsed_fraction(study, end)
        series[month] = {
            site_id: kpis_from_inputs(inputs, fraction=fraction, minimum_samples=minimum_samples)
            for site_id, inputs in by_end[end][0].items()
        }
    if not totals:
        return series, None
    return series, _totals(study, ends[-1], *by_end[ends[-1]], minimum_samples)


def _totals(study: Study, end, by_site, study_ack, minimum_samples: dict) -> dict[str, KpiValue]:
    total = sum(by_site.values(), KpiInputs(cra_sites=0))
    total.ack_median, total.ack_n = study_ack
    return kpis_from_inputs(
        total, fraction=elapsed_fraction(study, end), minimum_samples=minimum_samples
    )


def study_totals(
    *, study: Study, period: datetime.date, minimum_samples: dict | None = None
) -> dict[str, KpiValue]:
    """The study's KPIs as ratios of the sums over its study-sites (never means of ratios);
    ``key_ack_hours`` is the median over all the study's acknowledgements, and
    ``cra_changes_12m`` the distinct CRAs per study-site (sum over sites ÷ sites)."""
    _, end = period_bounds(period)
    return _totals(study, end, *_inputs_by_end(study, [end])[end], minimum_samples or {})


__all__ = [
    "DEFAULT_MINIMUM_SAMPLES",
    "KPI_SLUGS",
    "KpiInputs",
    "KpiValue",
    "kpis_from_inputs",
    "study_kpis",
    "study_kpis_series",
    "study_kpis_series_with_totals",
    "study_totals",
]
