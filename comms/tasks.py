"""Celery tasks of communications: thin wrappers over ``comms.services``; they get ids only."""

from __future__ import annotations

from celery import shared_task

from comms.models import Tier
from comms.services import message_deliver

# Key and critical traffic has its own queue, so a flood of reminders never delays it.
QUEUE_BY_TIER: dict[str, str] = {
    Tier.CRITICAL: "priority",
    Tier.KEY: "priority",
    Tier.ROUTINE: "routine",
    Tier.INFO: "routine",
}


# Mail servers fail transiently (smtplib's errors are OSErrors): try again later; rows that
# were not delivered stay pending, so a retry delivers only what is left.
@shared_task(
    name="comms.tasks.deliver_message",
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def deliver_message(message_id: int) -> int:
    """Deliver the message's due deliveries (re-loaded from the database); returns how many."""
    return message_deliver(message_id=message_id)


def deliver_message_enqueue(*, message_id: int, tier: str) -> None:
    """Hand a sent message to the worker on its tier's queue (called after commit)."""
    deliver_message.apply_async(args=[message_id], queue=QUEUE_BY_TIER[tier])
