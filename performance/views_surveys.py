"""Site feedback survey pages: a study's surveys (and opening one), a survey's results or
the site person's own answer, answering, closing.

Same rules as ``trialhub.views``: studies and surveys come through the selectors (404 when out
of reach), 403 only for people who see them but may not act, every write goes through
``performance.services.surveys`` (its ``ValidationError``s go back on the form with a 400).
Results never show a site, a study-site or a respondent next to a score or a comment.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from performance.forms_surveys import SurveyAnswerForm, SurveyOpenForm, add_service_errors
from performance.models import SurveyResponse
from performance.selectors.surveys import survey_for_user, survey_results, surveys_for_user
from performance.services.surveys import (
    may_manage_surveys,
    respondent_study_site,
    survey_close,
    survey_is_open,
    survey_open,
    survey_response_submit,
)
from trialhub.models import OrganizationKind
from trialhub.permissions import membership_of
from trialhub.selectors import study_for_user
from trialhub.views.common import paginate


def _is_site_person(user) -> bool:
    membership = membership_of(user)
    return membership is not None and membership.organization.kind == OrganizationKind.SITE


@login_required
@require_http_methods(["GET", "POST"])
def study_surveys(request: HttpRequest, study_id: int) -> HttpResponse:
    """The study's surveys; POST opens one (its managers only: 403 for the others)."""
    study = study_for_user(request.user, study_id)
    can_open = may_manage_surveys(request.user, study)
    form, status = SurveyOpenForm(), 200
    if request.method == "POST":
        if not can_open:
            raise PermissionDenied("Only the study's sponsor lead and CRO managers do that.")
        form = SurveyOpenForm(request.POST)
        if form.is_valid():
            try:
                survey = survey_open(study=study, actor=request.user, **form.cleaned_data)
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                messages.success(request, f"Survey “{survey.title}” opened to the study's sites.")
                return redirect("survey-detail", survey_id=survey.id)
        status = 400
    surveys = paginate(request, surveys_for_user(request.user, study_id=study.id), 25)
    today = timezone.localdate()
    for survey in surveys:
        survey.is_open = survey_is_open(survey, today)
    context = {
        "study": study,
        "surveys": surveys,
        "can_open": can_open,
        "form": form,
        "is_site_person": _is_site_person(request.user),
    }
    return render(request, "performance/surveys/study_surveys.html", context, status=status)


@login_required
@require_http_methods(["GET"])
def survey_detail(request: HttpRequest, survey_id: int) -> HttpResponse:
    """Sponsor and CRO people: the aggregated, anonymous results of their slice. Site people:
    their own answer, or the way to answer while the survey is open."""
    survey = survey_for_user(request.user, survey_id)
    survey.is_open = survey_is_open(survey, timezone.localdate())
    context = {"survey": survey, "study": survey.study}
    if _is_site_person(request.user):
        own_answer = SurveyResponse.objects.filter(survey=survey, respondent=request.user).first()
        context.update(
            is_site_person=True,
            own_answer=own_answer,
            can_answer=own_answer is None
            and survey.is_open
            and respondent_study_site(request.user, survey.study) is not None,
        )
    else:
        context.update(
            results=survey_results(survey=survey, viewer=request.user),
            can_close=survey.closed_at is None and may_manage_surveys(request.user, survey.study),
            is_cro=membership_of(request.user).organization.kind == OrganizationKind.CRO,
        )
    return render(request, "performance/surveys/detail.html", context)


@login_required
@require_POST
def survey_close_view(request: HttpRequest, survey_id: int) -> HttpResponse:
    survey = survey_for_user(request.user, survey_id)
    try:
        survey_close(survey=survey, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "Survey closed: no more answers are taken.")
    return redirect("survey-detail", survey_id=survey.id)


@login_required
@require_http_methods(["GET", "POST"])
def survey_answer(request: HttpRequest, survey_id: int) -> HttpResponse:
    """GET: the answer form; POST: the answer, then back to the dashboard. Only the study's
    site staff answer (403 for the sponsor and CRO people who see the survey)."""
    survey = survey_for_user(request.user, survey_id)
    if respondent_study_site(request.user, survey.study) is None:
        raise PermissionDenied("Only the site staff of the study answer its surveys.")
    survey.is_open = survey_is_open(survey, timezone.localdate())
    if request.method == "GET" and (survey.answered or not survey.is_open):
        messages.info(
            request,
            "You have already answered this survey."
            if survey.answered
            else "This survey is closed.",
        )
        return redirect("survey-detail", survey_id=survey.id)
    form, status = SurveyAnswerForm(), 200
    if request.method == "POST":
        form = SurveyAnswerForm(request.POST)
        if form.is_valid():
            try:
                survey_response_submit(survey=survey, actor=request.user, **form.cleaned_data)
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                messages.success(request, f"Thank you: your answer to “{survey.title}” is in.")
                return redirect("dashboard")
        status = 400
    context = {"survey": survey, "study": survey.study, "form": form}
    return render(request, "performance/surveys/answer.html", context, status=status)
