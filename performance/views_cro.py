"""CRO scorecard pages: a study's engaged CROs, and a sponsor's CRO track record.

Tenancy comes from ``performance.selectors.cro``: sponsor people see every engaged CRO, a
CRO's people their own row only, anyone else 404.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from performance.cro import WINDOW_WEEKS
from performance.selectors.cro import cro_scorecard_for_user, cro_track_record_for_user
from trialhub.models import OrganizationKind
from trialhub.permissions import membership_of

FEEDBACK_QUESTIONS = {
    "communication_clarity": "Communication clarity",
    "support": "Support",
    "cra_responsiveness": "CRA responsiveness",
}


def _context(scores) -> dict:
    return {"scores": scores, "questions": FEEDBACK_QUESTIONS, "window_weeks": WINDOW_WEEKS}


@login_required
@require_GET
def study_cro_scorecard(request: HttpRequest, study_id: int) -> HttpResponse:
    study, scores = cro_scorecard_for_user(request.user, study_id, now=timezone.now())
    is_sponsor = membership_of(request.user).organization.kind == OrganizationKind.SPONSOR
    context = {"study": study, "is_sponsor": is_sponsor, **_context(scores)}
    return render(request, "performance/cro/study_cro_scorecard.html", context)


@login_required
@require_GET
def cro_track_record(request: HttpRequest) -> HttpResponse:
    studies, scores = cro_track_record_for_user(request.user, now=timezone.now())
    return render(
        request, "performance/cro/track_record.html", {"studies": studies, **_context(scores)}
    )
