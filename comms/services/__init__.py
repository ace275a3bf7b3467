"""Writes of the communications app: one function per business action (STYLE.md)."""

from comms.services.approvals import message_approve, message_endorse, message_reject
from comms.services.audience import audience_recipients, audience_validate
from comms.services.delivery import message_deliver
from comms.services.drafts import message_draft_create
from comms.services.inbox import delivery_acknowledge, delivery_mark_read
from comms.services.sending import message_send

__all__ = [
    "audience_recipients",
    "audience_validate",
    "delivery_acknowledge",
    "delivery_mark_read",
    "message_approve",
    "message_deliver",
    "message_draft_create",
    "message_endorse",
    "message_reject",
    "message_send",
]
