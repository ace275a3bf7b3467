"""The beat sweep: the database is the schedule, this turns due rows into work.

Runs every ``COMMS_SWEEP_SECONDS`` and catches up whatever it missed (beat down, broker
down, a worker killed): digests whose window has come, overdue acknowledgements, and
stand-alone deliveries still pending ``COMMS_STUCK_AFTER_SECONDS`` after they were due
(the enqueue after commit was lost, or the worker died) — those are enqueued again; the
delivery itself is guarded, so enqueueing twice delivers once.
"""

from __future__ import annotations

import datetime
import logging
from typing import NamedTuple

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from comms.models import Channel, Delivery, DeliveryKind, DeliveryState
from comms.services.delivery import STANDALONE_KINDS
from comms.services.digests import EMAIL_TASK_DIGESTS, digests_build
from comms.services.escalations import escalations_sweep

logger = logging.getLogger(__name__)


class SweepResult(NamedTuple):
    digests: int
    escalations: int
    messages_requeued: int
    digests_requeued: int


def stuck_after() -> datetime.timedelta:
    return datetime.timedelta(seconds=settings.COMMS_STUCK_AFTER_SECONDS)


def deliveries_requeue(*, now: datetime.datetime | None = None) -> tuple[int, int]:
    """Enqueue the messages and digests whose deliveries are still pending a while after
    they were due, and messages whose deferred deliveries have come due; return
    (messages, digests) enqueued."""
    from comms.tasks import deliver_message_enqueue, digest_emails_enqueue

    now = now or timezone.now()
    deadline = now - stuck_after()
    pending = Delivery.objects.filter(state=DeliveryState.PENDING, due_at__lte=deadline)
    # Deferred rows (key messages held through quiet hours) go as soon as they are due.
    deferred = Q(due_at__lte=now, due_at__gt=F("message__sent_at"), kind=DeliveryKind.MESSAGE)
    messages = (
        Delivery.objects.filter(state=DeliveryState.PENDING, kind__in=STANDALONE_KINDS)
        .filter(Q(due_at__lte=deadline) | deferred, via_digest=False)
        .order_by("message_id")
        .values_list("message_id", "message__tier")
        .distinct()
    )
    message_count = 0
    for message_id, tier in messages:
        deliver_message_enqueue(message_id=message_id, tier=tier)
        message_count += 1
    digest_ids = list(
        pending.filter(kind=DeliveryKind.DIGEST, channel=Channel.EMAIL)
        .order_by("digest_id")
        .values_list("digest_id", flat=True)
        .distinct()
    )
    for start in range(0, len(digest_ids), EMAIL_TASK_DIGESTS):
        digest_emails_enqueue(digest_ids=digest_ids[start : start + EMAIL_TASK_DIGESTS])
    return message_count, len(digest_ids)


def comms_sweep(*, now: datetime.datetime | None = None) -> SweepResult:
    """Build due digests, escalate overdue acknowledgements, re-enqueue stuck deliveries.

    Deliveries deferred to a later time (quiet hours) are picked up here too once due.
    A ``now`` without an offset (an operator replaying a period) is UTC, like the beat.
    """
    now = now or timezone.now()
    if timezone.is_naive(now):
        now = now.replace(tzinfo=datetime.UTC)
    digests = digests_build(now=now)
    escalations = escalations_sweep(now=now)
    messages, digests_requeued = deliveries_requeue(now=now)
    result = SweepResult(digests, escalations, messages, digests_requeued)
    if any(result):
        logger.info("comms sweep at %s: %s", now.isoformat(), result._asdict())
    return result
