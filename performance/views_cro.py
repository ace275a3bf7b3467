"""CRO scorecard pages: a study's engaged CROs, and a sponsor's CRO track record.

Tenancy comes from ``performance.selectors.cro``: sponsor people see every engaged CRO, a
CRO's people their own row only, anyone else 404. Each page has a CSV export of its table
(one row per CRO, figures and their n only: never a site name or a comment).
"""

from __future__ import annotations

import csv

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from performance.cro import WINDOW_WEEKS, CroScore
from performance.exports import csv_row
from performance.selectors.cro import cro_scorecard_for_user, cro_track_record_for_user
from trialhub.models import OrganizationKind
from trialhub.permissions import membership_of

FEEDBACK_QUESTIONS = {
    "communication_clarity": "Communication clarity",
    "support": "Support",
    "cra_responsiveness": "CRA responsiveness",
}


CSV_MEASURES = (
    "cra_turnover",
    "messages_per_site_week",
    "key_ack_hours",
    "activation_days",
    "first_patient_days",
)


def _context(scores) -> dict:
    return {"scores": scores, "questions": FEEDBACK_QUESTIONS, "window_weeks": WINDOW_WEEKS}


def _cro_csv(scores: list[CroScore], filename: str) -> HttpResponse:
    """One row per CRO: name, study-sites, each measure's value and n, then the feedback n
    and its means (empty when hidden below three answers or when there is none)."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    header = ["cro", "study_sites"]
    header += [f"{measure}{suffix}" for measure in CSV_MEASURES for suffix in ("", "_n")]
    writer.writerow([*header, "feedback_n", *(f"feedback_{q}" for q in FEEDBACK_QUESTIONS)])
    for score in scores:
        data = score.as_api()
        line = [data["cro"]["name"], data["study_sites"]]
        for measure in CSV_MEASURES:
            line.extend([data[measure]["value"], data[measure]["n"]])
        feedback = data["feedback"]
        line.append(feedback["n"])
        line.extend(feedback["means"].get(question) for question in FEEDBACK_QUESTIONS)
        writer.writerow(csv_row(line))
    return response


@login_required
@require_GET
def study_cro_scorecard(request: HttpRequest, study_id: int) -> HttpResponse:
    study, scores = cro_scorecard_for_user(request.user, study_id, now=timezone.now())
    is_sponsor = membership_of(request.user).organization.kind == OrganizationKind.SPONSOR
    context = {
        "study": study,
        "is_sponsor": is_sponsor,
        "csv_url": reverse("study-cro-scorecard-csv", args=[study.id]),
        **_context(scores),
    }
    return render(request, "performance/cro/study_cro_scorecard.html", context)


@login_required
@require_GET
def study_cro_scorecard_csv(request: HttpRequest, study_id: int) -> HttpResponse:
    now = timezone.now()
    study, scores = cro_scorecard_for_user(request.user, study_id, now=now)
    return _cro_csv(scores, f"{study.code}-cro-scorecard-{timezone.localdate(now):%Y-%m-%d}.csv")


@login_required
@require_GET
def cro_track_record(request: HttpRequest) -> HttpResponse:
    studies, scores = cro_track_record_for_user(request.user, now=timezone.now())
    return render(
        request, "performance/cro/track_record.html", {"studies": studies, **_context(scores)}
    )


@login_required
@require_GET
def cro_track_record_csv(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    _, scores = cro_track_record_for_user(request.user, now=now)
    return _cro_csv(scores, f"cro-track-record-{timezone.localdate(now):%Y-%m-%d}.csv")
