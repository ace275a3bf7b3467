"""Writes of the communications app: one function per business action (STYLE.md)."""

from comms.services.approvals import message_approve, message_endorse, message_reject
from comms.services.audience import audience_recipients, audience_validate
from comms.services.delivery import digest_emails_deliver, message_deliver
from comms.services.digests import digests_build
from comms.services.drafts import message_draft_create
from comms.services.escalations import escalations_sweep
from comms.services.inbox import delivery_acknowledge, delivery_mark_read
from comms.services.sending import message_send
from comms.services.sweeps import comms_sweep, deliveries_requeue
from comms.services.templates import (
    message_template_approve,
    message_template_create,
    message_template_retire,
    message_template_update,
    study_comms_policy_set,
)

__all__ = [
    "audience_recipients",
    "audience_validate",
    "comms_sweep",
    "deliveries_requeue",
    "delivery_acknowledge",
    "delivery_mark_read",
    "digest_emails_deliver",
    "digests_build",
    "escalations_sweep",
    "message_approve",
    "message_deliver",
    "message_draft_create",
    "message_endorse",
    "message_reject",
    "message_send",
    "message_template_approve",
    "message_template_create",
    "message_template_retire",
    "message_template_update",
    "study_comms_policy_set",
]
