"""Message templates: wording per category that the study's sponsor lead approves (the
sponsor's stance, written down), and the study's comms policy.

A sponsor or CRO writer on the study proposes or edits a template; it waits, ``draft``
("awaiting approval"), until the study's sponsor lead approves it. Editing an approved
template makes a new version awaiting approval, so a message written from the old version no
longer counts as using approved wording (``template_wording_matches``). The caller resolved
the study or template through a selector (``comms.selectors``), so whatever reaches these
services is in the actor's reach; they answer "may you?" with ``PermissionDenied`` and bad
input with a ``ValidationError`` keyed by field.
"""

from __future__ import annotations

import datetime
import re

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from comms.models import (
    TEMPLATE_PLACEHOLDERS,
    Category,
    MessageTemplate,
    StudyCommsPolicy,
    TemplateStatus,
)
from comms.permissions import ENDORSER_ROLES, can_write
from comms.rendering import render_placeholders
from trialhub.models import RoleAssignment, Study
from trialhub.permissions import membership_of

NAME_MAX_LENGTH = MessageTemplate._meta.get_field("name").max_length
SUBJECT_MAX_LENGTH = MessageTemplate._meta.get_field("subject").max_length
SEND_NOW_DAILY_LIMIT_RANGE = (0, 50)
# The study role that approves templates and sets the comms policy: the sponsor's voice.
TEMPLATE_APPROVER_ROLES = ENDORSER_ROLES
# ``{word}`` in a text; words outside TEMPLATE_PLACEHOLDERS are refused.
_ANY_PLACEHOLDER = re.compile(r"\{(\w+)\}")
# How a due date reads in a message ("5 December 2026"), and the pattern it matches.
_DUE_DATE_PATTERN = r"\d{1,2} [A-Z][a-z]+ \d{4}"


def format_due_date(due_date: datetime.date) -> str:
    return f"{due_date.day} {due_date:%B %Y}"


def template_render(
    template: MessageTemplate, *, study_code: str, due_date: datetime.date | None = None
) -> tuple[str, str]:
    """The template's subject and body with ``{study_code}`` and ``{due_date}`` (when given)
    filled in; ``{site_name}`` stays, to be filled per recipient when the message is shown."""
    values = {"study_code": study_code}
    if due_date is not None:
        values["due_date"] = format_due_date(due_date)
    return (
        render_placeholders(template.subject, **values),
        render_placeholders(template.body, **values),
    )


def template_needs_due_date(template: MessageTemplate) -> bool:
    return "{due_date}" in template.subject or "{due_date}" in template.body


def _wording_pattern(text: str, *, study_code: str, due_date_seen: list[bool]) -> str:
    pattern = []
    for part in re.split(r"(\{due_date\}|\{study_code\})", text):
        if part == "{due_date}":
            # Every {due_date} of one message holds the same date.
            pattern.append(
                "(?P=due_date)" if due_date_seen else f"(?P<due_date>{_DUE_DATE_PATTERN})"
            )
            due_date_seen.append(True)
        elif part == "{study_code}":
            pattern.append(re.escape(study_code))
        else:
            pattern.append(re.escape(part))
    return "".join(pattern)


def template_wording_matches(
    template: MessageTemplate, *, subject: str, body: str, study_code: str
) -> bool:
    """Whether ``subject`` and ``body`` are the template's current wording as rendered by
    ``template_render`` for this study, with any one due date (unchanged wording)."""
    seen: list[bool] = []
    subject_pattern = _wording_pattern(template.subject, study_code=study_code, due_date_seen=seen)
    body_pattern = _wording_pattern(template.body, study_code=study_code, due_date_seen=seen)
    # NUL cannot occur in either text, so it separates them without ambiguity.
    pattern = re.compile(f"{subject_pattern}\x00{body_pattern}", re.DOTALL)
    return pattern.fullmatch(f"{subject}\x00{body}") is not None


def is_sponsor_lead(user, study_id: int, on: datetime.date) -> bool:
    """``user`` holds the sponsor lead role on the study on ``on``."""
    return (
        RoleAssignment.objects.active(on)
        .filter(user=user, study_id=study_id, role__in=TEMPLATE_APPROVER_ROLES)
        .exists()
    )


def _require_writer(actor, study_id: int, today: datetime.date) -> None:
    if not can_write(actor, study_id, today):
        raise PermissionDenied("Only sponsor and CRO writers on the study write templates.")


def _require_sponsor_lead(actor, study_id: int, today: datetime.date, what: str) -> None:
    if not is_sponsor_lead(actor, study_id, today):
        raise PermissionDenied(f"Only the study's sponsor lead {what}.")


def _clean_fields(
    *, study: Study, category: str, name: str, subject: str, body: str, exclude_id=None
) -> tuple[dict, dict[str, str]]:
    errors: dict[str, str] = {}
    name, subject, body = name.strip(), subject.strip(), body.strip()
    if category not in Category.values:
        errors["category"] = f"Unknown category {category!r}."
    if not name:
        errors["name"] = "Name the template."
    elif len(name) > NAME_MAX_LENGTH:
        errors["name"] = f"Keep the name within {NAME_MAX_LENGTH} characters."
    elif (
        MessageTemplate.objects.filter(study=study, name__iexact=name)
        .exclude(pk=exclude_id)
        .exists()
    ):
        errors["name"] = f"{study.code} has a template named {name!r} already."
    if not subject:
        errors["subject"] = "Give the template a subject."
    elif len(subject) > SUBJECT_MAX_LENGTH:
        errors["subject"] = f"Keep the subject within {SUBJECT_MAX_LENGTH} characters."
    if not body:
        errors["body"] = "The template has no text."
    for field, text in (("subject", subject), ("body", body)):
        unknown = sorted(set(_ANY_PLACEHOLDER.findall(text)) - set(TEMPLATE_PLACEHOLDERS))
        if unknown and field not in errors:
            known = ", ".join(f"{{{placeholder}}}" for placeholder in TEMPLATE_PLACEHOLDERS)
            errors[field] = (
                f"Unknown placeholder{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(f'{{{word}}}' for word in unknown)}; use {known}."
            )
    cleaned = {"category": category, "name": name, "subject": subject, "body": body}
    return cleaned, errors


@transaction.atomic
def message_template_create(
    *,
    actor,
    study: Study,
    category: str,
    name: str,
    subject: str,
    body: str,
    now: datetime.datetime | None = None,
) -> MessageTemplate:
    """Propose a template for ``study`` (a sponsor or CRO writer on it; ``PermissionDenied``
    otherwise). It starts at version 1, awaiting the sponsor lead's approval. Field errors:
    ``category``, ``name`` (required, unique per study), ``subject``, ``body`` (required; only
    the placeholders {site_name}, {due_date} and {study_code})."""
    now = now or timezone.now()
    _require_writer(actor, study.pk, timezone.localdate(now))
    cleaned, errors = _clean_fields(
        study=study, category=category, name=name, subject=subject, body=body
    )
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            return MessageTemplate.objects.create(
                study=study,
                created_by=actor,
                organization=membership_of(actor).organization,
                updated_at=now,
                **cleaned,
            )
    except IntegrityError:  # the same name, created at the same moment by someone else
        raise ValidationError(
            {"name": f"{study.code} has a template named {cleaned['name']!r} already."}
        ) from None


def _lock(template: MessageTemplate) -> MessageTemplate:
    return MessageTemplate.objects.select_for_update().select_related("study").get(pk=template.pk)


@transaction.atomic
def message_template_update(
    *,
    template: MessageTemplate,
    actor,
    category: str | None = None,
    name: str | None = None,
    subject: str | None = None,
    body: str | None = None,
    now: datetime.datetime | None = None,
) -> MessageTemplate:
    """Change a template's wording (a writer of the organisation that proposed it, or the
    study's sponsor lead; ``PermissionDenied`` otherwise; ``None`` keeps a field). Editing an
    approved template makes the next version, awaiting approval again, so messages written from
    the old version are no longer sent on its strength; editing one awaiting approval keeps its
    version. A retired template is not edited (``status`` error). Same field errors as
    ``message_template_create``; an edit that changes nothing changes nothing."""
    now = now or timezone.now()
    template = _lock(template)
    today = timezone.localdate(now)
    _require_writer(actor, template.study_id, today)
    membership = membership_of(actor)
    if not is_sponsor_lead(actor, template.study_id, today) and (
        membership.organization_id != template.organization_id
    ):
        # Otherwise anyone on the study could send the sponsor's approved wording back to
        # "awaiting approval" and so switch off its direct sending.
        raise PermissionDenied(
            "Only the organisation that proposed this template, or the study's sponsor lead, "
            "edits it."
        )
    if template.status == TemplateStatus.RETIRED:
        raise ValidationError({"status": "A retired template is not edited."})
    cleaned, errors = _clean_fields(
        study=template.study,
        category=template.category if category is None else category,
        name=template.name if name is None else name,
        subject=template.subject if subject is None else subject,
        body=template.body if body is None else body,
        exclude_id=template.pk,
    )
    if errors:
        raise ValidationError(errors)
    if all(getattr(template, field) == value for field, value in cleaned.items()):
        return template
    for field, value in cleaned.items():
        setattr(template, field, value)
    if template.status == TemplateStatus.APPROVED:
        template.version += 1
        template.status = TemplateStatus.DRAFT
        template.approved_by = None
        template.approved_at = None
    template.updated_at = now
    template.save()
    return template


@transaction.atomic
def message_template_approve(
    *, template: MessageTemplate, actor, now: datetime.datetime | None = None
) -> MessageTemplate:
    """Approve the current version of a template awaiting approval, as the study's sponsor
    lead (``PermissionDenied`` for anyone else). An approved or retired one is a ``status``
    error."""
    now = now or timezone.now()
    template = _lock(template)
    _require_sponsor_lead(actor, template.study_id, timezone.localdate(now), "approves templates")
    if template.status != TemplateStatus.DRAFT:
        raise ValidationError({"status": "This template is not awaiting approval."})
    template.status = TemplateStatus.APPROVED
    template.approved_by = actor
    template.approved_at = now
    template.save(update_fields=["status", "approved_by", "approved_at"])
    return template


@transaction.atomic
def message_template_retire(
    *, template: MessageTemplate, actor, now: datetime.datetime | None = None
) -> MessageTemplate:
    """Withdraw a template: nothing is written from it any more, and drafts written from it
    go through normal routing. The study's sponsor lead retires any template; a writer of the
    organisation that proposed one may withdraw it while it awaits approval
    (``PermissionDenied`` otherwise). Retiring twice is a ``status`` error."""
    now = now or timezone.now()
    template = _lock(template)
    today = timezone.localdate(now)
    if not is_sponsor_lead(actor, template.study_id, today):
        _require_writer(actor, template.study_id, today)
        membership = membership_of(actor)
        if (
            template.status != TemplateStatus.DRAFT
            or membership.organization_id != template.organization_id
        ):
            raise PermissionDenied(
                "Only the study's sponsor lead retires an approved template or another "
                "organisation's proposal."
            )
    if template.status == TemplateStatus.RETIRED:
        raise ValidationError({"status": "This template is retired already."})
    template.status = TemplateStatus.RETIRED
    template.updated_at = now
    template.save(update_fields=["status", "updated_at"])
    return template


@transaction.atomic
def study_comms_policy_set(
    *, study: Study, actor, send_now_daily_limit, now: datetime.datetime | None = None
) -> StudyCommsPolicy:
    """Set the study's delivery policy as its sponsor lead (``PermissionDenied`` otherwise):
    how many stand-alone ("send now") routine messages a site receives per local day, 0–50
    (``send_now_daily_limit`` error outside)."""
    now = now or timezone.now()
    _require_sponsor_lead(actor, study.pk, timezone.localdate(now), "sets the comms policy")
    low, high = SEND_NOW_DAILY_LIMIT_RANGE
    if (
        isinstance(send_now_daily_limit, bool)
        or not isinstance(send_now_daily_limit, int)
        or not low <= send_now_daily_limit <= high
    ):
        raise ValidationError(
            {"send_now_daily_limit": f"Give a whole number from {low} to {high}."}
        )
    policy, _created = StudyCommsPolicy.objects.update_or_create(
        study=study,
        defaults={
            "send_now_daily_limit": send_now_daily_limit,
            "updated_at": now,
            "updated_by": actor,
        },
    )
    return policy
