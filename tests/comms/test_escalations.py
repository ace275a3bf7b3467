"""Escalation of acknowledgements that are overdue: once, after the due time, to the
study-site's principal investigator(s) and CRA(s) and to the sender, as inbox items and
emails that name the site (PRODUCT.md "Acknowledgement & escalation")."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import ValidationError

from comms.models import PIN_KEY_UNREAD, PIN_NONE, Channel, Delivery, DeliveryKind, DeliveryState
from comms.selectors import inbox_counts, inbox_for_user
from comms.services import (
    delivery_acknowledge,
    delivery_mark_read,
    escalations_sweep,
    message_deliver,
)
from tests.comms.helpers import in_app, label, next_year
from tests.factories import member
from trialhub.models import RoleAssignment, StudyRole
from trialhub.services import role_assignment_create, role_assignment_end

T = next_year(1, 14, 9)  # 10:00 in Berlin and Paris
DUE = T + datetime.timedelta(hours=2)
SECOND = datetime.timedelta(seconds=1)


def escalations(message) -> set[tuple[str, str, str]]:
    """The message's escalation rows as (study-site's site, recipient, channel)."""
    rows = Delivery.objects.filter(kind=DeliveryKind.ESCALATION, message=message)
    return set(rows.values_list("study_site__site__name", "recipient__username", "channel"))


def told(message, site_name: str) -> set[str]:
    return {person for site, person, _channel in escalations(message) if site == site_name}


@pytest.fixture
def safety(world, send):
    """A safety communication to study A's sites, due to be acknowledged two hours after it
    was sent and delivered at ``T``."""
    message = send(T, category="safety", subject="Hold dosing", ack_due_at=DUE)
    assert message_deliver(message_id=message.id, now=T) == 6
    return message


def test_nothing_escalates_before_the_due_time(world, safety):
    assert escalations_sweep(now=DUE - SECOND) == 0
    assert not Delivery.objects.filter(kind=DeliveryKind.ESCALATION).exists()
    assert not Delivery.objects.filter(escalated_at__isnull=False).exists()


def test_overdue_acknowledgements_escalate_once_per_study_site(world, safety):
    assert escalations_sweep(now=DUE) == 2, "Site One and Site Two"

    both = {Channel.IN_APP, Channel.EMAIL}
    assert escalations(safety) == {
        ("Site One", person, channel) for person in ("pi_1", "cra", "lead_a") for channel in both
    } | {("Site Two", "lead_a", channel) for channel in both}, "Site Two has no PI or CRA"
    originals = Delivery.objects.filter(message=safety, kind=DeliveryKind.MESSAGE)
    stamped = originals.filter(channel=Channel.IN_APP).values_list("escalated_at", flat=True)
    assert set(stamped) == {DUE}, "each overdue in-app delivery is marked escalated"
    rows = Delivery.objects.filter(kind=DeliveryKind.ESCALATION)
    assert set(rows.values_list("state", "due_at")) == {(DeliveryState.PENDING, DUE)}


def test_sweeping_again_escalates_nothing_more(world, safety):
    escalations_sweep(now=DUE)
    count = Delivery.objects.filter(kind=DeliveryKind.ESCALATION).count()

    assert escalations_sweep(now=DUE) == 0
    assert escalations_sweep(now=DUE + datetime.timedelta(days=2)) == 0
    assert Delivery.objects.filter(kind=DeliveryKind.ESCALATION).count() == count


def test_small_batches_escalate_each_study_site_once(world, safety):
    assert escalations_sweep(now=DUE, batch=1) == 2
    assert len(told(safety, "Site One")) == 3
    assert Delivery.objects.filter(kind=DeliveryKind.ESCALATION).count() == 8


def test_an_acknowledged_delivery_is_not_escalated(world, safety):
    for person in (world.site_coord_1, world.pi_1):
        delivery_acknowledge(delivery=in_app(person, safety), actor=person, now=DUE - SECOND)

    assert escalations_sweep(now=DUE) == 1

    assert told(safety, "Site One") == set(), "everyone at Site One acknowledged in time"
    assert told(safety, "Site Two") == {"lead_a"}
    assert in_app(world.site_coord_1, safety).escalated_at is None


def test_one_person_missing_at_a_site_escalates_the_site(world, safety):
    coord = world.site_coord_1
    delivery_acknowledge(delivery=in_app(coord, safety), actor=coord, now=DUE - SECOND)
    delivery_mark_read(delivery=in_app(world.pi_1, safety), actor=world.pi_1, now=T)

    escalations_sweep(now=DUE)

    assert told(safety, "Site One") == {"pi_1", "cra", "lead_a"}, "read is not acknowledged"


def test_a_late_acknowledgement_does_not_undo_the_escalation(world, safety):
    escalations_sweep(now=DUE)
    coord = world.site_coord_1
    delivery_acknowledge(delivery=in_app(coord, safety), actor=coord, now=DUE + SECOND)
    assert escalations_sweep(now=DUE + datetime.timedelta(hours=1)) == 0
    assert told(safety, "Site One") == {"pi_1", "cra", "lead_a"}


def test_key_messages_escalate_after_their_default_48_hours(world, send):
    message = send(T, category="protocol_amendment")
    message_deliver(message_id=message.id, now=T)

    assert escalations_sweep(now=T + datetime.timedelta(hours=48) - SECOND) == 0
    assert escalations_sweep(now=T + datetime.timedelta(hours=48)) == 2


@pytest.mark.parametrize("fields", [{}, {"send_now": True}, {"category": "newsletter"}])
def test_routine_and_info_never_escalate(world, send, fields):
    message = send(T, **fields)
    message_deliver(message_id=message.id, now=T)
    assert escalations_sweep(now=T + datetime.timedelta(days=30)) == 0


def test_only_current_investigators_and_cras_are_told(world, send):
    """The people are those holding the role when the escalation happens: an assignment
    that has ended is left out, a newly assigned CRA and a second investigator are told."""
    due = T + datetime.timedelta(hours=30)  # the next day
    message = send(T, category="safety", ack_due_at=due)
    message_deliver(message_id=message.id, now=T)
    second_pi = member(world.site_org_1, "pi_1b")
    role_assignment_create(
        actor=world.cro_pm,
        user=second_pi,
        role=StudyRole.PRINCIPAL_INVESTIGATOR,
        study_site=world.ss_a1,
        start_date=T.date(),
    )
    pi_assignment = RoleAssignment.objects.get(user=world.pi_1, study_site=world.ss_a1)
    ends = T.date() + datetime.timedelta(days=1)
    role_assignment_end(assignment=pi_assignment, actor=world.cro_pm, reason="Retired", on=ends)
    role_assignment_end(
        assignment=world.cra_assignment, actor=world.cro_pm, reason="Rotation", on=ends
    )
    role_assignment_create(
        actor=world.cro_pm, user=world.cra_2, role=StudyRole.CRA, study_site=world.ss_a1
    )

    escalations_sweep(now=due)

    assert told(message, "Site One") == {"pi_1b", "cra_2", "lead_a"}


def test_the_cra_of_study_b_is_not_told_about_study_a(world, send):
    # The CRA covers Site One on both studies; a study B message escalates to them as CRA
    # of study B's study-site, and a study A message only through study A's study-site.
    message = send(
        T,
        actor=world.sponsor_lead_b,
        study=world.study_b,
        category="safety",
        ack_due_at=DUE,
    )
    message_deliver(message_id=message.id, now=T)

    escalations_sweep(now=DUE)

    assert told(message, "Site One") == {"cra", "lead_b"}, "no PI on study B's Site One"
    assert told(message, "Site Three") == {"lead_b"}
    rows = Delivery.objects.filter(kind=DeliveryKind.ESCALATION, message=message)
    assert set(rows.values_list("study_site", flat=True)) == {world.ss_b1.id, world.ss_b3.id}


# --- in the inbox and by email ------------------------------------------------------------


@pytest.fixture
def escalated(world, safety):
    escalations_sweep(now=DUE)
    assert message_deliver(message_id=safety.id, now=DUE) == 8, "4 in-app and 4 emails"
    return safety


def escalation_items(user):
    return [row for row in inbox_for_user(user=user) if row.kind == DeliveryKind.ESCALATION]


def test_escalations_are_pinned_unread_in_the_investigators_and_senders_inbox(world, escalated):
    [pi_item] = escalation_items(world.pi_1)
    assert (pi_item.state, pi_item.pin_rank) == (DeliveryState.DELIVERED, PIN_KEY_UNREAD)
    assert [label(row) for row in inbox_for_user(user=world.pi_1)] == [
        "Hold dosing",  # the investigator's own unacknowledged critical message first
        "escalation: Hold dosing at Site One",
    ]
    sender_items = escalation_items(world.sponsor_lead_a)
    assert sorted(label(row) for row in sender_items) == [
        "escalation: Hold dosing at Site One",
        "escalation: Hold dosing at Site Two",
    ]
    assert {row.pin_rank for row in sender_items} == {PIN_KEY_UNREAD}
    assert [label(row) for row in escalation_items(world.cra)] == [
        "escalation: Hold dosing at Site One"
    ]
    assert escalation_items(world.site_coord_1) == [], "the coordinator is not escalated to"
    assert inbox_counts(world.sponsor_lead_a) == {"unread": 2, "to_acknowledge": 0}


def test_reading_an_escalation_unpins_it(world, escalated):
    [item] = escalation_items(world.cra)
    delivery_mark_read(delivery=item, actor=world.cra, now=DUE + SECOND)
    [item] = escalation_items(world.cra)
    assert (item.state, item.pin_rank) == (DeliveryState.READ, PIN_NONE)


def test_an_escalation_cannot_be_acknowledged(world, escalated):
    [item] = escalation_items(world.pi_1)
    with pytest.raises(ValidationError) as error:
        delivery_acknowledge(delivery=item, actor=world.pi_1, now=DUE + SECOND)
    assert "message" in error.value.message_dict
    item.refresh_from_db()
    assert (item.state, item.acknowledged_at) == (DeliveryState.DELIVERED, None)


def test_escalation_emails_name_the_site(world, safety, mailoutbox):
    escalations_sweep(now=DUE)
    message_deliver(message_id=safety.id, now=DUE)

    by_address = {}
    for email in mailoutbox:
        if "Not acknowledged" not in email.subject:
            continue  # the safety message itself
        by_address.setdefault(email.to[0], []).append(email)
    assert sorted(by_address) == ["cra@example.org", "lead_a@example.org", "pi_1@example.org"]
    assert sorted(email.subject for email in by_address["lead_a@example.org"]) == [
        "[A-001] Not acknowledged at Site One: Hold dosing",
        "[A-001] Not acknowledged at Site Two: Hold dosing",
    ]
    [email] = by_address["pi_1@example.org"]
    assert email.body.startswith("Not acknowledged in time at Site One.")
    assert "has not been acknowledged at Site One" in email.body
    [(html, mimetype)] = email.alternatives
    assert mimetype == "text/html"
    assert "Not acknowledged in time at Site One" in html
    assert message_deliver(message_id=safety.id, now=DUE) == 0, "each is sent once"


def test_a_delivery_held_through_quiet_hours_gets_that_long_more_before_escalating(
    world, send, site_prefs
):
    """Site One is quiet 09:00–13:00 Berlin time: a key message sent at 10:00 reaches it at
    13:00, three hours late, so its acknowledgement escalates three hours after the due time;
    Site Two, not held back, escalates on time."""
    site_prefs(
        world.site_1,
        quiet_hours_enabled=True,
        quiet_hours_start=datetime.time(9),
        quiet_hours_end=datetime.time(13),
    )
    message = send(T, category="protocol_amendment", subject="Amendment", ack_due_at=DUE)
    held = in_app(world.site_coord_1, message)
    assert held.due_at == T + datetime.timedelta(hours=3)

    escalations_sweep(now=DUE)
    assert told(message, "Site One") == set(), "Site One got the message only an hour ago"
    assert told(message, "Site Two") == {"lead_a"}

    escalations_sweep(now=DUE + datetime.timedelta(hours=3))
    assert told(message, "Site One") == {"pi_1", "cra", "lead_a"}
