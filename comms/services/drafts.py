"""Writing a message: a draft that its author then sends (``comms.services.sending``)."""

from __future__ import annotations

import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from comms.models import ACK_TIERS, CATEGORY_RULES, Category, Message, Tier
from comms.permissions import SENDER_ORGANIZATION_KINDS, can_write
from comms.services.audience import audience_validate
from trialhub.models import Study
from trialhub.permissions import membership_of
from trialhub.selectors import studies_for_user

SUBJECT_MAX_LENGTH = Message._meta.get_field("subject").max_length
DEDUP_KEY_MAX_LENGTH = Message._meta.get_field("dedup_key").max_length


@transaction.atomic
def message_draft_create(
    *,
    actor,
    study: Study,
    category: str,
    subject: str,
    body: str,
    audience,
    tier: str | None = None,
    dedup_key: str = "",
    send_now: bool = False,
    ack_due_at: datetime.datetime | None = None,
) -> Message:
    """Save a draft by a sponsor or CRO user who works on ``study`` (the caller resolved it
    with ``study_for_user``). Site people only receive: ``PermissionDenied``.

    The tier defaults to the category's; whether the author may raise it is decided when the
    draft is sent (the matrix may change in between). Raises ``ValidationError`` keyed by field:
    ``category``, ``tier``, ``subject``, ``body``, ``audience``, ``send_now``, ``ack_due_at``,
    ``dedup_key``. Nothing is delivered yet.
    """
    membership = membership_of(actor)
    if membership is None or membership.organization.kind not in SENDER_ORGANIZATION_KINDS:
        raise PermissionDenied("Only sponsors and CROs write to sites.")
    if not studies_for_user(actor).filter(pk=study.pk).exists() or not can_write(
        actor, study.pk, timezone.localdate()
    ):
        raise PermissionDenied("You do not write to sites on this study.")
    errors: dict[str, str] = {}
    if category not in Category.values:
        errors["category"] = f"Unknown category {category!r}."
    elif tier is None:
        tier = CATEGORY_RULES[category].tier
    if tier is not None and tier not in Tier.values:
        errors["tier"] = f"Unknown tier {tier!r}."
    subject, body, dedup_key = subject.strip(), body.strip(), dedup_key.strip()
    if not subject:
        errors["subject"] = "Give the message a subject."
    elif len(subject) > SUBJECT_MAX_LENGTH:
        errors["subject"] = f"Keep the subject within {SUBJECT_MAX_LENGTH} characters."
    if not body:
        errors["body"] = "The message has no text."
    if len(dedup_key) > DEDUP_KEY_MAX_LENGTH:
        errors["dedup_key"] = f"Keep the dedup key within {DEDUP_KEY_MAX_LENGTH} characters."
    if send_now and tier in Tier.values and tier != Tier.ROUTINE:
        errors["send_now"] = "Only routine messages can be sent on their own ahead of the digest."
    if ack_due_at is not None and tier in Tier.values and tier not in ACK_TIERS:
        errors["ack_due_at"] = "Only key and critical messages are acknowledged."
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
    )
