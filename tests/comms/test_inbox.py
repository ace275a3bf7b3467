"""The prioritised inbox: its order, filters and counts, and reading and acknowledging."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404

from comms.models import Channel, Delivery, DeliveryKind, DeliveryState
from comms.selectors import inbox_counts, inbox_for_user, inbox_item_for_user
from comms.services import (
    delivery_acknowledge,
    delivery_mark_read,
    digests_build,
    message_deliver,
    message_send,
)
from tests.comms.helpers import digest_item, label
from tests.comms.helpers import in_app as item

HOUR = datetime.timedelta(hours=1)
DIGEST = "digest: routine batched, info new"


@pytest.fixture
def sent(world, draft, now):
    """``sent(hours_ago, actor=..., study=..., **fields)``: a stand-alone message sent and
    delivered at ``now``, then dated ``hours_ago`` back (role assignments start today, so
    sending itself cannot be backdated across midnight). Routine messages go alone only as
    "send now" ones; pass ``send_now=True``."""

    def make(hours_ago: float, *, actor=None, **fields):
        actor = actor or world.sponsor_lead_a
        message = message_send(message=draft(actor=actor, **fields), actor=actor, now=now)
        assert message_deliver(message_id=message.id, now=now), "delivered stand-alone"
        Delivery.objects.filter(message=message).update(delivered_at=now - hours_ago * HOUR)
        return message

    return make


def subjects(user, **filters) -> list[str]:
    return [label(row) for row in inbox_for_user(user=user, filters=filters or None)]


@pytest.fixture
def inbox(world, sent, draft, now, after_window):
    """Site One's coordinator's inbox over both studies, one message per kind of row, and
    one digest (an hour old) carrying a routine reminder and a newsletter of study A."""
    coord = world.site_coord_1
    messages = {
        "routine old": sent(9, send_now=True),
        "key due late": sent(8, category="protocol_amendment", ack_due_at=now + 40 * HOUR),
        "critical B": sent(
            7,
            actor=world.sponsor_lead_b,
            study=world.study_b,
            category="safety",
            ack_due_at=now + 2 * HOUR,
        ),
        "key acknowledged": sent(6, category="study_milestone"),
        "key due early, read": sent(5, category="recruitment_push", ack_due_at=now + 10 * HOUR),
        "critical A": sent(4, category="safety"),  # due in 24 hours
    }
    lead = world.sponsor_lead_a
    messages["info new"] = message_send(message=draft(category="newsletter"), actor=lead, now=now)
    messages["routine batched"] = message_send(message=draft(), actor=lead, now=now)
    for subject, message in messages.items():
        message.subject = subject
        message.save(update_fields=["subject"])
    assert digests_build(now=after_window) == 3, "one digest for each of study A's recipients"
    Delivery.objects.filter(kind=DeliveryKind.DIGEST).update(delivered_at=now - 1 * HOUR)
    delivery_acknowledge(delivery=item(coord, messages["key acknowledged"]), actor=coord, now=now)
    delivery_mark_read(delivery=item(coord, messages["key due early, read"]), actor=coord, now=now)
    return messages


def test_inbox_pins_unacknowledged_critical_then_key_by_due_time_then_the_rest_by_recency(
    world, inbox
):
    assert subjects(world.site_coord_1) == [
        # Critical, by acknowledgement due time.
        "critical B",
        "critical A",
        # Key, by due time, read or not.
        "key due early, read",
        "key due late",
        # The rest, newest delivery first; the acknowledged key message has left the pins.
        DIGEST,
        "key acknowledged",
        "routine old",
    ]


def test_pin_rank_annotation_follows_the_product_order(world, inbox):
    ranks = {label(row): row.pin_rank for row in inbox_for_user(user=world.site_coord_1)}
    assert ranks == {
        "critical B": 0,
        "critical A": 0,
        "key due early, read": 1,
        "key due late": 1,
        DIGEST: 3,
        "key acknowledged": 3,
        "routine old": 3,
    }


def test_acknowledged_criticals_move_below_the_pins_and_stay_listed(world, inbox, now):
    coord = world.site_coord_1
    for subject in ("critical A", "critical B"):
        delivery_acknowledge(delivery=item(coord, inbox[subject]), actor=coord, now=now)

    assert subjects(coord) == [
        "key due early, read",
        "key due late",
        # Below the pins, acknowledged items stay listed, newest delivery first.
        DIGEST,
        "critical A",
        "key acknowledged",
        "critical B",
        "routine old",
    ]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"state": "acknowledged"}, ["key acknowledged"]),
        ({"state": "read"}, ["key due early, read"]),
        (
            {"state": "unread"},
            ["critical B", "critical A", "key due late", DIGEST, "routine old"],
        ),
        ({"tier": "critical"}, ["critical B", "critical A"]),
        ({"tier": "key"}, ["key due early, read", "key due late", "key acknowledged"]),
        # A digest matches a tier when one of its lines does.
        ({"tier": "routine"}, [DIGEST, "routine old"]),
        ({"tier": "info"}, [DIGEST]),
    ],
)
def test_inbox_filters_by_state_and_tier(world, inbox, filters, expected):
    assert subjects(world.site_coord_1, **filters) == expected


def test_inbox_filters_by_study_and_sponsor(world, inbox):
    coord = world.site_coord_1
    assert subjects(coord, study=world.study_b.id) == ["critical B"]
    assert subjects(coord, sponsor=world.sponsor_b.id) == ["critical B"]
    assert len(subjects(coord, sponsor=world.sponsor_a.id)) == 6
    assert DIGEST in subjects(coord, sponsor=world.sponsor_a.id), "through its lines"
    assert subjects(coord, study=world.study_a.id, tier="info") == [DIGEST]
    assert subjects(coord, study=world.study_b.id, tier="key") == []


def test_inbox_holds_only_the_users_own_delivered_in_app_items(world, inbox, draft, now):
    # Pending deliveries (not yet delivered) are not in anyone's inbox.
    message_send(message=draft(subject="not delivered yet"), actor=world.sponsor_lead_a, now=now)

    rows = list(inbox_for_user(user=world.site_coord_1))

    assert {row.recipient_id for row in rows} == {world.site_coord_1.id}
    assert {row.channel for row in rows} == {Channel.IN_APP}
    assert "not delivered yet" not in [label(row) for row in rows]
    # The digest is listed, not the lines it carries.
    assert [row.kind for row in rows].count(DeliveryKind.DIGEST) == 1
    assert DeliveryKind.MESSAGE in {row.kind for row in rows}
    assert not [row for row in rows if row.digest_id and row.kind == DeliveryKind.MESSAGE]
    assert subjects(world.site_coord_3) == ["critical B"], "Site Three is on study B only"
    assert list(inbox_for_user(user=None)) == []
    assert list(inbox_for_user(user=world.sponsor_lead_a)) == []


def test_inbox_item_for_user_answers_404_for_anyone_elses_item(world, inbox):
    mine = item(world.site_coord_1, inbox["critical A"])
    assert inbox_item_for_user(world.site_coord_1, mine.id) == mine
    for other in (world.pi_1, world.site_coord_2, world.sponsor_lead_a, None):
        with pytest.raises(Http404):
            inbox_item_for_user(other, mine.id)
    with pytest.raises(Http404):
        inbox_item_for_user(world.site_coord_1, "not-a-number")
    email = Delivery.objects.get(
        recipient=world.site_coord_1, message=inbox["critical A"], channel=Channel.EMAIL
    )
    with pytest.raises(Http404):
        inbox_item_for_user(world.site_coord_1, email.id)


def test_inbox_counts_unread_and_to_acknowledge(world, inbox, django_assert_num_queries):
    with django_assert_num_queries(1):
        counts = inbox_counts(world.site_coord_1)
    # Unread: both criticals, the late key, the digest, routine. To acknowledge: both
    # criticals and both unacknowledged keys (one of them read).
    assert counts == {"unread": 5, "to_acknowledge": 4}
    # Site One's investigator works on study A only and has not opened anything.
    assert inbox_counts(world.pi_1) == {"unread": 6, "to_acknowledge": 4}
    assert inbox_counts(None) == {"unread": 0, "to_acknowledge": 0}
    # The digest is one unread item, whatever it carries; reading it reads it.
    delivery_mark_read(delivery=digest_item(world.pi_1), actor=world.pi_1)
    assert inbox_counts(world.pi_1) == {"unread": 5, "to_acknowledge": 4}


# --- reading and acknowledging -------------------------------------------------------------


def test_mark_read_sets_read_at_once(world, sent, now):
    coord = world.site_coord_1
    delivery = item(coord, sent(2, send_now=True))

    first = delivery_mark_read(delivery=delivery, actor=coord, now=now)
    again = delivery_mark_read(delivery=delivery, actor=coord, now=now + HOUR)

    assert (first.state, first.read_at) == (DeliveryState.READ, now)
    assert (again.state, again.read_at) == (DeliveryState.READ, now), "the first read is kept"


def test_mark_read_leaves_an_acknowledged_item_acknowledged(world, sent, now):
    coord = world.site_coord_1
    delivery = item(coord, sent(2, category="safety"))
    delivery_acknowledge(delivery=delivery, actor=coord, now=now)

    delivery = delivery_mark_read(delivery=delivery, actor=coord, now=now + HOUR)

    assert (delivery.state, delivery.read_at) == (DeliveryState.ACKNOWLEDGED, now)


def test_acknowledge_sets_acknowledged_and_read_times_once(world, sent, now):
    coord = world.site_coord_1
    delivery = item(coord, sent(2, category="protocol_amendment"))

    first = delivery_acknowledge(delivery=delivery, actor=coord, now=now)
    again = delivery_acknowledge(delivery=delivery, actor=coord, now=now + HOUR)

    assert (first.state, first.acknowledged_at, first.read_at) == (
        DeliveryState.ACKNOWLEDGED,
        now,
        now,
    )
    assert (again.acknowledged_at, again.read_at) == (now, now), "the first time is kept"


def test_acknowledge_keeps_an_earlier_read_time(world, sent, now):
    coord = world.site_coord_1
    delivery = item(coord, sent(2, category="safety"))
    delivery_mark_read(delivery=delivery, actor=coord, now=now - HOUR)

    delivery = delivery_acknowledge(delivery=delivery, actor=coord, now=now)

    assert (delivery.read_at, delivery.acknowledged_at) == (now - HOUR, now)


@pytest.mark.parametrize("what", ["send-now routine", "digest", "digest line"])
def test_only_key_and_critical_messages_are_acknowledged(
    world, sent, draft, now, after_window, what
):
    coord = world.site_coord_1
    if what == "send-now routine":
        delivery = item(coord, sent(2, send_now=True))
    else:
        message = draft(category="newsletter")
        message = message_send(message=message, actor=world.sponsor_lead_a, now=now)
        digests_build(now=after_window)
        delivery = digest_item(coord) if what == "digest" else item(coord, message)

    with pytest.raises(ValidationError) as error:
        delivery_acknowledge(delivery=delivery, actor=coord, now=after_window)

    assert "message" in error.value.message_dict
    delivery.refresh_from_db()
    assert (delivery.state, delivery.acknowledged_at) == (DeliveryState.DELIVERED, None)


@pytest.mark.parametrize("person", ["pi_1", "site_coord_2", "sponsor_lead_a"])
def test_only_the_recipient_reads_or_acknowledges(world, sent, now, person):
    delivery = item(world.site_coord_1, sent(2, category="safety"))
    with pytest.raises(PermissionDenied):
        delivery_mark_read(delivery=delivery, actor=getattr(world, person), now=now)
    with pytest.raises(PermissionDenied):
        delivery_acknowledge(delivery=delivery, actor=getattr(world, person), now=now)
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.DELIVERED


def test_email_and_pending_deliveries_are_not_inbox_items(world, draft, sent, now):
    coord = world.site_coord_1
    email = Delivery.objects.get(
        recipient=coord, message=sent(2, category="safety"), channel=Channel.EMAIL
    )
    message = message_send(message=draft(category="safety"), actor=world.sponsor_lead_a, now=now)
    pending = item(coord, message)

    for delivery, field in ((email, "channel"), (pending, "state")):
        for act in (delivery_mark_read, delivery_acknowledge):
            with pytest.raises(ValidationError) as error:
                act(delivery=delivery, actor=coord, now=now)
            assert field in error.value.message_dict
    assert Delivery.objects.get(pk=pending.pk).state == DeliveryState.PENDING
