"""Reads of site feedback surveys with tenancy applied (see ``trialhub.selectors``).

Answers are anonymous by design: nothing here returns a comment or a score together with
the study-site, the site or the respondent. A CRO sees only the answers attributed to it;
below ``MIN_ANONYMOUS_ANSWERS`` answers in a viewer's slice, means, distributions and
comments are withheld so that no single site's answer can be read off them.
"""

from __future__ import annotations

import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.http import Http404
from django.utils import timezone

from performance.models import SURVEY_SCORE_FIELDS, Survey, SurveyResponse
from performance.services.surveys import SURVEY_RESPONDENT_ROLES
from sites.models import StudySite
from trialhub.models import OrganizationKind, RoleAssignment
from trialhub.permissions import membership_of
from trialhub.selectors import studies_for_user
from trialhub.views.common import subquery_count

MIN_ANONYMOUS_ANSWERS = 3
HIDDEN_NOTE = "Fewer than 3 answers: hidden to keep them anonymous."
SCORES = (1, 2, 3, 4, 5)
QUESTION_LABELS = {
    "communication_clarity": "Communication clarity",
    "support": "Support",
    "cra_responsiveness": "CRA responsiveness",
}


def responses_visible_to(viewer: AbstractBaseUser | None, survey: Survey) -> QuerySet:
    """The slice of a survey's answers a viewer's aggregates cover: all of them for the
    sponsor, the CRO's own for a CRO, the own site's for a site (none without membership)."""
    membership = membership_of(viewer)
    if membership is None:
        return SurveyResponse.objects.none()
    responses = SurveyResponse.objects.filter(survey=survey)
    kind = membership.organization.kind
    if kind == OrganizationKind.CRO:
        return responses.filter(cro=membership.organization)
    if kind == OrganizationKind.SITE:
        return responses.filter(study_site__site__organization=membership.organization)
    return responses


def surveys_for_user(user: AbstractBaseUser | None, *, study_id: int | None = None) -> QuerySet:
    """Surveys of the studies in the user's reach (sponsor, engaged CRO, participating site),
    newest first, with ``answer_count`` (the viewer's slice, as in ``survey_results``) and
    ``answered`` (whether the user answered it)."""
    membership = membership_of(user)
    if membership is None:
        return Survey.objects.none()
    surveys = Survey.objects.filter(study_id__in=studies_for_user(user).values("id"))
    if study_id is not None:
        surveys = surveys.filter(study_id=study_id)
    counted = SurveyResponse.objects.filter(survey=OuterRef("pk"))
    kind = membership.organization.kind
    if kind == OrganizationKind.CRO:
        counted = counted.filter(cro=membership.organization)
    elif kind == OrganizationKind.SITE:
        counted = counted.filter(study_site__site__organization=membership.organization)
    return (
        surveys.select_related("study__sponsor", "opened_by_organization", "opened_by")
        .annotate(
            answer_count=subquery_count(counted),
            answered=Exists(SurveyResponse.objects.filter(survey=OuterRef("pk"), respondent=user)),
        )
        .order_by("-opened_at", "-id")
    )


def survey_for_user(user: AbstractBaseUser | None, survey_id: int | str) -> Survey:
    """The survey with this id if it is in the user's reach; ``Http404`` otherwise."""
    try:
        return surveys_for_user(user).get(pk=int(survey_id))
    except (Survey.DoesNotExist, TypeError, ValueError):
        raise Http404("No such survey.") from None


def _open_on(on: datetime.date) -> Q:
    return Q(closed_at__isnull=True) & (Q(closes_on__isnull=True) | Q(closes_on__gte=on))


def surveys_to_answer_for_user(user: AbstractBaseUser | None, *, now: datetime.datetime) -> list:
    """Open surveys on the user's study-sites (a site role active on ``now``'s date, or every
    study-site of their site for its organisation admin) that the user has not answered;
    the soonest closing first. Empty for everyone but site staff."""
    membership = membership_of(user)
    if membership is None or membership.organization.kind != OrganizationKind.SITE:
        return []
    today = timezone.localdate(now)
    study_sites = StudySite.objects.filter(site__organization=membership.organization)
    if not membership.is_org_admin:
        held = RoleAssignment.objects.active(today).filter(
            user=user, role__in=SURVEY_RESPONDENT_ROLES
        )
        study_sites = study_sites.filter(id__in=held.values("study_site_id"))
    surveys = (
        Survey.objects.filter(_open_on(today), study_id__in=study_sites.values("study_id"))
        .exclude(id__in=SurveyResponse.objects.filter(respondent=user).values("survey_id"))
        .select_related("study")
        .order_by("closes_on", "opened_at", "id")
    )
    return list(surveys)


def _mean(distribution: dict[int, int], n: int) -> Decimal | None:
    if not n:
        return None
    total = sum(score * count for score, count in distribution.items())
    return (Decimal(total) / Decimal(n)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def survey_results(*, survey: Survey, viewer: AbstractBaseUser | None) -> dict:
    """The viewer's slice of the answers, aggregated, in two queries whatever their number:

    ``{"n", "hidden", "note", "questions": [{"field", "label", "n", "mean",
    "distribution": [{"score", "count", "percent"}]}], "comments": [str]}``.
    Comments are bare text, in alphabetical order (not the order of arrival, which could
    tie one to a site). With fewer than 3 answers, ``hidden`` is true and means,
    distributions and comments are left out.
    """
    responses = responses_visible_to(viewer, survey)
    aggregates = {"n": Count("id")}
    for field in SURVEY_SCORE_FIELDS:
        for score in SCORES:
            aggregates[f"{field}_{score}"] = Count("id", filter=Q(**{field: score}))
    counts = responses.aggregate(**aggregates)
    n = counts["n"]
    hidden = 0 < n < MIN_ANONYMOUS_ANSWERS
    questions = []
    for field in SURVEY_SCORE_FIELDS:
        distribution = {score: counts[f"{field}_{score}"] for score in SCORES}
        question = {"field": field, "label": QUESTION_LABELS[field], "n": n}
        if hidden:
            question.update(mean=None, distribution=[])
        else:
            question["mean"] = _mean(distribution, n)
            question["distribution"] = [
                {
                    "score": score,
                    "count": count,
                    "percent": round(count * 100 / n) if n else 0,
                }
                for score, count in distribution.items()
            ]
        questions.append(question)
    comments = []
    if n and not hidden:
        comments = list(
            responses.exclude(comment="").order_by("comment").values_list("comment", flat=True)
        )
    return {
        "n": n,
        "hidden": hidden,
        "note": HIDDEN_NOTE if hidden else "",
        "questions": questions,
        "comments": comments,
    }


def survey_feedback_by_cro(*, study_ids, cro_ids=None) -> dict[int, dict]:
    """Site feedback per CRO for the CRO scorecard, in one aggregate query:
    ``{cro_id: {"n": int, "means": {question: Decimal (1 decimal)}, "hidden": bool}}`` over
    every answer in ``study_ids`` attributed to the CRO (``hidden``: fewer than 3 answers,
    show n only). CROs with no answer are absent. ``study_ids`` and ``cro_ids`` may be
    querysets of ids (they become subqueries of the one query)."""
    responses = SurveyResponse.objects.filter(survey__study_id__in=study_ids, cro__isnull=False)
    if cro_ids is not None:
        responses = responses.filter(cro_id__in=cro_ids)
    rows = (
        responses.order_by()
        .values("cro_id")
        .annotate(n=Count("id"), **{field: Sum(field) for field in SURVEY_SCORE_FIELDS})
    )
    feedback = {}
    for row in rows:
        n = row["n"]
        feedback[row["cro_id"]] = {
            "n": n,
            "means": {
                field: (Decimal(row[field]) / Decimal(n)).quantize(
                    Decimal("0.1"), rounding=ROUND_HALF_UP
                )
                for field in SURVEY_SCORE_FIELDS
            },
            "hidden": n < MIN_ANONYMOUS_ANSWERS,
        }
    return feedback
