"""Delivering stored deliveries: what the Celery task does with a message id."""

from __future__ import annotations

import datetime

from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.utils import timezone

from comms.models import Channel, Delivery, DeliveryState, Message, MessageStatus, Tier


def message_deliver(*, message_id: int, now: datetime.datetime | None = None) -> int:
    """Deliver the message's pending deliveries that are due by ``now``; return how many.

    Safe to run any number of times, concurrently too: each row moves out of ``pending`` by
    an ``UPDATE ... WHERE state = 'pending'``, so only one run claims it. In-app deliveries
    are claimed in one statement. Each email is claimed and sent in its own transaction: a
    failed send rolls its claim back, leaving the row pending for a retry, and one that was
    sent is never claimed again. A message that is gone or not sent delivers nothing.
    """
    now = now or timezone.now()
    message = (
        Message.objects.select_related("study__sponsor", "sender_organization")
        .filter(pk=message_id, status=MessageStatus.SENT)
        .first()
    )
    if message is None:
        return 0
    due = Delivery.objects.filter(message=message, state=DeliveryState.PENDING, due_at__lte=now)
    delivered = due.filter(channel=Channel.IN_APP).update(
        state=DeliveryState.DELIVERED, delivered_at=now
    )
    emails = list(due.filter(channel=Channel.EMAIL).select_related("recipient"))
    if not emails:
        return delivered
    with get_connection() as connection:
        for delivery in emails:
            with transaction.atomic():
                claimed = Delivery.objects.filter(
                    pk=delivery.pk, state=DeliveryState.PENDING
                ).update(state=DeliveryState.DELIVERED, delivered_at=now)
                if claimed and delivery.recipient.email:
                    _email(message, delivery.recipient.email, connection).send()
                delivered += claimed
    return delivered


def _email(message: Message, address: str, connection) -> EmailMessage:
    """A plain-text email of the message; key and critical say they need acknowledging."""
    tier = Tier(message.tier)
    sender = message.sender_organization.name
    lines = [message.body, "", "—", f"From {sender}, study {message.study.code}."]
    if message.endorsed_at is not None:
        lines.append(f"Endorsed by {message.study.sponsor.name}.")
    if message.requires_ack and message.ack_due_at is not None:
        due = message.ack_due_at.astimezone(datetime.UTC)
        lines.append(f"Please acknowledge in TrialHub by {due:%Y-%m-%d %H:%M} UTC.")
    return EmailMessage(
        subject=f"[{message.study.code}] {tier.label}: {message.subject}",
        body="\n".join(lines),
        to=[address],
        connection=connection,
    )
