"""Scorecards: KPI settings, RAG status, composite score, rank and monthly trend.

Built on ``performance.kpis`` (the numbers); this module only judges them.

- Each KPI has a setting (``KpiSetting``): counted or not, weight, green and red thresholds,
  minimum sample. Defaults (``DEFAULT_KPI_SETTINGS``) follow common risk-based-monitoring
  practice; a study's ``ScorecardConfig`` stores only what its sponsor lead changed.
- RAG: a higher-is-better KPI is green at or above ``green``, red below ``red``, amber between;
  a lower-is-better one green at or below ``green``, red above ``red``. No value → no RAG.
- Points: each KPI maps linearly to 0 at its red threshold and 100 at its green one, clamped.
- Composite (0–100): the weight-normalised mean of the points of the counted KPIs that have
  enough data; ``None`` while fewer than ``minimum_kpis`` of them have data.
- Rank: 1 for the best composite in the study; ties share a rank (1, 2, 2, 4); no composite,
  no rank.

Tenancy: none here; callers pass a study resolved through ``performance.selectors``.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field, replace
from functools import cached_property

from django.db.models import Max

from performance.kpis import KPI_SLUGS, KpiValue, period_bounds, study_kpis_series_with_totals
from performance.models import MetricSnapshot, ScorecardConfig
from sites.models import StudySite
from trialhub.models import Study

HIGHER, LOWER = "higher", "lower"
TREND_MONTHS = 12
DEFAULT_MINIMUM_KPIS = 3


@dataclass(frozen=True)
class KpiSetting:
    label: str
    better: str
    green: float
    red: float
    weight: float
    minimum_samples: int
    unit: str
    rationale: str
    enabled: bool = True


DEFAULT_KPI_SETTINGS: dict[str, KpiSetting] = {
    "enrolment_vs_target": KpiSetting(
        "Enrolment vs target", HIGHER, 0.9, 0.8, 3, 0, "fraction",
        "Amber below 90% of the pro-rata target, red below 80% (common RBM key risk indicator).",
    ),
    "enrolment_rate": KpiSetting(
        "Enrolment rate", HIGHER, 1.0, 0.5, 2, 1, "patients/month",
        "One patient a month per activated site is a typical planning assumption.",
    ),
    "screen_failure_rate": KpiSetting(
        "Screen-failure rate", LOWER, 0.3, 0.5, 1, 10, "fraction",
        "Above half the screened patients failing points at pre-screening problems.",
    ),
    "early_discontinuation_rate": KpiSetting(
        "Early discontinuation", LOWER, 0.1, 0.2, 1, 5, "fraction",
        "Retention risk: more than one in five patients leaving early.",
    ),
    "activation_cycle_days": KpiSetting(
        "Activation cycle", LOWER, 90, 180, 1, 1, "days",
        "Selection to site initiation visit: 90 days is the usual start-up target; "
        "twice that is red.",
    ),
    "days_to_first_patient": KpiSetting(
        "Time to first patient", LOWER, 30, 60, 1, 1, "days",
        "A site enrolling within a month of activation keeps the study on plan.",
    ),
    "data_entry_lag_days": KpiSetting(
        "Data-entry lag", LOWER, 5, 7, 2, 10, "days",
        "Amber above 5 days from visit to entry, red above 7 (common RBM threshold).",
    ),
    "query_rate": KpiSetting(
        "Query rate", LOWER, 8, 15, 1, 50, "per 100 pages",
        "Queries per 100 CRF pages; a high rate signals data-quality problems.",
    ),
    "query_resolution_days": KpiSetting(
        "Query resolution", LOWER, 7, 14, 1, 5, "days",
        "Queries answered within a week; over two weeks delays database lock.",
    ),
    "deviation_rate": KpiSetting(
        "Major deviations", LOWER, 0.1, 0.25, 2, 5, "per patient",
        "Major protocol deviations per enrolled patient.",
    ),
    "sae_late": KpiSetting(
        "Late SAE reports", LOWER, 0, 2, 2, 1, "reports",
        "Any serious adverse event reported after 24 h is a finding; two or more is red.",
    ),
    "key_ack_hours": KpiSetting(
        "Key-message response", LOWER, 24, 72, 1, 3, "hours",
        "Median hours to acknowledge key and critical messages (due within 24–48 h).",
    ),
    "cra_changes_12m": KpiSetting(
        "CRA continuity", LOWER, 1, 3, 1, 1, "CRAs in 12 months",
        "One CRA a year is continuity; three or more is churn that costs the site time.",
    ),
}  # fmt: skip
assert tuple(DEFAULT_KPI_SETTINGS) == KPI_SLUGS  # noqa: S101 - import-time consistency check
EDITABLE_FIELDS = ("enabled", "weight", "green", "red", "minimum_samples")


@dataclass(frozen=True)
class ScorecardSettings:
    kpis: dict[str, KpiSetting]
    minimum_kpis: int = DEFAULT_MINIMUM_KPIS

    # Cached: a scorecard of 1,000 sites asks for these once per site and month.
    @cached_property
    def minimum_samples(self) -> dict[str, int]:
        return {slug: setting.minimum_samples for slug, setting in self.kpis.items()}

    @cached_property
    def counted(self) -> list[str]:
        return [slug for slug, s in self.kpis.items() if s.enabled and s.weight > 0]

    @cached_property
    def counted_settings(self) -> list[tuple[str, KpiSetting]]:
        return [(slug, self.kpis[slug]) for slug in self.counted]


def effective_settings(config: ScorecardConfig | None) -> ScorecardSettings:
    """The defaults with a study's stored changes applied (unknown keys are ignored)."""
    if config is None:
        return ScorecardSettings(kpis=dict(DEFAULT_KPI_SETTINGS))
    kpis = {}
    for slug, default in DEFAULT_KPI_SETTINGS.items():
        changes = config.kpis.get(slug, {})
        kpis[slug] = replace(default, **{k: v for k, v in changes.items() if k in EDITABLE_FIELDS})
    return ScorecardSettings(kpis=kpis, minimum_kpis=config.minimum_kpis)


def study_settings(study: Study) -> ScorecardSettings:
    return effective_settings(ScorecardConfig.objects.filter(study=study).first())


def rag(value: float | None, setting: KpiSetting) -> str | None:
    if value is None:
        return None
    if setting.better == HIGHER:
        return "green" if value >= setting.green else "red" if value < setting.red else "amber"
    return "green" if value <= setting.green else "red" if value > setting.red else "amber"


def points(value: float | None, setting: KpiSetting) -> float | None:
    """0 at the red threshold, 100 at the green one, linear between and clamped."""
    if value is None:
        return None
    if setting.green == setting.red:
        return 100.0 if rag(value, setting) == "green" else 0.0
    share = (value - setting.red) / (setting.green - setting.red)
    return min(max(share, 0.0), 1.0) * 100


def composite(kpis: dict[str, KpiValue], settings: ScorecardSettings) -> float | None:
    # A plain loop: a 1,000-site trend calls this 12,000 times.
    counted = total_weight = weighted = 0
    for slug, setting in settings.counted_settings:
        value = kpis[slug].value
        if value is not None:
            counted += 1
            total_weight += setting.weight
            weighted += setting.weight * points(value, setting)
    if counted < settings.minimum_kpis:
        return None
    return round(weighted / total_weight, 1)


def ranks(scores: dict[int, float | None]) -> dict[int, int | None]:
    """Competition ranking of the scored keys (1 = best; ties share a rank)."""
    ordered = sorted((score for score in scores.values() if score is not None), reverse=True)
    first_place = {}
    for place, score in enumerate(ordered, start=1):
        first_place.setdefault(score, place)
    return {
        key: first_place.get(score) if score is not None else None for key, score in scores.items()
    }


@dataclass(slots=True)
class KpiCell:
    value: float | None
    n: int
    rag: str | None
    counted: bool


@dataclass
class ScorecardRow:
    study_site_id: int
    site_id: int
    site_name: str
    country: str
    status: str
    score: float | None
    rank: int | None
    kpis: dict[str, KpiCell]
    trend: list[tuple[datetime.date, float | None]] = field(default_factory=list)


@dataclass
class Scorecard:
    study: Study
    period: datetime.date
    settings: ScorecardSettings
    rows: list[ScorecardRow]
    ranked: int = 0  # the study's sites with a composite (the N of "rank 3 of N")
    totals: dict[str, KpiCell] | None = None

    def as_api(self) -> dict:
        """PRODUCT.md's scorecard response."""
        return {
            "study": self.study.id,
            "period": f"{self.period:%Y-%m}",
            "sites": [
                {
                    "study_site": row.study_site_id,
                    "site": row.site_id,
                    "site_name": row.site_name,
                    "score": row.score,
                    "rank": row.rank,
                    "kpis": {
                        slug: {"value": cell.value, "n": cell.n, "rag": cell.rag}
                        for slug, cell in row.kpis.items()
                    },
                }
                for row in self.rows
            ],
        }


def latest_period(study: Study) -> datetime.date | None:
    """The latest month with snapshots in the study (the scorecard's default period)."""
    return MetricSnapshot.objects.filter(study_site__study=study).aggregate(latest=Max("period"))[
        "latest"
    ]


def default_period(study: Study, today: datetime.date) -> datetime.date:
    return latest_period(study) or today.replace(day=1)


def _cells(kpis: dict[str, KpiValue], settings: ScorecardSettings) -> dict[str, KpiCell]:
    counted, judged = settings.counted, settings.kpis
    return {
        slug: KpiCell(value.value, value.n, rag(value.value, judged[slug]), slug in counted)
        for slug, value in kpis.items()
    }


def months_back(period: datetime.date, count: int) -> list[datetime.date]:
    month_index = period.year * 12 + period.month - 1
    return [
        datetime.date((month_index - back) // 12, (month_index - back) % 12 + 1, 1)
        for back in range(count - 1, -1, -1)
    ]


def study_scorecard(
    *,
    study: Study,
    period: datetime.date,
    study_site_ids: set[int] | None = None,
    trend_months: int = 0,
    settings: ScorecardSettings | None = None,
    with_totals: bool = False,
) -> Scorecard:
    """Every study-site's KPIs with RAG, composite and rank at ``period``, best first.

    Ranks are always among **all** the study's sites; ``study_site_ids`` only limits the rows
    returned (a site's own row keeps its real rank). ``trend_months`` > 0 adds each row's
    composite for that many months up to ``period`` (same queries, one pass).
    """
    settings = settings or study_settings(study)
    period = period_bounds(period)[0]
    months = months_back(period, max(trend_months, 1))
    series, totals = study_kpis_series_with_totals(
        study=study, periods=months, minimum_samples=settings.minimum_samples, totals=with_totals
    )
    current = series[period]
    scores = {site_id: composite(kpis, settings) for site_id, kpis in current.items()}
    site_ranks = ranks(scores)
    study_sites = StudySite.objects.filter(study=study).values(
        "id", "site_id", "site__name", "site__country", "status"
    )
    rows = []
    for study_site in study_sites:
        site_id = study_site["id"]
        if study_site_ids is not None and site_id not in study_site_ids:
            continue
        trend = (
            [(month, composite(series[month][site_id], settings)) for month in months]
            if trend_months
            else []
        )
        rows.append(
            ScorecardRow(
                study_site_id=site_id,
                site_id=study_site["site_id"],
                site_name=study_site["site__name"],
                country=study_site["site__country"],
                status=study_site["status"],
                score=scores[site_id],
                rank=site_ranks[site_id],
                kpis=_cells(current[site_id], settings),
                trend=trend,
            )
        )
    rows.sort(key=lambda row: (row.rank is None, row.rank or 0, row.site_name))
    return Scorecard(
        study=study,
        period=period,
        settings=settings,
        rows=rows,
        ranked=sum(score is not None for score in scores.values()),
        totals=_cells(totals, settings) if with_totals else None,
    )


__all__ = [
    "DEFAULT_KPI_SETTINGS",
    "EDITABLE_FIELDS",
    "HIGHER",
    "LOWER",
    "KpiCell",
    "KpiSetting",
    "Scorecard",
    "ScorecardRow",
    "ScorecardSettings",
    "composite",
    "default_period",
    "effective_settings",
    "latest_period",
    "months_back",
    "points",
    "rag",
    "ranks",
    "study_scorecard",
    "study_settings",
]
