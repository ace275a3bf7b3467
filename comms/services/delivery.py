"""Delivering stored deliveries: what the Celery tasks do with a message or digest id.

Every delivery leaves ``pending`` by a guarded ``UPDATE`` (or under a row lock taken with
``SKIP LOCKED``), so any number of runs, concurrent or repeated, deliver each row once.
Emails go in small chunks: a chunk's rows are locked, its emails sent, and the rows marked
delivered in the same transaction. A send that fails marks only what was sent and leaves the
rest pending for a retry; a worker killed in the middle of a chunk rolls the chunk back, so
at worst that chunk's emails (``EMAIL_CHUNK``) go out twice — never none.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from comms.models import (
    Channel,
    Delivery,
    DeliveryKind,
    DeliveryState,
    Digest,
    Message,
    MessageStatus,
    Tier,
)
from comms.rendering import DigestLine, digest_lines, render_placeholders

EMAIL_CHUNK = 25
STANDALONE_KINDS = (DeliveryKind.MESSAGE, DeliveryKind.ESCALATION)


def message_deliver(*, message_id: int, now: datetime.datetime | None = None) -> int:
    """Deliver the message's pending stand-alone deliveries (its own and escalations about
    it) that are due by ``now``; return how many. In-app rows are claimed in one statement;
    emails as the module says. A message that is gone or not sent delivers nothing."""
    now = now or timezone.now()
    message = (
        Message.objects.select_related("study__sponsor", "sender_organization")
        .filter(pk=message_id, status=MessageStatus.SENT)
        .first()
    )
    if message is None:
        return 0
    due = Delivery.objects.filter(
        message=message,
        kind__in=STANDALONE_KINDS,
        via_digest=False,
        state=DeliveryState.PENDING,
        due_at__lte=now,
    )
    delivered = due.filter(channel=Channel.IN_APP).update(
        state=DeliveryState.DELIVERED, delivered_at=now
    )
    email_ids = list(due.filter(channel=Channel.EMAIL).values_list("id", flat=True))
    return delivered + _send_emails(
        email_ids, lambda delivery: _message_email(message, delivery), now
    )


def digest_emails_deliver(
    *, digest_ids: Iterable[int], now: datetime.datetime | None = None
) -> int:
    """Email the digests' pending email deliveries; return how many were sent."""
    now = now or timezone.now()
    email_ids = list(
        Delivery.objects.filter(
            kind=DeliveryKind.DIGEST,
            digest_id__in=list(digest_ids),
            channel=Channel.EMAIL,
            state=DeliveryState.PENDING,
            due_at__lte=now,
        ).values_list("id", "digest_id")
    )
    lines = digest_lines({digest_id for _id, digest_id in email_ids})
    digests = Digest.objects.in_bulk({digest_id for _id, digest_id in email_ids})
    return _send_emails(
        [delivery_id for delivery_id, _digest in email_ids],
        lambda delivery: _digest_email(
            digests[delivery.digest_id], lines[delivery.digest_id], delivery
        ),
        now,
    )


def _send_emails(
    delivery_ids: list[int],
    build: Callable[[Delivery], EmailMultiAlternatives],
    now: datetime.datetime,
) -> int:
    sent_total = 0
    if not delivery_ids:
        return 0
    with get_connection() as connection:
        for start in range(0, len(delivery_ids), EMAIL_CHUNK):
            chunk = delivery_ids[start : start + EMAIL_CHUNK]
            sent_total += _send_chunk(chunk, build, connection, now)
    return sent_total


def _send_chunk(chunk: list[int], build, connection, now: datetime.datetime) -> int:
    failure: Exception | None = None
    with transaction.atomic():
        rows = list(
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(id__in=chunk, state=DeliveryState.PENDING)
            .select_related("recipient", "study_site__site")
            .order_by("id")
        )
        sent: list[int] = []
        try:
            for delivery in rows:
                if delivery.recipient.email:
                    email = build(delivery)
                    email.connection = connection
                    email.send()
                sent.append(delivery.id)
        except Exception as error:
            failure = error
        # Whatever was handed to the mail server is delivered, even if a later send failed:
        # committed first, the failure raised after (raised inside, it would roll this back).
        Delivery.objects.filter(id__in=sent).update(state=DeliveryState.DELIVERED, delivered_at=now)
    if failure is not None:
        raise failure
    return len(sent)


def _email(subject: str, template: str, context: dict, to: str) -> EmailMultiAlternatives:
    context = {**context, "portal_url": settings.PORTAL_URL}
    email = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"comms/email/{template}.txt", context),
        to=[to],
    )
    email.attach_alternative(render_to_string(f"comms/email/{template}.html", context), "text/html")
    return email


def _message_email(message: Message, delivery: Delivery) -> EmailMultiAlternatives:
    """A message (or an escalation about it) by email, in plain text and HTML."""
    site = delivery.study_site.site if delivery.study_site_id else None
    site_name = site.name if site else ""
    context = {
        "message": message,
        "subject": render_placeholders(message.subject, site_name=site_name),
        "body": render_placeholders(message.body, site_name=site_name),
        "tier": Tier(message.tier),
        "delivery": delivery,
        "site": site,
        "recipient": delivery.recipient,
    }
    if delivery.kind == DeliveryKind.ESCALATION:
        subject = f"[{message.study.code}] Not acknowledged at {site_name}: {context['subject']}"
        return _email(subject, "escalation", context, delivery.recipient.email)
    subject = f"[{message.study.code}] {Tier(message.tier).label}: {context['subject']}"
    return _email(subject, "message", context, delivery.recipient.email)


def _digest_email(
    digest: Digest, lines: list[DigestLine], delivery: Delivery
) -> EmailMultiAlternatives:
    context = {"digest": digest, "lines": lines, "recipient": delivery.recipient}
    subject = f"TrialHub digest: {len(lines)} update{'s' if len(lines) != 1 else ''}"
    return _email(subject, "digest", context, delivery.recipient.email)
