"""Celery tasks of communications: thin wrappers over ``comms.services``; they get ids only.

No task is scheduled for later (no ETA or countdown): future work lives in due-time rows
that the beat task ``comms.tasks.sweep`` turns into work (``comms.services.sweeps``).
"""

from __future__ import annotations

import datetime

from celery import shared_task

from comms.models import Tier
from comms.services import comms_sweep, digest_emails_deliver, message_deliver

# Key and critical traffic has its own queue, so a flood of reminders never delays it.
PRIORITY_QUEUE = "priority"
ROUTINE_QUEUE = "routine"
QUEUE_BY_TIER: dict[str, str] = {
    Tier.CRITICAL: PRIORITY_QUEUE,
    Tier.KEY: PRIORITY_QUEUE,
    Tier.ROUTINE: ROUTINE_QUEUE,
    Tier.INFO: ROUTINE_QUEUE,
}
# Mail servers fail transiently (smtplib's errors are OSErrors): try again later; rows that
# were not delivered stay pending, so a retry delivers only what is left.
RETRY = {"autoretry_for": (OSError,), "retry_backoff": True, "max_retries": 5}


@shared_task(name="comms.tasks.deliver_message", **RETRY)
def deliver_message(message_id: int) -> int:
    """Deliver the message's due stand-alone deliveries (re-loaded from the database)."""
    return message_deliver(message_id=message_id)


@shared_task(name="comms.tasks.deliver_digest_emails", **RETRY)
def deliver_digest_emails(digest_ids: list[int]) -> int:
    """Email these digests to their recipients (what is still pending)."""
    return digest_emails_deliver(digest_ids=digest_ids)


@shared_task(name="comms.tasks.sweep")
def sweep(now: str | None = None) -> dict:
    """Beat: digests, escalations and stuck deliveries. ``now`` (ISO 8601) is for tests and
    operators replaying a period; by default the current time."""
    at = datetime.datetime.fromisoformat(now) if now else None
    return comms_sweep(now=at)._asdict()


def deliver_message_enqueue(*, message_id: int, tier: str) -> None:
    """Hand a sent message to the worker on its tier's queue (called after commit)."""
    deliver_message.apply_async(args=[message_id], queue=QUEUE_BY_TIER[tier])


def escalation_enqueue(*, message_id: int) -> None:
    """Escalations are about key and critical messages: the priority queue."""
    deliver_message.apply_async(args=[message_id], queue=PRIORITY_QUEUE)


def digest_emails_enqueue(*, digest_ids: list[int]) -> None:
    deliver_digest_emails.apply_async(args=[digest_ids], queue=ROUTINE_QUEUE)
