"""The beat sweep: the database is the schedule. Digests whose window came, overdue
acknowledgements, and deliveries left pending (an enqueue lost, a worker killed, a key message
held through quiet hours) are all picked up by ``comms_sweep``, however late it runs.

No worker runs here (that is ``test_worker.py``): what the sweep hands to Celery is read back
from the broker's queues, and the deliveries are then made by calling the services."""

from __future__ import annotations

import datetime

import pytest

from comms.models import Channel, Delivery, DeliveryKind, DeliveryState, Digest
from comms.services import (
    comms_sweep,
    deliveries_requeue,
    digest_emails_deliver,
    digests_build,
    message_deliver,
)
from comms.services.sweeps import SweepResult
from comms.tasks import sweep
from tests.comms.helpers import digest_items, line_counts, next_year

T = next_year(1, 14, 6, 50)  # 07:50 in Berlin
MINUTE = datetime.timedelta(minutes=1)
WINDOW = T + 10 * MINUTE  # 08:00 in Berlin and Paris: the digest window of every site
SECOND = datetime.timedelta(seconds=1)


@pytest.fixture
def stuck(settings) -> datetime.timedelta:
    settings.COMMS_STUCK_AFTER_SECONDS = 120
    return datetime.timedelta(seconds=120)


def states(message) -> set[str]:
    return set(Delivery.objects.filter(message=message).values_list("state", flat=True))


# --- re-enqueueing what is left pending ---------------------------------------------------


def test_a_delivery_whose_enqueue_was_lost_is_enqueued_again_once_stuck(
    world, send, stuck, published
):
    # In tests nothing runs after commit: the message is stored, its task never published.
    message = send(T, category="safety")

    assert deliveries_requeue(now=T + stuck - SECOND) == (0, 0), "not stuck yet"
    assert published("priority") == []
    assert deliveries_requeue(now=T + stuck) == (1, 0)
    assert published("priority") == [("comms.tasks.deliver_message", f"[{message.id}]")]

    assert message_deliver(message_id=message.id, now=T + stuck) == 6
    assert states(message) == {DeliveryState.DELIVERED}
    assert deliveries_requeue(now=T + 10 * stuck) == (0, 0), "nothing left to do"


def test_a_send_now_routine_message_is_requeued_on_the_routine_queue(world, send, stuck, published):
    message = send(T, send_now=True)
    assert deliveries_requeue(now=T + stuck) == (1, 0)
    assert published("routine") == [("comms.tasks.deliver_message", f"[{message.id}]")]
    assert published("priority") == []


def test_a_half_delivered_message_is_requeued_for_the_rest(world, send, stuck):
    message = send(T, category="protocol_amendment")
    Delivery.objects.filter(message=message, channel=Channel.IN_APP).update(
        state=DeliveryState.DELIVERED, delivered_at=T
    )  # the worker died after the in-app rows, before the emails

    assert deliveries_requeue(now=T + stuck) == (1, 0)
    assert message_deliver(message_id=message.id, now=T + stuck) == 3, "the three emails"
    assert states(message) == {DeliveryState.DELIVERED}


def test_deliveries_waiting_for_a_digest_are_not_requeued(world, send, stuck):
    send(T)
    assert deliveries_requeue(now=T + datetime.timedelta(days=3)) == (0, 0)


def test_key_deliveries_held_through_quiet_hours_go_once_due(
    world, send, site_prefs, stuck, published
):
    site_prefs(
        world.site_1,
        quiet_hours_enabled=True,
        quiet_hours_start=datetime.time(20),
        quiet_hours_end=datetime.time(7),
    )
    evening = next_year(1, 14, 21, 30)  # 22:30 in Berlin
    quiet_end = next_year(1, 15, 6)  # 07:00 in Berlin
    message = send(evening, category="protocol_amendment")
    assert message_deliver(message_id=message.id, now=evening) == 2, "Site Two has no quiet"
    assert deliveries_requeue(now=evening + stuck) == (0, 0), "the rest is not due"

    assert deliveries_requeue(now=quiet_end - SECOND) == (0, 0)
    # Due now: enqueued at once, without waiting to look stuck.
    assert deliveries_requeue(now=quiet_end) == (1, 0)
    assert published("priority") == [("comms.tasks.deliver_message", f"[{message.id}]")]

    assert message_deliver(message_id=message.id, now=quiet_end) == 4
    assert states(message) == {DeliveryState.DELIVERED}
    assert deliveries_requeue(now=quiet_end + stuck) == (0, 0)


def test_digest_emails_left_pending_are_requeued(world, send, stuck, published, mailoutbox):
    send(T)
    digests_build(now=WINDOW)
    digest_ids = sorted(Digest.objects.values_list("id", flat=True))

    assert deliveries_requeue(now=WINDOW + stuck - SECOND) == (0, 0)
    assert deliveries_requeue(now=WINDOW + stuck) == (0, 3)
    assert published("routine") == [("comms.tasks.deliver_digest_emails", f"[{digest_ids}]")]

    assert digest_emails_deliver(digest_ids=digest_ids, now=WINDOW + stuck) == 3
    assert len(mailoutbox) == 3
    assert deliveries_requeue(now=WINDOW + 2 * stuck) == (0, 0)


def test_escalations_left_pending_are_requeued(world, send, stuck, published):
    message = send(T, category="safety", ack_due_at=T + 20 * MINUTE)
    message_deliver(message_id=message.id, now=T)
    comms_sweep(now=T + 20 * MINUTE)

    assert deliveries_requeue(now=T + 20 * MINUTE + stuck) == (1, 0)
    assert published("priority") == [("comms.tasks.deliver_message", f"[{message.id}]")]
    assert message_deliver(message_id=message.id, now=T + 20 * MINUTE + stuck) == 8
    escalations = Delivery.objects.filter(kind=DeliveryKind.ESCALATION)
    assert set(escalations.values_list("state", flat=True)) == {DeliveryState.DELIVERED}


# --- the sweep ----------------------------------------------------------------------------


def test_sweep_reports_what_it_did(world, send):
    send(T)

    assert comms_sweep(now=WINDOW - SECOND) == SweepResult(0, 0, 0, 0)
    assert comms_sweep(now=WINDOW) == SweepResult(3, 0, 0, 0)
    assert comms_sweep(now=WINDOW) == SweepResult(0, 0, 0, 0), "nothing twice"


def test_the_beat_task_takes_an_iso_time(world, send):
    send(T)
    assert sweep(now=WINDOW.isoformat()) == {
        "digests": 3,
        "escalations": 0,
        "messages_requeued": 0,
        "digests_requeued": 0,
    }


def test_beat_down_for_an_hour_catches_up_digests_and_escalations(
    world, send, site_prefs, stuck, published, mailoutbox
):
    """Windows at T+10 min (Site One, 08:00 in Berlin) and T+40 min (Site Two, moved to
    India: 13:00 there), an acknowledgement due at T+20 min, and no sweep until T+60 min."""
    site_prefs(world.site_2, time_zone="Asia/Kolkata", digest_hour=13)
    reminder = send(T, subject="Enter visit data", dedup_key="visit-data")
    safety = send(T, category="safety", subject="Hold dosing", ack_due_at=T + 20 * MINUTE)
    assert message_deliver(message_id=safety.id, now=T) == 6
    # Site One moves its digest to India's 13:00 too: its next reminder waits for T+40 min.
    site_prefs(world.site_1, time_zone="Asia/Kolkata", digest_hour=13)
    later = send(T + 15 * MINUTE, subject="Enter visit data", dedup_key="visit-data")
    due = {
        row.recipient.username: row.due_at
        for row in Delivery.objects.filter(message__in=[reminder, later], channel=Channel.IN_APP)
    }
    assert set(due.values()) == {T + 10 * MINUTE, T + 40 * MINUTE}

    result = comms_sweep(now=T + 60 * MINUTE)

    assert result == SweepResult(digests=5, escalations=2, messages_requeued=0, digests_requeued=0)
    for person in (world.site_coord_1, world.pi_1):
        items = list(digest_items(person))
        assert [item.digest.window_at for item in items] == [T + 10 * MINUTE, T + 40 * MINUTE]
        assert [line_counts(item) for item in items] == [[("Enter visit data", 1)]] * 2
    [coord_2] = digest_items(world.site_coord_2)
    assert coord_2.digest.window_at == T + 40 * MINUTE
    assert line_counts(coord_2) == [("Enter visit data", 2)], "both reminders, one line"
    in_app = Delivery.objects.filter(kind=DeliveryKind.DIGEST, channel=Channel.IN_APP)
    assert set(in_app.values_list("delivered_at", flat=True)) == {T + 60 * MINUTE}, "caught up"
    escalated = Delivery.objects.filter(kind=DeliveryKind.ESCALATION, channel=Channel.IN_APP)
    assert set(escalated.values_list("recipient__username", "study_site__site__name")) == {
        ("pi_1", "Site One"),
        ("cra", "Site One"),
        ("lead_a", "Site One"),
        ("lead_a", "Site Two"),
    }

    # What the sweep enqueued after commit never ran here; the next sweep past the stuck
    # delay hands it to the workers again, and delivering it leaves nothing pending.
    next_sweep = T + 60 * MINUTE + stuck
    assert comms_sweep(now=next_sweep) == SweepResult(0, 0, 1, 5)
    assert ("comms.tasks.deliver_message", f"[{safety.id}]") in published("priority")
    assert message_deliver(message_id=safety.id, now=next_sweep) == 8
    digest_ids = Digest.objects.values_list("id", flat=True)
    assert digest_emails_deliver(digest_ids=digest_ids, now=next_sweep) == 5
    assert not Delivery.objects.filter(state=DeliveryState.PENDING).exists()
    assert comms_sweep(now=next_sweep + stuck) == SweepResult(0, 0, 0, 0)
    assert len([email for email in mailoutbox if email.subject.startswith("TrialHub digest")]) == 5


def test_the_beat_task_reads_a_time_without_offset_as_utc(world, send):
    send(T)
    safety = send(T, category="safety", ack_due_at=WINDOW)
    message_deliver(message_id=safety.id, now=T)
    result = sweep(now=WINDOW.replace(tzinfo=None).isoformat())
    assert (result["digests"], result["escalations"]) == (3, 2)
    assert set(Digest.objects.values_list("window_at", flat=True)) == {WINDOW}
