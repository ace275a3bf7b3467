"""Writing a message: a draft that its author then sends (``comms.services.sending``)."""

from __future__ import annotations

import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from comms.models import (
    ACK_TIERS,
    CATEGORY_RULES,
    Category,
    Message,
    MessageTemplate,
    TemplateStatus,
    Tier,
)
from comms.permissions import SENDER_ORGANIZATION_KINDS, can_write
from comms.rendering import render_placeholders
from comms.services.audience import audience_validate
from comms.services.templates import format_due_date, template_needs_due_date
from trialhub.models import OrganizationKind, Study
from trialhub.permissions import membership_of
from trialhub.selectors import studies_for_user

SUBJECT_MAX_LENGTH = Message._meta.get_field("subject").max_length
DEDUP_KEY_MAX_LENGTH = Message._meta.get_field("dedup_key").max_length


def message_wording(
    *,
    study: Study,
    subject: str,
    body: str,
    template: MessageTemplate | None = None,
    due_date: datetime.date | None = None,
) -> tuple[str, str]:
    """The subject and body a draft stores: as given (or, when empty, the ``template``'s),
    trimmed, with ``{study_code}`` and ``{due_date}`` (when given) filled in. The compose
    page's preview words a message the same way before it exists."""
    if template is not None:
        subject, body = subject.strip() or template.subject, body.strip() or template.body
    values = {"study_code": study.code}
    if due_date is not None:
        values["due_date"] = format_due_date(due_date)
    return (
        render_placeholders(subject.strip(), **values),
        render_placeholders(body.strip(), **values),
    )


@transaction.atomic
def message_draft_create(
    *,
    actor,
    study: Study,
    audience,
    category: str | None = None,
    subject: str = "",
    body: str = "",
    tier: str | None = None,
    dedup_key: str = "",
    send_now: bool = False,
    ack_due_at: datetime.datetime | None = None,
    template: MessageTemplate | None = None,
    due_date: datetime.date | None = None,
    endorsement_requested: bool = False,
    now: datetime.datetime | None = None,
) -> Message:
    """Save a draft by a sponsor or CRO user who works on ``study`` (the caller resolved it
    with ``study_for_user``). Site people only receive: ``PermissionDenied``.

    The tier defaults to the category's; whether the author may raise it is decided when the
    draft is sent (the matrix may change in between).

    From a ``template`` (approved, of this study; the caller resolved it through
    ``comms.selectors``): the category is the template's, and the subject and body default to
    the template's; ``{study_code}`` and ``{due_date}`` (``due_date`` is then required if the
    template uses it) are filled in here, ``{site_name}`` per recipient when the message is
    shown. The template and its version are stored: ``message_send`` lets the message out on the
    template's strength only while that version is current and the wording unchanged.

    ``endorsement_requested``: a CRO asks the study's sponsor lead to co-sign a key or critical
    message. Raises ``ValidationError`` keyed by field: ``category``, ``tier``, ``subject``,
    ``body``, ``audience``, ``send_now``, ``ack_due_at``, ``dedup_key``, ``template``,
    ``due_date``, ``endorsement_requested``. Nothing is delivered yet.
    """
    now = now or timezone.now()
    membership = membership_of(actor)
    if membership is None or membership.organization.kind not in SENDER_ORGANIZATION_KINDS:
        raise PermissionDenied("Only sponsors and CROs write to sites.")
    if not studies_for_user(actor).filter(pk=study.pk).exists() or not can_write(
        actor, study.pk, timezone.localdate(now)
    ):
        raise PermissionDenied("You do not write to sites on this study.")
    errors: dict[str, str] = {}
    category = category or None
    if template is not None:
        category = _template_category(template, study, category, due_date, errors)
    if category is None:
        if "template" not in errors:
            errors["category"] = "Choose a category."
    elif category not in Category.values:
        errors["category"] = f"Unknown category {category!r}."
    elif tier is None:
        tier = CATEGORY_RULES[category].tier
    if tier is not None and tier not in Tier.values:
        errors["tier"] = f"Unknown tier {tier!r}."
    subject, body = message_wording(
        study=study,
        subject=subject,
        body=body,
        template=None if "template" in errors else template,
        due_date=due_date,
    )
    dedup_key = dedup_key.strip()
    # A refused template is the one thing to fix, not the text it would have provided.
    wanted = "template" not in errors
    if not subject and wanted:
        errors["subject"] = "Give the message a subject."
    elif len(subject) > SUBJECT_MAX_LENGTH:
        errors["subject"] = f"Keep the subject within {SUBJECT_MAX_LENGTH} characters."
    if not body and wanted:
        errors["body"] = "The message has no text."
    if len(dedup_key) > DEDUP_KEY_MAX_LENGTH:
        errors["dedup_key"] = f"Keep the dedup key within {DEDUP_KEY_MAX_LENGTH} characters."
    if send_now and tier in Tier.values and tier != Tier.ROUTINE:
        errors["send_now"] = "Only routine messages can be sent on their own ahead of the digest."
    if ack_due_at is not None and tier in Tier.values and tier not in ACK_TIERS:
        errors["ack_due_at"] = "Only key and critical messages are acknowledged."
    if endorsement_requested:
        if membership.organization.kind != OrganizationKind.CRO:
            errors["endorsement_requested"] = "A CRO asks for the sponsor's endorsement."
        elif tier in Tier.values and tier not in ACK_TIERS:
            errors["endorsement_requested"] = "Only key and critical messages are endorsed."
    try:
        audience = audience_validate(study=study, audience=audience)
    except ValidationError as error:
        errors.update({field: messages[0] for field, messages in error.message_dict.items()})
    if errors:
        raise ValidationError(errors)
    return Message.objects.create(
        study=study,
        category=category,
        tier=tier,
        subject=subject,
        body=body,
        sender=actor,
        sender_organization=membership.organization,
        audience=audience,
        dedup_key=dedup_key,
        send_now=bool(send_now),
        requires_ack=tier in ACK_TIERS,
        ack_due_at=ack_due_at,
        endorsement_requested=bool(endorsement_requested),
        template=template,
        template_version=template.version if template is not None else None,
        created_at=now,
    )


def _template_category(
    template: MessageTemplate,
    study: Study,
    category: str | None,
    due_date: datetime.date | None,
    errors: dict[str, str],
) -> str | None:
    """The category of a message written from ``template``; problems go into ``errors``."""
    if template.study_id != study.pk:
        errors["template"] = f"Not a template of {study.code}."
        return category
    if template.status != TemplateStatus.APPROVED:
        errors["template"] = f"This template is {template.get_status_display().lower()}."
        return category
    if category not in (None, template.category):
        errors["category"] = (
            f"The template is for {Category(template.category).label.lower()} messages."
        )
    if due_date is None and template_needs_due_date(template):
        errors["due_date"] = "This template needs a due date."
    return template.category
