"""Writes for site feedback surveys: open, close, answer (PRODUCT.md "Site feedback").

Who may do what, as data (the pattern of ``performance.permissions``): the study's sponsor
and engaged CRO people holding a manager role on the study, or their organisation admins,
open and close surveys; site staff holding a site role on a study-site of the study (or the
site organisation's admin) answer, once each. The answer is attributed to the CRO whose CRA
monitored the study-site on the day it came in, for the CRO scorecard.
"""

from __future__ import annotations

import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from performance.models import SURVEY_SCORE_FIELDS, Survey, SurveyResponse
from sites.models import StudySite
from trialhub.models import Engagement, OrganizationKind, RoleAssignment, Study, StudyRole
from trialhub.permissions import SITE_ROLES, membership_of

# Roles whose holders open and close a study's surveys.
SURVEY_MANAGER_ROLES = frozenset({StudyRole.SPONSOR_LEAD, StudyRole.CRO_PM})
# Organisation admins of these kinds manage surveys on every study in their reach.
SURVEY_MANAGER_ADMIN_KINDS = frozenset({OrganizationKind.SPONSOR, OrganizationKind.CRO})
# Roles whose holders answer, at their own study-site.
SURVEY_RESPONDENT_ROLES = SITE_ROLES


def _on(now: datetime.datetime | None) -> tuple[datetime.datetime, datetime.date]:
    now = now or timezone.now()
    return now, timezone.localdate(now)


def survey_is_open(survey: Survey, on: datetime.date) -> bool:
    """Not closed by hand, and its last day (if any) not past."""
    return survey.closed_at is None and (survey.closes_on is None or survey.closes_on >= on)


def may_manage_surveys(
    user: AbstractBaseUser | None, study: Study, *, on: datetime.date | None = None
) -> bool:
    """Whether ``user`` opens and closes surveys on ``study`` (on ``on``, default today)."""
    membership = membership_of(user)
    if membership is None or membership.organization.kind not in SURVEY_MANAGER_ADMIN_KINDS:
        return False
    organization = membership.organization
    if organization.kind == OrganizationKind.SPONSOR:
        in_reach = study.sponsor_id == organization.id
    else:
        in_reach = Engagement.objects.filter(study=study, cro=organization).exists()
    if not in_reach:
        return False
    if membership.is_org_admin:
        return True
    return (
        RoleAssignment.objects.active(on)
        .filter(user=user, study=study, role__in=SURVEY_MANAGER_ROLES)
        .exists()
    )


def respondent_study_site(
    user: AbstractBaseUser | None, study: Study, *, on: datetime.date | None = None
) -> StudySite | None:
    """The study-site in ``study`` at which ``user`` answers its surveys, or None: a site role
    active on ``on`` at their site's study-site, or the site organisation's admin."""
    membership = membership_of(user)
    if membership is None or membership.organization.kind != OrganizationKind.SITE:
        return None
    study_site = (
        StudySite.objects.filter(study=study, site__organization=membership.organization)
        .select_related("site")
        .first()
    )
    if study_site is None or membership.is_org_admin:
        return study_site
    holds_role = (
        RoleAssignment.objects.active(on)
        .filter(user=user, study_site=study_site, role__in=SURVEY_RESPONDENT_ROLES)
        .exists()
    )
    return study_site if holds_role else None


def monitoring_cro_id(study_site: StudySite, *, on: datetime.date) -> int | None:
    """The CRO of the CRA monitoring the study-site on ``on`` (the latest started if several)."""
    return (
        RoleAssignment.objects.active(on)
        .filter(role=StudyRole.CRA, study_site=study_site, user__membership__isnull=False)
        .order_by("-start_date", "-id")
        .values_list("user__membership__organization_id", flat=True)
        .first()
    )


def survey_open(
    *,
    study: Study,
    actor: AbstractBaseUser,
    title: str,
    closes_on: datetime.date | None = None,
    now: datetime.datetime | None = None,
) -> Survey:
    """Open a survey on ``study`` for its site staff. ``PermissionDenied`` unless the actor
    manages the study's surveys; ``ValidationError`` (keys ``title``, ``closes_on``)."""
    now, today = _on(now)
    if not may_manage_surveys(actor, study, on=today):
        raise PermissionDenied("Only the study's sponsor lead and CRO project managers do that.")
    title = (title or "").strip()
    errors: dict[str, str] = {}
    if not title:
        errors["title"] = "Give the survey a title."
    elif len(title) > Survey._meta.get_field("title").max_length:
        errors["title"] = "Keep the title to 200 characters."
    if closes_on is not None and closes_on < today:
        errors["closes_on"] = "The last day for answers cannot be in the past."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        return Survey.objects.create(
            study=study,
            title=title,
            opened_by=actor,
            opened_by_organization=membership_of(actor).organization,
            opened_at=now,
            closes_on=closes_on,
        )


def survey_close(
    *, survey: Survey, actor: AbstractBaseUser, now: datetime.datetime | None = None
) -> Survey:
    """Close a survey to answers. ``ValidationError`` (key ``survey``) when already closed."""
    now, today = _on(now)
    with transaction.atomic():
        survey = Survey.objects.select_for_update().select_related("study").get(pk=survey.pk)
        if not may_manage_surveys(actor, survey.study, on=today):
            raise PermissionDenied(
                "Only the study's sponsor lead and CRO project managers do that."
            )
        if survey.closed_at is not None:
            raise ValidationError({"survey": "This survey is already closed."})
        survey.closed_at = now
        survey.save(update_fields=["closed_at"])
    return survey


def _score(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    return value if isinstance(value, int) and 1 <= value <= 5 else None


def survey_response_submit(
    *,
    survey: Survey,
    actor: AbstractBaseUser,
    communication_clarity,
    support,
    cra_responsiveness,
    comment: str = "",
    now: datetime.datetime | None = None,
) -> SurveyResponse:
    """Record the actor's answer at their study-site, attributed to the monitoring CRO.

    ``PermissionDenied`` for anyone but the site staff of the survey's study;
    ``ValidationError`` for a closed survey (key ``survey``), a second answer (``respondent``),
    scores outside 1–5 (their field) or a comment over 2,000 characters (``comment``).
    """
    now, today = _on(now)
    values = {
        "communication_clarity": communication_clarity,
        "support": support,
        "cra_responsiveness": cra_responsiveness,
    }
    with transaction.atomic():
        # Locks the survey: a concurrent close or double submit waits for this answer.
        survey = Survey.objects.select_for_update().select_related("study").get(pk=survey.pk)
        study_site = respondent_study_site(actor, survey.study, on=today)
        if study_site is None:
            raise PermissionDenied("Only the site staff of the study answer its surveys.")
        if not survey_is_open(survey, today):
            raise ValidationError({"survey": "This survey is closed."})
        if SurveyResponse.objects.filter(survey=survey, respondent=actor).exists():
            raise ValidationError({"respondent": "You have already answered this survey."})
        errors: dict[str, str] = {}
        scores = {}
        for field in SURVEY_SCORE_FIELDS:
            scores[field] = _score(values[field])
            if scores[field] is None:
                errors[field] = "Choose a score from 1 to 5."
        comment = (comment or "").strip()
        if len(comment) > SurveyResponse._meta.get_field("comment").max_length:
            errors["comment"] = "Keep the comment to 2,000 characters."
        if errors:
            raise ValidationError(errors)
        return SurveyResponse.objects.create(
            survey=survey,
            study_site=study_site,
            respondent=actor,
            cro_id=monitoring_cro_id(study_site, on=today),
            comment=comment,
            submitted_at=now,
            **scores,
        )
