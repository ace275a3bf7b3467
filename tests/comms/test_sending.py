"""Sending: routing by the matrix, tier rules, audience resolution and stored deliveries."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from comms.models import Channel, Delivery, DeliveryState, Message, MessageStatus
from comms.services import message_send
from comms.services.audience import NO_RECIPIENTS
from tests.factories import member
from trialhub.models import RoleAssignment, StudyRole
from trialhub.permissions import membership_of
from trialhub.services import role_assignment_create, role_assignment_end


def recipients(message) -> set[str]:
    return set(
        Delivery.objects.filter(message=message, channel=Channel.IN_APP).values_list(
            "recipient__username", flat=True
        )
    )


# --- routing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cro_code", "status"),
    [
        ("R", MessageStatus.SENT),
        ("A", MessageStatus.SENT),
        ("C", MessageStatus.PENDING_APPROVAL),
        ("I", MessageStatus.PENDING_APPROVAL),
    ],
)
def test_cro_message_is_sent_only_when_responsible_or_accountable(
    world, set_codes, draft, now, cro_code, status
):
    sponsor_code = "R" if cro_code == "A" else "A"
    set_codes(world.study_a, "monitoring", {world.cro: cro_code, world.sponsor_a: sponsor_code})
    message = draft(actor=world.cro_pm, category="visit_reminder")

    message = message_send(message=message, actor=world.cro_pm, now=now)

    message.refresh_from_db()
    assert message.status == status
    assert message.submitted_at == now
    if status == MessageStatus.SENT:
        assert message.sent_at == now
        assert message.recipients_count == 3
        assert Delivery.objects.filter(message=message).count() == 3
    else:
        assert message.sent_at is None
        assert not Delivery.objects.filter(message=message).exists(), "nothing goes out unapproved"


def test_site_user_cannot_write_messages(world, draft):
    with pytest.raises(PermissionDenied):
        draft(actor=world.site_coord_1)


def test_viewers_read_but_do_not_write(world, draft):
    with pytest.raises(PermissionDenied):
        draft(actor=world.sponsor_viewer_a)
    assert draft(actor=world.cra).sender == world.cra, "a CRA writes to the sites"


def test_user_without_the_study_cannot_write_on_it(world, draft):
    with pytest.raises(PermissionDenied):
        draft(actor=world.sponsor_lead_b, study=world.study_a)


def test_only_the_author_sends_a_draft(world, draft, now):
    message = draft(actor=world.cro_pm)
    with pytest.raises(PermissionDenied):
        message_send(message=message, actor=world.cra, now=now)


def test_a_message_is_sent_once(world, draft, now):
    message = message_send(message=draft(), actor=world.sponsor_lead_a, now=now)
    with pytest.raises(ValidationError) as error:
        message_send(message=message, actor=world.sponsor_lead_a, now=now)
    assert "status" in error.value.message_dict


# --- tiers --------------------------------------------------------------------------------


def test_sender_may_lower_a_tier(world, draft, now):
    message = draft(category="recruitment_push", tier="routine")
    message = message_send(message=message, actor=world.sponsor_lead_a, now=now)
    assert (message.status, message.tier, message.requires_ack) == ("sent", "routine", False)
    assert message.ack_due_at is None
    assert not Delivery.objects.filter(message=message, channel=Channel.EMAIL).exists()


def test_responsible_cro_cannot_raise_a_tier(world, set_codes, draft, now):
    set_codes(world.study_a, "monitoring", {world.cro: "R"})
    message = draft(actor=world.cro_pm, category="visit_reminder", tier="key")
    with pytest.raises(ValidationError) as error:
        message_send(message=message, actor=world.cro_pm, now=now)
    assert "tier" in error.value.message_dict
    message.refresh_from_db()
    assert message.status == MessageStatus.DRAFT


def test_accountable_party_may_raise_a_tier(world, draft, now):
    message = draft(category="visit_reminder", tier="critical")
    message = message_send(message=message, actor=world.sponsor_lead_a, now=now)
    assert message.status == MessageStatus.SENT
    assert message.requires_ack
    assert message.ack_due_at == now + datetime.timedelta(hours=24)
    assert Delivery.objects.filter(message=message, channel=Channel.EMAIL).count() == 3


def test_raising_info_to_routine_needs_no_accountability(world, set_codes, draft, now):
    set_codes(world.study_a, "recruitment_comms", {world.cro: "R"})
    message = draft(actor=world.cro_pm, category="newsletter", tier="routine")
    assert message_send(message=message, actor=world.cro_pm, now=now).status == "sent"


def test_key_message_is_due_for_acknowledgement_in_48_hours(world, draft, now):
    message = draft(category="protocol_amendment")
    message = message_send(message=message, actor=world.sponsor_lead_a, now=now)
    assert (message.tier, message.requires_ack) == ("key", True)
    assert message.ack_due_at == now + datetime.timedelta(hours=48)


def test_given_ack_due_time_is_kept_and_must_lie_ahead(world, draft, now):
    due = now + datetime.timedelta(hours=6)
    sent = message_send(
        message=draft(category="safety", ack_due_at=due), actor=world.sponsor_lead_a, now=now
    )
    assert sent.ack_due_at == due
    late = draft(category="safety", ack_due_at=now - datetime.timedelta(minutes=1))
    with pytest.raises(ValidationError) as error:
        message_send(message=late, actor=world.sponsor_lead_a, now=now)
    assert "ack_due_at" in error.value.message_dict


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"category": "gossip"}, "category"),
        ({"tier": "urgent"}, "tier"),
        ({"subject": "  "}, "subject"),
        ({"body": ""}, "body"),
        ({"category": "recruitment_push", "send_now": True}, "send_now"),
        ({"ack_due_at": datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)}, "ack_due_at"),
    ],
)
def test_draft_fields_are_validated(draft, fields, field):
    with pytest.raises(ValidationError) as error:
        draft(**fields)
    assert field in error.value.message_dict


def test_tier_defaults_from_the_category(draft):
    assert draft(category="safety").tier == "critical"
    assert draft(category="newsletter").tier == "info"
    assert draft(category="scheduling", send_now=True).send_now


# --- audience -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("audience", "expected"),
    [
        ({"all_sites": True}, {"coord_1", "pi_1", "coord_2"}),
        ({"countries": ["de"]}, {"coord_1", "pi_1"}),
        ({"countries": ["FR", "ES"]}, {"coord_2"}),
        ({"all_sites": True, "roles": ["principal_investigator"]}, {"pi_1"}),
        ({"all_sites": True, "roles": ["site_coordinator"]}, {"coord_1", "coord_2"}),
    ],
)
def test_audience_resolves_to_site_role_holders(world, draft, now, audience, expected):
    message = message_send(message=draft(audience=audience), actor=world.sponsor_lead_a, now=now)
    assert recipients(message) == expected
    assert message.recipients_count == len(expected)


def test_chosen_study_sites_reach_their_people_only(world, draft, now):
    message = draft(audience={"study_sites": [world.ss_a2.id]})
    message = message_send(message=message, actor=world.sponsor_lead_a, now=now)
    assert recipients(message) == {"coord_2"}
    assert Delivery.objects.get(message=message).study_site == world.ss_a2


def test_ended_assignments_are_not_reached(world, draft, now):
    assignment = RoleAssignment.objects.get(user=world.site_coord_2, study_site=world.ss_a2)
    role_assignment_end(assignment=assignment, actor=world.cro_pm, reason="Left the site")
    message = message_send(message=draft(), actor=world.sponsor_lead_a, now=now)
    assert recipients(message) == {"coord_1", "pi_1"}


def test_person_with_two_site_roles_is_reached_once(world, draft, now):
    role_assignment_create(
        actor=world.cro_pm,
        user=world.site_coord_1,
        role=StudyRole.PRINCIPAL_INVESTIGATOR,
        study_site=world.ss_a1,
    )
    message = message_send(message=draft(), actor=world.sponsor_lead_a, now=now)
    assert Delivery.objects.filter(message=message, recipient=world.site_coord_1).count() == 1
    assert message.recipients_count == 3


def test_study_site_of_another_study_is_refused(world, draft):
    with pytest.raises(ValidationError) as error:
        draft(audience={"study_sites": [world.ss_a1.id, world.ss_b1.id]})
    assert "audience" in error.value.message_dict


@pytest.mark.parametrize(
    "audience",
    [
        [],
        {},
        {"all_sites": False},
        {"all_sites": True, "countries": ["DE"]},
        {"study_sites": []},
        {"study_sites": ["1"]},
        {"countries": ["Germany"]},
        {"all_sites": True, "roles": ["cra"]},
        {"all_sites": True, "roles": []},
        {"all_sites": True, "everyone": True},
    ],
)
def test_malformed_audience_is_refused(draft, audience):
    with pytest.raises(ValidationError) as error:
        draft(audience=audience)
    assert "audience" in error.value.message_dict


def test_audience_is_stored_normalised(draft):
    message = draft(audience={"countries": ["fr", "DE", "FR"], "roles": ["site_coordinator"]})
    assert message.audience == {"countries": ["DE", "FR"], "roles": ["site_coordinator"]}


@pytest.mark.parametrize("actor_name", ["sponsor_lead_a", "cro_pm"])
def test_audience_reaching_no_one_is_refused(world, draft, now, actor_name):
    actor = getattr(world, actor_name)  # the sponsor sends directly, the CRO needs approval
    message = draft(actor=actor, audience={"countries": ["ES"]})
    with pytest.raises(ValidationError) as error:
        message_send(message=message, actor=actor, now=now)
    assert error.value.message_dict == {"audience": [NO_RECIPIENTS]}
    assert Message.objects.get(pk=message.pk).status == MessageStatus.DRAFT


# --- deliveries ---------------------------------------------------------------------------


def test_sending_stores_one_delivery_per_recipient_and_channel(world, draft, now):
    message = draft(category="protocol_amendment")
    message = message_send(message=message, actor=world.sponsor_lead_a, now=now)
    rows = Delivery.objects.filter(message=message)
    assert rows.filter(channel=Channel.IN_APP).count() == 3
    assert rows.filter(channel=Channel.EMAIL).count() == 3
    assert set(rows.values_list("state", "due_at").distinct()) == {(DeliveryState.PENDING, now)}
    with pytest.raises(IntegrityError), transaction.atomic():
        Delivery.objects.create(
            message=message, recipient=world.pi_1, channel=Channel.EMAIL, due_at=now
        )


def test_deliveries_are_written_with_the_message_or_not_at_all(world, draft, now):
    """A delivery row the insert collides with (the unique constraint fails half-way through
    the fan-out) rolls the whole send back: no rows, the message still a draft."""
    message = draft()
    Delivery.objects.create(
        message=message, recipient=world.site_coord_2, channel=Channel.IN_APP, due_at=now
    )

    with pytest.raises(IntegrityError), transaction.atomic():
        message_send(message=message, actor=world.sponsor_lead_a, now=now)

    message.refresh_from_db()
    assert message.status == MessageStatus.DRAFT
    assert message.sent_at is None
    assert Delivery.objects.filter(message=message).count() == 1, "only the planted row"


@pytest.mark.parametrize(
    ("fields", "queue"),
    [
        ({"category": "safety"}, "priority"),
        ({"category": "recruitment_push"}, "priority"),
        ({"category": "visit_reminder", "send_now": True}, "routine"),
    ],
)
def test_delivery_task_is_enqueued_after_commit_with_the_id_only(
    world, draft, now, published, django_capture_on_commit_callbacks, fields, queue
):
    message = draft(**fields)
    with django_capture_on_commit_callbacks() as callbacks:
        message_send(message=message, actor=world.sponsor_lead_a, now=now)
        assert Delivery.objects.filter(message=message).exists()
    assert published(queue) == [], "nothing is handed to Celery before commit"
    for callback in callbacks:
        callback()
    assert published(queue) == [("comms.tasks.deliver_message", f"[{message.id}]")]


@pytest.mark.parametrize("category", ["visit_reminder", "newsletter"])
def test_a_message_waiting_for_the_digest_enqueues_nothing(
    world, draft, now, django_capture_on_commit_callbacks, category
):
    with django_capture_on_commit_callbacks() as callbacks:
        message_send(message=draft(category=category), actor=world.sponsor_lead_a, now=now)
    assert callbacks == [], "the beat sweep builds the digest when its window comes"


def test_pending_message_enqueues_nothing(world, draft, now, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        message_send(message=draft(actor=world.cro_pm), actor=world.cro_pm, now=now)
    assert callbacks == []


def test_send_query_count_does_not_grow_with_the_audience(world, draft, now):
    actor = world.sponsor_lead_a
    membership_of(actor)  # cached on the user for both runs alike
    small, large = draft(category="recruitment_push"), draft(category="recruitment_push")
    with CaptureQueriesContext(connection) as three:
        small = message_send(message=small, actor=actor, now=now)
    for number in range(9):
        role_assignment_create(
            actor=world.cro_pm,
            user=member(world.site_org_1, f"extra_coord_{number}"),
            role=StudyRole.SITE_COORDINATOR,
            study_site=world.ss_a1,
        )
    with CaptureQueriesContext(connection) as twelve:
        large = message_send(message=large, actor=actor, now=now)
    assert (small.recipients_count, large.recipients_count) == (3, 12)
    assert Delivery.objects.filter(message=large).count() == 24
    assert len(three) == len(twelve), [query["sql"] for query in twelve.captured_queries]
