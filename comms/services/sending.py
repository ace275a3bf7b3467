"""Sending: routing by the responsibility matrix, recipients resolved and stored, delivery
handed to Celery after commit."""

from __future__ import annotations

import datetime
import logging
from functools import partial

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from comms.models import (
    ACK_TIERS,
    ACK_WINDOW,
    CATEGORY_RULES,
    Category,
    Channel,
    Delivery,
    Message,
    MessageStatus,
    Tier,
)
from comms.permissions import DIRECT_SEND_CODES, can_write
from comms.services.audience import NO_RECIPIENTS, audience_assignments, audience_recipients
from trialhub.models import Area, Raci, ResponsibilityEntry
from trialhub.selectors import studies_for_user

logger = logging.getLogger(__name__)

# Key and critical messages also go by email; routine and info only in-app (digests later).
CHANNELS_BY_TIER: dict[str, tuple[str, ...]] = {
    Tier.CRITICAL: (Channel.IN_APP, Channel.EMAIL),
    Tier.KEY: (Channel.IN_APP, Channel.EMAIL),
    Tier.ROUTINE: (Channel.IN_APP,),
    Tier.INFO: (Channel.IN_APP,),
}


def message_lock(message: Message) -> Message:
    """Re-read the message under a row lock: one decision or send at a time."""
    return Message.objects.select_for_update().get(pk=message.pk)


@transaction.atomic
def message_send(*, message: Message, actor, now: datetime.datetime | None = None) -> Message:
    """Submit a draft (its author only; ``PermissionDenied`` for anyone else).

    Tier: lowering below the category's default is free; raising above it to key or critical
    needs the sender's organisation to be Accountable for the category's area (``tier`` error).
    Routing: when the sender's organisation is Responsible or Accountable for the area on the
    study, the message is sent now (see ``message_dispatch``); otherwise it waits, status
    ``pending_approval``, for the Accountable party. An audience that reaches no one is an
    ``audience`` error either way.
    """
    now = now or timezone.now()
    message = message_lock(message)
    if message.sender_id != actor.pk:
        raise PermissionDenied("Only the author of a draft sends it.")
    if not studies_for_user(actor).filter(pk=message.study_id).exists() or not can_write(
        actor, message.study_id, timezone.localdate(now)
    ):
        raise PermissionDenied("You no longer write to sites on this study.")
    if message.status != MessageStatus.DRAFT:
        raise ValidationError({"status": "This message is not a draft any more."})
    sender_code = (
        ResponsibilityEntry.objects.filter(
            study_id=message.study_id,
            area=message.area,
            organization_id=message.sender_organization_id,
        )
        .order_by("pk")  # not the model's ordering, which joins organisations for their name
        .values_list("code", flat=True)
        .first()
    )
    _check_tier(message, sender_code)
    _check_ack_due_at(message, now)
    message.submitted_at = now
    if sender_code in DIRECT_SEND_CODES:
        return message_dispatch(message=message, now=now)
    on = timezone.localdate(now)
    if not audience_assignments(
        study_id=message.study_id, audience=message.audience, on=on
    ).exists():
        raise ValidationError({"audience": NO_RECIPIENTS})
    message.status = MessageStatus.PENDING_APPROVAL
    message.save(update_fields=["status", "submitted_at"])
    return message


def _check_tier(message: Message, sender_code: str | None) -> None:
    default = CATEGORY_RULES[message.category].tier
    raised = Tier(message.tier).rank > default.rank and message.tier in ACK_TIERS
    if raised and sender_code != Raci.ACCOUNTABLE:
        area = Area(message.area).label
        raise ValidationError(
            {
                "tier": f"A {Category(message.category).label.lower()} is {default.label.lower()}; "
                f"only the party Accountable for {area.lower()} may raise it to {message.tier}."
            }
        )


def _check_ack_due_at(message: Message, now: datetime.datetime) -> None:
    if message.ack_due_at is not None and message.ack_due_at <= now:
        raise ValidationError({"ack_due_at": "The acknowledgement due time has passed."})


def message_dispatch(*, message: Message, now: datetime.datetime) -> Message:
    """Send a locked message now, inside the caller's transaction: resolve the audience from
    role assignments active today, store one delivery per recipient and channel (in-app
    always, email too for key and critical) with one bulk insert, and enqueue the delivery
    task after commit with the message id only.

    Every delivery is due ``now`` in this slice: digest windows, quiet hours and the
    stand-alone throttle (which will hold routine and info back) are not built yet.
    Key and critical messages get an acknowledgement due time (default: 24 h critical,
    48 h key). Raises ``ValidationError`` on ``audience`` when it reaches no one.
    """
    recipients = audience_recipients(
        study_id=message.study_id, audience=message.audience, on=timezone.localdate(now)
    )
    if not recipients:
        raise ValidationError({"audience": NO_RECIPIENTS})
    if message.requires_ack and message.ack_due_at is None:
        message.ack_due_at = now + ACK_WINDOW[message.tier]
    _check_ack_due_at(message, now)
    Delivery.objects.bulk_create(
        Delivery(
            message=message,
            recipient_id=recipient.user_id,
            study_site_id=recipient.study_site_id,
            channel=channel,
            due_at=now,
        )
        for recipient in recipients
        for channel in CHANNELS_BY_TIER[message.tier]
        # Nobody to email without an address; the in-app delivery still reaches them.
        if channel == Channel.IN_APP or recipient.email
    )
    message.status = MessageStatus.SENT
    message.sent_at = now
    message.recipients_count = len(recipients)
    message.save(
        update_fields=["status", "submitted_at", "sent_at", "ack_due_at", "recipients_count"]
    )
    transaction.on_commit(partial(_enqueue_delivery, message.id, message.tier))
    return message


def _enqueue_delivery(message_id: int, tier: str) -> None:
    # Imported here: the task module imports the services.
    from comms.tasks import deliver_message_enqueue

    # The message and its pending deliveries are committed whatever happens here: a broker
    # outage is logged, not raised to a sender whose message was stored, and the sweeper
    # (PRODUCT.md; not built yet) re-enqueues what is left pending.
    try:
        deliver_message_enqueue(message_id=message_id, tier=tier)
    except Exception:
        logger.exception(
            "Message %s is sent but its delivery could not be enqueued; left pending.", message_id
        )
