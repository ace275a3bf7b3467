"""Scorecard pages of one study-site and of one site across its studies.

A study-site's monthly history (``/study-sites/<id>/scorecard/``, and ``scorecard.csv``), a
site's own scorecards across every study and sponsor (``/my-site/scorecards/``, site people)
and a site's history as a sponsor or CRO sees it (``/sites/<id>/scorecards/``, their own
studies only). Tenancy comes from ``sites.selectors`` and ``performance.selectors.scorecards``:
404 outside reach.
"""

from __future__ import annotations

import csv

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from performance.exports import csv_row
from performance.forms_scorecards import HistoryMonthsForm
from performance.kpis import study_kpis_series
from performance.scorecards import (
    TREND_MONTHS,
    KpiCell,
    composite,
    default_period,
    months_back,
    rag,
    ranks,
    study_settings,
)
from performance.selectors.scorecards import (
    is_site_user,
    recognitions_for_user,
    site_history_for_user,
)
from performance.services.scorecards import quarter_label
from sites.selectors import own_site_for_user, site_for_user, study_site_for_user

# --- a study-site's history -------------------------------------------------------------------


def _study_site_history(request: HttpRequest, study_site_id: int) -> dict:
    """A study-site's months as the page shows them (``?months=``, 12 by default), oldest
    first: composite, rank of N and every KPI with its RAG, from one KPI series of the whole
    study (four queries for any number of months and sites). 404 outside reach."""
    study_site = study_site_for_user(request.user, study_site_id)
    study = study_site.study
    form = HistoryMonthsForm(
        request.GET if "months" in request.GET else None, initial={"months": TREND_MONTHS}
    )
    count = (form.cleaned_data["months"] or TREND_MONTHS) if form.is_valid() else TREND_MONTHS
    settings = study_settings(study)
    period = default_period(study, timezone.localdate())
    months = months_back(period, count)
    series = study_kpis_series(
        study=study, periods=months, minimum_samples=settings.minimum_samples
    )
    counted = set(settings.counted)
    history = []
    for month in months:
        scores = {site_id: composite(kpis, settings) for site_id, kpis in series[month].items()}
        month_ranks = ranks(scores)
        own = series[month][study_site.id]
        history.append(
            {
                "month": month,
                "score": scores[study_site.id],
                "rank": month_ranks[study_site.id],
                "ranked": sum(score is not None for score in scores.values()),
                "kpis": {
                    slug: KpiCell(
                        value.value, value.n, rag(value.value, settings.kpis[slug]), slug in counted
                    )
                    for slug, value in own.items()
                },
            }
        )
    return {
        "study_site": study_site,
        "study": study,
        "settings": settings,
        "period": period,
        "months_form": form,
        "months": count,
        "history": history,
    }


@login_required
@require_GET
def study_site_scorecard(request: HttpRequest, study_site_id: int) -> HttpResponse:
    """One study-site month by month (see ``_study_site_history``), newest first."""
    data = _study_site_history(request, study_site_id)
    study_site, study, history = data["study_site"], data["study"], data["history"]
    count, period = data["months"], data["period"]
    chart = {
        "labels": [f"{entry['month']:%Y-%m}" for entry in history],
        "series": [{"label": study_site.site.name, "data": [entry["score"] for entry in history]}],
    }
    scored = [entry for entry in history if entry["score"] is not None]
    csv_query = f"?months={count}" if "months" in request.GET else ""
    context = {
        **data,
        "site": study_site.site,
        "kpis": list(data["settings"].kpis.items()),
        "current": history[-1],
        "history": list(reversed(history)),
        "chart": chart,
        "chart_summary": (
            f"Composite score (0–100) of {study_site.site.name} on {study.code}, month by month "
            f"for the {count} months to {period:%B %Y}; {len(scored)} of them have a score. "
            "The table below lists every number."
        ),
        "csv_url": reverse("study-site-scorecard-csv", args=[study_site.id]) + csv_query,
        "site_user": is_site_user(request.user),
    }
    return render(request, "performance/scorecards/study_site.html", context)


@login_required
@require_GET
def study_site_scorecard_csv(request: HttpRequest, study_site_id: int) -> HttpResponse:
    """The page's months as CSV, newest first like the page: month, score, rank, ranked (N),
    then per KPI its value, n and RAG."""
    data = _study_site_history(request, study_site_id)
    study_site, study = data["study_site"], data["study"]
    slugs = list(data["settings"].kpis)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    filename = f"{study.code}-study-site-{study_site.id}-scorecard-{data['period']:%Y-%m}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    header = ["month", "score", "rank", "ranked"]
    writer.writerow(header + [f"{slug}{suffix}" for slug in slugs for suffix in ("", "_n", "_rag")])
    for entry in reversed(data["history"]):
        line = [f"{entry['month']:%Y-%m}", entry["score"], entry["rank"], entry["ranked"]]
        for slug in slugs:
            kpi = entry["kpis"][slug]
            line.extend([kpi.value, kpi.n, kpi.rag])
        writer.writerow(csv_row(line))
    return response


# --- a site's scorecards across studies -------------------------------------------------------


def _site_history_context(request: HttpRequest, site) -> dict:
    today = timezone.localdate()
    site_user = is_site_user(request.user)
    history = site_history_for_user(request.user, site, today=today, months=TREND_MONTHS)
    for entry in history:
        entry["kpis"] = list(entry["settings"].kpis.items())
    recognitions = (
        recognitions_for_user(request.user)
        .filter(study_site__site=site)
        .order_by("-quarter", "study_site__study__code")
    )
    if site_user:
        recognitions = recognitions.filter(announced_at__isnull=False)
    for recognition in recognitions:
        recognition.label = quarter_label(recognition.quarter)
    return {"site": site, "history": history, "recognitions": recognitions, "site_user": site_user}


@login_required
@require_GET
def site_scorecards(request: HttpRequest) -> HttpResponse:
    """A site's own scorecards on every study and sponsor (site people only; 404 otherwise)."""
    site = own_site_for_user(request.user)
    if site is None:
        raise Http404("Only a site's people have their own scorecards.")
    context = _site_history_context(request, site)
    context["own"] = True
    return render(request, "performance/scorecards/site_history.html", context)


@login_required
@require_GET
def site_history(request: HttpRequest, site_id: int) -> HttpResponse:
    """A site's scorecards on the studies of it the viewer can see (a sponsor: its own)."""
    site = site_for_user(request.user, site_id)
    context = _site_history_context(request, site)
    context["own"] = False
    return render(request, "performance/scorecards/site_history.html", context)
