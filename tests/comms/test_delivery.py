"""The delivery task, called as a function (no broker): exactly once, emails for email rows."""

from __future__ import annotations

import datetime

from comms.models import Channel, Delivery, DeliveryState
from comms.services import message_endorse, message_send
from comms.tasks import deliver_message


def test_deliveries_are_delivered_exactly_once(world, draft, now, mailoutbox):
    message = message_send(
        message=draft(category="protocol_amendment", subject="Amendment 3"),
        actor=world.sponsor_lead_a,
        now=now,
    )

    assert deliver_message(message.id) == 6
    assert deliver_message(message.id) == 0, "a second run delivers nothing again"

    rows = Delivery.objects.filter(message=message)
    assert set(rows.values_list("state", flat=True)) == {DeliveryState.DELIVERED}
    assert not rows.filter(delivered_at__isnull=True).exists()
    assert len(mailoutbox) == rows.filter(channel=Channel.EMAIL).count() == 3
    assert {address for email in mailoutbox for address in email.to} == {
        "coord_1@example.org",
        "pi_1@example.org",
        "coord_2@example.org",
    }
    email = mailoutbox[0]
    assert email.subject == "[A-001] Key: Amendment 3"
    assert "Please acknowledge in TrialHub by" in email.body
    assert email.content_subtype == "plain"


def test_routine_message_sends_no_email(world, draft, now, mailoutbox):
    message = message_send(message=draft(), actor=world.sponsor_lead_a, now=now)
    assert deliver_message(message.id) == 3
    assert mailoutbox == []


def test_endorsement_shows_in_the_email(world, draft, now, mailoutbox):
    message = message_send(message=draft(category="safety"), actor=world.sponsor_lead_a, now=now)
    message_endorse(message=message, actor=world.sponsor_lead_a, now=now)
    deliver_message(message.id)
    assert all("Endorsed by Sponsor A." in email.body for email in mailoutbox)


def test_deliveries_not_yet_due_wait(world, draft, now, mailoutbox):
    message = message_send(message=draft(category="safety"), actor=world.sponsor_lead_a, now=now)
    Delivery.objects.filter(message=message).update(due_at=now + datetime.timedelta(days=1))
    assert deliver_message(message.id) == 0
    assert mailoutbox == []
    assert set(Delivery.objects.values_list("state", flat=True)) == {DeliveryState.PENDING}


def test_unsent_or_missing_message_delivers_nothing(world, draft, now):
    pending = message_send(message=draft(actor=world.cro_pm), actor=world.cro_pm, now=now)
    assert deliver_message(pending.id) == 0
    assert deliver_message(pending.id + 1000) == 0
