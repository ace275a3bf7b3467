"""A recipient's own actions on their inbox items: reading and acknowledging.

An inbox item is an in-app delivery that has been delivered; email deliveries are not inbox
items. Each action is one guarded ``UPDATE``: concurrent clicks, retries and repeats all end
in the same row, and the first time recorded is the one kept.
"""

from __future__ import annotations

import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from comms.models import Channel, Delivery, DeliveryKind, DeliveryState

READABLE_STATES = (DeliveryState.DELIVERED,)
ACKNOWLEDGEABLE_STATES = (DeliveryState.DELIVERED, DeliveryState.READ)


def _check_inbox_item(delivery: Delivery, actor) -> None:
    if actor is None or delivery.recipient_id != actor.pk:
        raise PermissionDenied("Only the recipient acts on an inbox item.")
    if delivery.channel != Channel.IN_APP:
        raise ValidationError({"channel": "Only in-app deliveries are inbox items."})
    if delivery.state == DeliveryState.PENDING:
        raise ValidationError({"state": "This message has not been delivered yet."})


def _reload(delivery: Delivery) -> Delivery:
    delivery.refresh_from_db(fields=["state", "read_at", "acknowledged_at"])
    return delivery


@transaction.atomic
def delivery_mark_read(
    *, delivery: Delivery, actor, now: datetime.datetime | None = None
) -> Delivery:
    """Mark the recipient's in-app delivery read (``delivered`` → ``read``, ``read_at`` set).

    Recipient only (``PermissionDenied``); an email or still pending delivery is a
    ``ValidationError``. Reading a digest reads the lines it carries. Idempotent: a read or
    acknowledged item stays as it is.
    """
    now = now or timezone.now()
    _check_inbox_item(delivery, actor)
    Delivery.objects.filter(pk=delivery.pk, state__in=READABLE_STATES).update(
        state=DeliveryState.READ, read_at=now
    )
    if delivery.kind == DeliveryKind.DIGEST:
        # Opening a digest reads the messages it carries.
        Delivery.objects.filter(
            digest_id=delivery.digest_id,
            kind=DeliveryKind.MESSAGE,
            recipient_id=actor.pk,
            state__in=READABLE_STATES,
        ).update(state=DeliveryState.READ, read_at=now)
    return _reload(delivery)


@transaction.atomic
def delivery_acknowledge(
    *, delivery: Delivery, actor, now: datetime.datetime | None = None
) -> Delivery:
    """Acknowledge the recipient's in-app delivery of a key or critical message: state
    ``acknowledged``, ``acknowledged_at`` set, and ``read_at`` too if it was still unread.

    Recipient only (``PermissionDenied``); a message that needs no acknowledgement is a
    ``ValidationError`` on ``message``, as are email and pending deliveries. Idempotent: the
    first acknowledgement time is kept.
    """
    now = now or timezone.now()
    _check_inbox_item(delivery, actor)
    if delivery.kind != DeliveryKind.MESSAGE or not delivery.message.requires_ack:
        raise ValidationError({"message": "This message does not need acknowledging."})
    Delivery.objects.filter(pk=delivery.pk, state__in=ACKNOWLEDGEABLE_STATES).update(
        state=DeliveryState.ACKNOWLEDGED,
        acknowledged_at=now,
        read_at=Coalesce("read_at", Value(now)),
    )
    return _reload(delivery)
