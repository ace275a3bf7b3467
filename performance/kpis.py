"""The KPI engine: PRODUCT.md "Performance" KPIs per study-site, cumulative to a period.

``study_kpis`` returns ``{study_site_id: {slug: KpiValue(value, n)}}`` for every study-site of
a study; ``study_totals`` the same KPIs for the study as a whole. Both read a constant number
of queries whatever the number of sites and months: the snapshot sums grouped by study-site
(one), the study-sites' targets and milestones (one), the acknowledgement medians (one) and
the CRA history (one). The divisions are done on those few aggregated rows.

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
from dataclasses import dataclass, fields
from typing import NamedTuple

from django.db.models import Count, F, FloatField, Q, Sum
from django.db.models.functions import Cast

from comms.models import ACK_TIERS, Channel, Delivery, DeliveryKind
from comms.stats import Hours, Median
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


def _snapshot_sums(study: Study, end: datetime.date) -> dict[int, dict]:
    lag = Cast("data_entry_lag_days", FloatField())
    with_lag = Q(data_entry_lag_days__isnull=False)
    rows = (
        MetricSnapshot.objects.filter(study_site__study=study, period__lt=end)
        .values("study_site_id")
        .annotate(
            # Prefixed: an alias equal to a column name would shadow it in the other sums.
            **{f"sum_{name}": Sum(name) for name in SUMMED_FIELDS},
            sum_snapshot_months=Count("id"),
            sum_lag_weighted=Sum(lag * F("crf_pages"), filter=with_lag, output_field=FloatField()),
            sum_lag_pages=Sum("crf_pages", filter=with_lag),
        )
        .order_by()
    )
    return {
        row.pop("study_site_id"): {
            name.removeprefix("sum_"): value or 0 for name, value in row.items()
        }
        for row in rows
    }


def _ack_medians(study: Study, end: datetime.date) -> dict[int | None, tuple[float | None, int]]:
    """Median acknowledgement hours per study-site and for the whole study (key ``None``)."""
    acknowledged = (
        Delivery.objects.filter(
            study_site__study=study,
            kind=DeliveryKind.MESSAGE,
            channel=Channel.IN_APP,
            tier__in=ACK_TIERS,
            delivered_at__isnull=False,
            acknowledged_at__lt=datetime.datetime.combine(
                end, datetime.time(), tzinfo=datetime.UTC
            ),
        )
        .annotate(hours=Hours(F("acknowledged_at") - F("delivered_at")))
        .order_by()
    )
    per_site = acknowledged.values("study_site_id").annotate(median=Median("hours"), n=Count("id"))
    overall = acknowledged.aggregate(median=Median("hours"), n=Count("id"))
    medians: dict[int | None, tuple[float | None, int]] = {
        row["study_site_id"]: (row["median"], row["n"]) for row in per_site
    }
    medians[None] = (overall["median"], overall["n"])
    return medians


def _cra_counts(study: Study, end: datetime.date) -> dict[int, int]:
    since = end.replace(year=end.year - 1)
    rows = (
        RoleAssignment.objects.filter(
            study=study, role=StudyRole.CRA, study_site__isnull=False, start_date__lt=end
        )
        .filter(Q(end_date__isnull=True) | Q(end_date__gt=since))
        .values("study_site_id")
        .annotate(cras=Count("user_id", distinct=True))
        .order_by()
    )
    return {row["study_site_id"]: row["cras"] for row in rows}


def _inputs_by_site(study: Study, end: datetime.date) -> tuple[dict[int, KpiInputs], tuple]:
    sums = _snapshot_sums(study, end)
    acks = _ack_medians(study, end)
    cras = _cra_counts(study, end)
    study_sites = StudySite.objects.filter(study=study).values(
        "id", "enrolment_target", "selected_on", "activated_on", "first_patient_in_on"
    )
    last_day = end - datetime.timedelta(days=1)
    by_site: dict[int, KpiInputs] = {}
    for study_site in study_sites:
        site_id = study_site["id"]
        inputs = KpiInputs(**sums.get(site_id, {}), target=study_site["enrolment_target"])
        selected, activated = study_site["selected_on"], study_site["activated_on"]
        first_patient = study_site["first_patient_in_on"]
        if activated is not None and activated < end:
            inputs.active_enrolled = inputs.enrolled
            inputs.active_months = _months_between(activated, last_day)
            if selected is not None:
                inputs.activation_days, inputs.activation_n = (activated - selected).days, 1
            if first_patient is not None and first_patient < end:
                inputs.first_patient_days = (first_patient - activated).days
                inputs.first_patient_n = 1
        inputs.ack_median, inputs.ack_n = acks.get(site_id, (None, 0))
        inputs.cras, inputs.cra_sites = cras.get(site_id, 0), 1
        by_site[site_id] = inputs
    return by_site, acks[None]


def _ratio(numerator: float, denominator: float, n: int, minimum: int) -> KpiValue:
    if not denominator or n < minimum:
        return KpiValue(None, n)
    return KpiValue(round(numerator / denominator, ROUNDING), n)


def kpis_from_inputs(
    inputs: KpiInputs, *, fraction: float | None, minimum_samples: dict[str, int]
) -> dict[str, KpiValue]:
    """The 13 KPIs of one group of sums (a study-site, or the study's total)."""
    minimum = {**DEFAULT_MINIMUM_SAMPLES, **minimum_samples}

    def ratio(slug: str, numerator: float, denominator: float, n: int) -> KpiValue:
        return _ratio(numerator, denominator, n, minimum.get(slug, 0))

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
    _, end = period_bounds(period)
    fraction = elapsed_fraction(study, end)
    by_site, _ = _inputs_by_site(study, end)
    return {
        site_id: kpis_from_inputs(inputs, fraction=fraction, minimum_samples=minimum_samples or {})
        for site_id, inputs in by_site.items()
    }


def study_totals(
    *, study: Study, period: datetime.date, minimum_samples: dict | None = None
) -> dict[str, KpiValue]:
    """The study's KPIs as ratios of the sums over its study-sites (never means of ratios);
    ``key_ack_hours`` is the median over all the study's acknowledgements, and
    ``cra_changes_12m`` the distinct CRAs per study-site (sum over sites ÷ sites)."""
    _, end = period_bounds(period)
    by_site, (ack_median, ack_n) = _inputs_by_site(study, end)
    total = sum(by_site.values(), KpiInputs(cra_sites=0))
    total.ack_median, total.ack_n = ack_median, ack_n
    return kpis_from_inputs(
        total, fraction=elapsed_fraction(study, end), minimum_samples=minimum_samples or {}
    )


__all__ = [
    "DEFAULT_MINIMUM_SAMPLES",
    "KPI_SLUGS",
    "KpiInputs",
    "KpiValue",
    "kpis_from_inputs",
    "study_kpis",
    "study_totals",
]
