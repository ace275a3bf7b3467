"""The delivery task, called as a function (no broker): exactly once, emails for email rows."""

from __future__ import annotations

import datetime

from comms.models import Channel, Delivery, DeliveryState, Digest
from comms.services import (
    digest_emails_deliver,
    digests_build,
    message_endorse,
    message_send,
)
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


def test_routine_message_waits_for_the_digest_and_sends_no_email_of_its_own(
    world, draft, now, after_window, mailoutbox
):
    message = message_send(message=draft(), actor=world.sponsor_lead_a, now=now)

    assert deliver_message(message.id) == 0, "it waits for the digest window"
    rows = Delivery.objects.filter(message=message)
    assert set(rows.values_list("channel", "state", "via_digest")) == {
        (Channel.IN_APP, DeliveryState.PENDING, True)
    }
    assert mailoutbox == []

    digests = Digest.objects.filter(recipient__deliveries__message=message).distinct()
    assert digests_build(now=after_window) == 3
    digest_ids = list(digests.values_list("id", flat=True))
    assert digest_emails_deliver(digest_ids=digest_ids, now=after_window) == 3
    assert len(mailoutbox) == 3, "one digest email per recipient, none for the message"
    assert all(email.subject == "TrialHub digest: 1 update" for email in mailoutbox)


def test_send_now_routine_message_goes_alone_in_app_and_by_email(world, draft, now, mailoutbox):
    message = draft(subject="Upload the delegation log", send_now=True)
    message = message_send(message=message, actor=world.sponsor_lead_a, now=now)

    assert deliver_message(message.id) == 6
    assert not Delivery.objects.filter(message=message, via_digest=True).exists()
    assert len(mailoutbox) == 3
    assert {email.subject for email in mailoutbox} == {"[A-001] Routine: Upload the delegation log"}
    assert "Please acknowledge" not in mailoutbox[0].body


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
