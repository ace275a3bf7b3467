"""Scorecard pages of a study: its scorecard (and its CSV), its settings and recognitions
(a study-site's and a site's pages are in ``views_site_scorecards``).

Same rules as ``trialhub.views``: studies, study-sites and sites come through the selectors
(404 outside reach), 403 only for people who see a page but may not act on it, every write
goes through ``performance.services.scorecards``. A site's people see only their own rows
(with their real rank "3 of 12"), never a chart, a distribution or the study totals: those
are built from the other sites' numbers. Every page reads a constant number of queries
whatever the number of sites (the KPI engine works on a few aggregated rows).
"""

from __future__ import annotations

import csv
import datetime
import statistics

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from performance.exports import csv_row
from performance.forms_scorecards import (
    AnnounceForm,
    AwardForm,
    ScorecardFilterForm,
    ScorecardSettingsForm,
    safe_period,
)
from performance.models import MetricSnapshot
from performance.permissions import can_manage_scorecard
from performance.scorecards import (
    DEFAULT_KPI_SETTINGS,
    DEFAULT_MINIMUM_KPIS,
    HIGHER,
    TREND_MONTHS,
    Scorecard,
    ScorecardSettings,
    study_settings,
)
from performance.selectors.scorecards import (
    is_site_user,
    recognitions_for_user,
    scorecard_for_user,
)
from performance.services.scorecards import (
    quarter_label,
    quarter_start,
    recognitions_announce,
    recognitions_award,
    scorecard_config_update,
)
from performance.templatetags.scorecard_tags import kpi_value
from sites.models import StudySiteStatus
from trialhub.selectors import study_for_user

STATUS_LABELS = dict(StudySiteStatus.choices)


# --- helpers --------------------------------------------------------------------------------


def _sort_key(sort: str):
    if sort == "rank":
        return lambda row: row.rank
    if sort == "site":
        return lambda row: row.site_name.casefold()
    if sort == "country":
        return lambda row: row.country
    if sort == "status":
        return lambda row: row.status
    if sort == "score":
        return lambda row: row.score
    return lambda row: row.kpis[sort].value


def sort_rows(rows: list, sort: str, direction: str) -> list:
    """Rows sorted by a column; rows without a value sort last in either direction."""
    key = _sort_key(sort)
    present = sorted(
        (row for row in rows if key(row) is not None),
        key=lambda row: (key(row), row.site_name.casefold()),
        reverse=direction == "desc",
    )
    return present + [row for row in rows if key(row) is None]


def _natural_direction(sort: str, settings: ScorecardSettings) -> str:
    """The first click on a column shows the best first."""
    if sort == "score":
        return "desc"
    if sort in settings.kpis:
        return "desc" if settings.kpis[sort].better == HIGHER else "asc"
    return "asc"


def _query(request: HttpRequest, **changes) -> str:
    query = request.GET.copy()
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    encoded = query.urlencode()
    return f"?{encoded}" if encoded else ""


def _headers(request, settings: ScorecardSettings, sort: str, direction: str) -> list[dict]:
    columns = [("rank", "Rank"), ("site", "Site"), ("country", "Country"), ("status", "Status")]
    columns.append(("score", "Score"))
    headers = []
    for key, label in [*columns, *((s, k.label) for s, k in settings.kpis.items())]:
        current = key == sort
        next_direction = (
            ("desc" if direction == "asc" else "asc")
            if current
            else _natural_direction(key, settings)
        )
        setting = settings.kpis.get(key)
        headers.append(
            {
                "key": key,
                "label": label,
                "url": _query(request, sort=key, dir=next_direction),
                "current": current,
                "aria_sort": (
                    ("ascending" if direction == "asc" else "descending") if current else None
                ),
                "setting": setting,
                "counted": setting is None or key in settings.counted,
                "is_kpi": setting is not None,
            }
        )
    return headers


def _filtered_card(request: HttpRequest, study_id: int, *, charts: bool) -> dict:
    """The scorecard as the user may see it, with the page's GET filters applied to its rows
    (ranks stay those among all the study's sites)."""
    today = timezone.localdate()
    site_user = is_site_user(request.user)
    card = scorecard_for_user(
        request.user,
        study_id,
        period=safe_period(request.GET.get("period"), today),
        today=today,
        trend_months=TREND_MONTHS if charts and not site_user else 0,
        with_totals=charts and not site_user,
    )
    countries = sorted({row.country for row in card.rows})
    # The month and the chart's KPI in use show as chosen even when the URL leaves them out.
    data = request.GET.copy()
    data.setdefault("period", f"{card.period:%Y-%m}")
    data.setdefault("kpi", next(iter(card.settings.counted), "enrolment_vs_target"))
    form = ScorecardFilterForm(data, today=today, countries=countries, settings=card.settings)
    form.is_valid()
    rows = card.rows
    if country := form.value("country"):
        rows = [row for row in rows if row.country == country]
    if status := form.value("status"):
        rows = [row for row in rows if row.status == status]
    sort = form.value("sort", "rank")
    direction = form.value("dir") or _natural_direction(sort, card.settings)
    rows = sort_rows(rows, sort, direction)
    return {
        "card": card,
        "study": card.study,
        "rows": rows,
        "form": form,
        "sort": sort,
        "direction": direction,
        "site_user": site_user,
        "filtered": bool(form.value("country") or form.value("status")),
    }


def _chart_data(card: Scorecard, rows: list, kpi: str) -> dict:
    months = [month for month, _ in rows[0].trend] if rows else []
    trend = {
        "labels": [f"{month:%Y-%m}" for month in months],
        "series": [
            {"label": row.site_name, "data": [score for _, score in row.trend]} for row in rows
        ],
    }
    setting = card.settings.kpis[kpi]
    with_value = sorted(
        (row for row in rows if row.kpis[kpi].value is not None),
        key=lambda row: row.kpis[kpi].value,
    )
    values = [row.kpis[kpi].value for row in with_value]
    distribution = {
        "kpi": kpi,
        "label": setting.label,
        "unit": setting.unit,
        "percent": setting.unit == "fraction",
        "labels": [row.site_name for row in with_value],
        "values": [_chart_number(value, setting.unit) for value in values],
        "rags": [row.kpis[kpi].rag for row in with_value],
        "green": _chart_number(setting.green, setting.unit),
        "red": _chart_number(setting.red, setting.unit),
    }
    unit = "percentages" if setting.unit == "fraction" else setting.unit
    if values:
        summary = (
            f"{setting.label} across the {_sites(len(values))} shown with enough data: lowest "
            f"{kpi_value(values[0], setting.unit)}, median "
            f"{kpi_value(statistics.median(values), setting.unit)}, highest "
            f"{kpi_value(values[-1], setting.unit)} ({unit})."
        )
    else:
        summary = f"No site shown has enough data for {setting.label} this month."
    scored_now = sum(row.score is not None for row in rows)
    trend_summary = (
        f"Composite score (0–100) of the {_sites(len(rows))} shown, month by month for the "
        f"{len(months)} months to {card.period:%B %Y}; {scored_now} of them "
        f"{'has' if scored_now == 1 else 'have'} a score this month. The table lists every number."
    )
    return {
        "trend": trend,
        "distribution": distribution,
        "trend_summary": trend_summary,
        "distribution_summary": summary,
    }


def _sites(count: int) -> str:
    return f"{count} site{'' if count == 1 else 's'}"


def _chart_number(value: float, unit: str) -> float:
    """A KPI value on the chart's scale (fractions as percentages)."""
    return round(value * 100, 2) if unit == "fraction" else value


def _award_quarters(study, today: datetime.date) -> list[tuple[datetime.date, str]]:
    """Quarters that have ended and have snapshots, newest first (one query)."""
    months = MetricSnapshot.objects.filter(study_site__study=study).dates("period", "month")
    current = quarter_start(today)
    quarters = sorted({quarter_start(month) for month in months if month < current}, reverse=True)
    return [(quarter, quarter_label(quarter)) for quarter in quarters]


def _recognition_groups(recognitions) -> list[dict]:
    groups: dict[datetime.date, dict] = {}
    for recognition in recognitions:
        group = groups.setdefault(
            recognition.quarter,
            {"quarter": recognition.quarter, "label": quarter_label(recognition.quarter)},
        )
        group.setdefault("items", []).append(recognition)
        if recognition.announced_at is None:
            group["pending"] = group.get("pending", 0) + 1
    return list(groups.values())


def _study_recognitions(user, study, site_user: bool):
    recognitions = recognitions_for_user(user, study=study).order_by(
        "-quarter", "rank", "study_site__site__name"
    )
    if site_user:
        # Unannounced recognitions may still be re-awarded: a site learns of its own once told.
        recognitions = recognitions.filter(announced_at__isnull=False)
    return _recognition_groups(recognitions)


# --- the study scorecard ----------------------------------------------------------------------


@login_required
@require_GET
def study_scorecard_page(request: HttpRequest, study_id: int) -> HttpResponse:
    data = _filtered_card(request, study_id, charts=True)
    card, rows, site_user = data["card"], data["rows"], data["site_user"]
    study = card.study
    can_manage = not site_user and can_manage_scorecard(request.user, study)
    kpi = data["form"].value("kpi") or next(iter(card.settings.counted), "enrolment_vs_target")
    context = {
        **data,
        "settings": card.settings,
        "kpis": list(card.settings.kpis.items()),
        "headers": _headers(request, card.settings, data["sort"], data["direction"]),
        "ranked": card.ranked,
        "totals": card.totals,
        "can_manage": can_manage,
        "chosen_kpi": kpi,
        "charts": None if site_user else _chart_data(card, rows, kpi),
        "csv_url": reverse("study-scorecard-csv", args=[study.id]) + _query(request),
        "recognitions": _study_recognitions(request.user, study, site_user),
        "today": timezone.localdate(),
    }
    if can_manage:
        quarters = _award_quarters(study, context["today"])
        context["award_form"] = AwardForm(quarters=quarters) if quarters else None
    return render(request, "performance/scorecards/study_scorecard.html", context)


@login_required
@require_GET
def study_scorecard_csv(request: HttpRequest, study_id: int) -> HttpResponse:
    data = _filtered_card(request, study_id, charts=False)
    card = data["card"]
    slugs = list(card.settings.kpis)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    filename = f"{card.study.code}-scorecard-{card.period:%Y-%m}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    header = ["rank", "study_site", "site", "country", "status", "score"]
    writer.writerow(header + [f"{slug}{suffix}" for slug in slugs for suffix in ("", "_n", "_rag")])
    for row in data["rows"]:
        line = [row.rank, row.study_site_id, row.site_name, row.country, row.status, row.score]
        for slug in slugs:
            kpi = row.kpis[slug]
            line.extend([kpi.value, kpi.n, kpi.rag])
        writer.writerow(csv_row(line))
    return response


# --- settings ---------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def study_scorecard_settings(request: HttpRequest, study_id: int) -> HttpResponse:
    """Everyone in reach reads the effective settings and the documented defaults; the
    sponsor lead edits them (403 for the others' POSTs)."""
    study = study_for_user(request.user, study_id)
    can_manage = can_manage_scorecard(request.user, study)
    settings = study_settings(study)
    form, status = None, 200
    if request.method == "POST":
        if not can_manage:
            raise PermissionDenied("Only the study's sponsor lead changes its scorecard.")
        if "reset" in request.POST:
            scorecard_config_update(
                study=study, actor=request.user, kpis={}, minimum_kpis=DEFAULT_MINIMUM_KPIS
            )
            messages.success(request, "Scorecard settings reset to the defaults.")
            return redirect("study-scorecard-settings", study_id=study.id)
        form = ScorecardSettingsForm(request.POST, settings=settings)
        if form.is_valid():
            try:
                scorecard_config_update(
                    study=study,
                    actor=request.user,
                    kpis=form.kpis_payload(),
                    minimum_kpis=form.cleaned_data["minimum_kpis"],
                )
            except ValidationError as error:
                form.add_service_error(error)
            else:
                messages.success(request, "Scorecard settings saved; the scorecard uses them now.")
                return redirect("study-scorecard-settings", study_id=study.id)
        status = 400
    elif can_manage:
        form = ScorecardSettingsForm(settings=settings)
    rows = [
        {
            "slug": slug,
            "setting": setting,
            "default": DEFAULT_KPI_SETTINGS[slug],
            "counted": slug in settings.counted,
            "changed": setting != DEFAULT_KPI_SETTINGS[slug],
        }
        for slug, setting in settings.kpis.items()
    ]
    if form is not None:
        for row, form_row in zip(rows, form.rows(), strict=True):
            row.update(fields=form_row["fields"], errors=form_row["errors"])
    context = {
        "study": study,
        "settings": settings,
        "rows": rows,
        "form": form,
        "can_manage": can_manage,
        "default_minimum_kpis": DEFAULT_MINIMUM_KPIS,
    }
    return render(request, "performance/scorecards/settings.html", context, status=status)


# --- recognitions -----------------------------------------------------------------------------


@login_required
@require_POST
def study_recognitions_award(request: HttpRequest, study_id: int) -> HttpResponse:
    study = study_for_user(request.user, study_id)
    if not can_manage_scorecard(request.user, study):
        raise PermissionDenied("Only the study's sponsor lead awards recognitions.")
    quarters = _award_quarters(study, timezone.localdate())
    form = AwardForm(request.POST, quarters=quarters)
    if not form.is_valid():
        messages.error(request, "Choose a quarter that has ended and has numbers.")
    else:
        quarter = form.cleaned_data["quarter"]
        recognitions = recognitions_award(study=study, quarter=quarter)
        if recognitions:
            names = ", ".join(r.study_site.site.name for r in recognitions)
            messages.success(
                request,
                f"{quarter_label(quarter)}: {len(recognitions)} site(s) in the top quartile "
                f"({names}). Announce it to tell them.",
            )
        else:
            messages.warning(
                request, f"{quarter_label(quarter)}: no site had a composite score to rank."
            )
    return redirect(reverse("study-scorecard", args=[study.id]) + "#recognitions")


@login_required
@require_POST
def study_recognitions_announce(request: HttpRequest, study_id: int) -> HttpResponse:
    study = study_for_user(request.user, study_id)
    if not can_manage_scorecard(request.user, study):
        raise PermissionDenied("Only the study's sponsor lead announces recognitions.")
    form = AnnounceForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a quarter to announce.")
    else:
        quarter = form.cleaned_data["quarter"]
        try:
            message = recognitions_announce(study=study, quarter=quarter, actor=request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(
                request,
                f"{quarter_label(quarter)} recognitions announced to the recognised sites: "
                f"“{message.subject}” is {message.get_status_display().lower()}.",
            )
    return redirect(reverse("study-scorecard", args=[study.id]) + "#recognitions")
