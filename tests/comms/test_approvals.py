"""Approval and rejection by the Accountable party; sponsor endorsement."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from comms.models import ApprovalDecision, Decision, Delivery, MessageStatus
from comms.selectors import pending_approvals_for_user
from comms.services import message_approve, message_endorse, message_reject, message_send

LATER = datetime.timedelta(hours=3)


@pytest.fixture
def pending(world, draft, now):
    """A CRO recruitment push: the CRO is only Informed, the sponsor Accountable."""
    message = draft(actor=world.cro_pm, category="recruitment_push")
    message = message_send(message=message, actor=world.cro_pm, now=now)
    assert message.status == MessageStatus.PENDING_APPROVAL
    return message


def test_accountable_sponsor_lead_approves_and_the_message_goes_out(world, pending, now):
    message = message_approve(
        message=pending, actor=world.sponsor_lead_a, reason="Agreed in the call", now=now + LATER
    )
    assert (message.status, message.sent_at) == (MessageStatus.SENT, now + LATER)
    assert message.ack_due_at == now + LATER + datetime.timedelta(hours=48)
    assert message.recipients_count == 3
    assert Delivery.objects.filter(message=message).count() == 6
    decision = ApprovalDecision.objects.get(message=message)
    assert (decision.decision, decision.decided_by, decision.decided_at, decision.reason) == (
        Decision.APPROVED,
        world.sponsor_lead_a,
        now + LATER,
        "Agreed in the call",
    )
    assert message.sender == world.cro_pm, "the CRO stays the sender"


def test_accountable_organisation_admin_may_approve(world, pending, now):
    message = message_approve(message=pending, actor=world.sponsor_a_admin, now=now)
    assert message.status == MessageStatus.SENT


@pytest.mark.parametrize("person", ["cro_pm", "cra", "sponsor_viewer_a", "sponsor_lead_b"])
def test_others_cannot_approve_or_reject(world, pending, now, person):
    actor = getattr(world, person)
    with pytest.raises(PermissionDenied):
        message_approve(message=pending, actor=actor, now=now)
    with pytest.raises(PermissionDenied):
        message_reject(message=pending, actor=actor, reason="No", now=now)
    pending.refresh_from_db()
    assert pending.status == MessageStatus.PENDING_APPROVAL
    assert not ApprovalDecision.objects.exists()


def test_accountable_cro_approves_the_sponsors_message(world, set_codes, draft, now):
    set_codes(world.study_a, "recruitment_comms", {world.cro: "A", world.sponsor_a: "C"})
    message = draft(category="sponsor_letter")
    message = message_send(message=message, actor=world.sponsor_lead_a, now=now)
    assert message.status == MessageStatus.PENDING_APPROVAL
    with pytest.raises(PermissionDenied):
        message_approve(message=message, actor=world.sponsor_lead_a, now=now)
    message = message_approve(message=message, actor=world.cro_pm, now=now)
    assert message.status == MessageStatus.SENT


@pytest.mark.parametrize("reason", ["", "   "])
def test_rejection_needs_a_reason(world, pending, now, reason):
    with pytest.raises(ValidationError) as error:
        message_reject(message=pending, actor=world.sponsor_lead_a, reason=reason, now=now)
    assert "reason" in error.value.message_dict
    assert not ApprovalDecision.objects.exists()


def test_rejection_is_recorded_and_delivers_nothing(world, pending, now):
    message = message_reject(
        message=pending, actor=world.sponsor_lead_a, reason="Wait for the amendment", now=now
    )
    assert message.status == MessageStatus.REJECTED
    assert not Delivery.objects.filter(message=message).exists()
    decision = ApprovalDecision.objects.get(message=message)
    assert (decision.decision, decision.decided_by, decision.reason) == (
        Decision.REJECTED,
        world.sponsor_lead_a,
        "Wait for the amendment",
    )


def test_only_pending_messages_are_decided(world, pending, draft, now):
    message_approve(message=pending, actor=world.sponsor_lead_a, now=now)
    for message in (pending, draft()):
        with pytest.raises(ValidationError) as error:
            message_approve(message=message, actor=world.sponsor_lead_a, now=now)
        assert "status" in error.value.message_dict
    assert ApprovalDecision.objects.count() == 1


def test_pending_approvals_are_listed_for_the_deciders_only(world, pending):
    for person in ("sponsor_lead_a", "sponsor_a_admin"):
        assert list(pending_approvals_for_user(getattr(world, person))) == [pending], person
    for person in ("sponsor_viewer_a", "cro_pm", "sponsor_lead_b", "site_coord_1", "no_org_user"):
        assert not pending_approvals_for_user(getattr(world, person)).exists(), person


# --- endorsement --------------------------------------------------------------------------


def test_sponsor_lead_endorses_a_key_message(world, draft, now):
    message = message_send(
        message=draft(category="protocol_amendment"), actor=world.sponsor_lead_a, now=now
    )
    message = message_endorse(message=message, actor=world.sponsor_lead_a, now=now + LATER)
    assert (message.endorsed_by, message.endorsed_at) == (world.sponsor_lead_a, now + LATER)
    with pytest.raises(ValidationError) as error:
        message_endorse(message=message, actor=world.sponsor_lead_a, now=now)
    assert "endorsed_by" in error.value.message_dict


def test_sponsor_lead_endorses_a_cro_message_waiting_for_approval(world, pending, now):
    message = message_endorse(message=pending, actor=world.sponsor_lead_a, now=now)
    assert message.endorsed_by == world.sponsor_lead_a


@pytest.mark.parametrize("person", ["cro_pm", "sponsor_viewer_a", "sponsor_a_admin"])
def test_only_the_sponsor_lead_endorses(world, pending, now, person):
    with pytest.raises(PermissionDenied):
        message_endorse(message=pending, actor=getattr(world, person), now=now)


@pytest.mark.parametrize("category", ["visit_reminder", "newsletter"])
def test_routine_and_info_messages_are_not_endorsed(world, draft, now, category):
    with pytest.raises(ValidationError) as error:
        message_endorse(message=draft(category=category), actor=world.sponsor_lead_a, now=now)
    assert "tier" in error.value.message_dict
