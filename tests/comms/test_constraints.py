"""Invariants the database itself keeps, whatever code writes the rows."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from comms.models import ApprovalDecision, Channel, Delivery, DeliveryState, Message


def assert_refused(model, **fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        model.objects.filter(pk=fields.pop("pk")).update(**fields)


@pytest.fixture
def message(draft):
    return draft()


@pytest.mark.parametrize(
    "fields",
    [
        {"status": "sent"},  # no sent_at, no submitted_at
        {"status": "pending_approval"},  # no submitted_at
        {"category": "gossip"},
        {"tier": "urgent"},
        {"status": "lost"},
        {"tier": "key"},  # requires_ack stays False
        {"requires_ack": True},  # on a routine message
        {"send_now": True, "tier": "info"},
    ],
)
def test_message_rows_keep_their_invariants(message, fields):
    assert_refused(Message, pk=message.pk, **fields)


def test_endorsement_is_for_key_and_critical_only(world, message):
    assert_refused(
        Message, pk=message.pk, endorsed_by=world.sponsor_lead_a, endorsed_at=timezone.now()
    )


def test_sent_key_message_has_an_ack_due_time(message):
    now = timezone.now()
    assert_refused(
        Message,
        pk=message.pk,
        status="sent",
        submitted_at=now,
        sent_at=now,
        tier="key",
        requires_ack=True,
    )


def test_rejection_without_reason_is_refused(world, message):
    with pytest.raises(IntegrityError), transaction.atomic():
        ApprovalDecision.objects.create(
            message=message, decided_by=world.sponsor_lead_a, decision="rejected"
        )


@pytest.mark.parametrize(
    "fields",
    [
        {"state": DeliveryState.DELIVERED},
        {"state": DeliveryState.READ, "delivered_at": timezone.now()},
        {"state": DeliveryState.ACKNOWLEDGED, "delivered_at": timezone.now()},
        {"channel": "pigeon"},
    ],
)
def test_delivery_rows_keep_their_invariants(world, message, fields):
    delivery = Delivery.objects.create(
        message=message, recipient=world.site_coord_1, channel=Channel.IN_APP, due_at=timezone.now()
    )
    assert_refused(Delivery, pk=delivery.pk, **fields)
