"""Decisions on messages: approval or rejection by the Accountable party, sponsor endorsement."""

from __future__ import annotations

import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from comms.models import ACK_TIERS, ApprovalDecision, Decision, Message, MessageStatus
from comms.permissions import can_decide, can_endorse
from comms.services.sending import message_dispatch, message_lock
from trialhub.models import Area


def _check_decision(*, message: Message, actor, now: datetime.datetime) -> None:
    if not can_decide(actor, message, timezone.localdate(now)):
        raise PermissionDenied(
            f"Only the party Accountable for {Area(message.area).label.lower()} decides on this "
            "message."
        )
    if message.status != MessageStatus.PENDING_APPROVAL:
        raise ValidationError({"status": "This message is not waiting for approval."})


@transaction.atomic
def message_approve(
    *, message: Message, actor, reason: str = "", now: datetime.datetime | None = None
) -> Message:
    """Approve a message pending approval and send it (``message_dispatch``), recording who,
    when and why. Only a sponsor lead / CRO project manager (or organisation admin) of the
    organisation Accountable for the message's area on its study: ``PermissionDenied`` for
    anyone else. If the audience now reaches no one, nothing is recorded (``audience`` error).
    """
    now = now or timezone.now()
    message = message_lock(message)
    _check_decision(message=message, actor=actor, now=now)
    ApprovalDecision.objects.create(
        message=message,
        decided_by=actor,
        decided_at=now,
        decision=Decision.APPROVED,
        reason=reason.strip(),
    )
    return message_dispatch(message=message, now=now)


@transaction.atomic
def message_reject(
    *, message: Message, actor, reason: str, now: datetime.datetime | None = None
) -> Message:
    """Reject a message pending approval, with a reason (``reason`` error without one).
    Same deciders as ``message_approve``. Nothing is delivered."""
    now = now or timezone.now()
    message = message_lock(message)
    _check_decision(message=message, actor=actor, now=now)
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": "Say why the message is rejected."})
    ApprovalDecision.objects.create(
        message=message, decided_by=actor, decided_at=now, decision=Decision.REJECTED, reason=reason
    )
    message.status = MessageStatus.REJECTED
    message.save(update_fields=["status"])
    return message


@transaction.atomic
def message_endorse(*, message: Message, actor, now: datetime.datetime | None = None) -> Message:
    """Co-sign a key or critical message as the study's sponsor lead (``PermissionDenied`` for
    anyone else). A routine or info message (``tier``), a rejected one (``status``) or one
    endorsed already (``endorsed_by``) is refused."""
    now = now or timezone.now()
    message = message_lock(message)
    if not can_endorse(actor, message, timezone.localdate(now)):
        raise PermissionDenied("Only the study's sponsor lead endorses messages.")
    if message.tier not in ACK_TIERS:
        raise ValidationError({"tier": "Only key and critical messages carry an endorsement."})
    if message.status == MessageStatus.REJECTED:
        raise ValidationError({"status": "A rejected message cannot be endorsed."})
    if message.endorsed_by_id is not None:
        raise ValidationError({"endorsed_by": "This message is endorsed already."})
    message.endorsed_by = actor
    message.endorsed_at = now
    message.save(update_fields=["endorsed_by", "endorsed_at"])
    return message
