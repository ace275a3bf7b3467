"""Digests and escalations in ``/api/v1/inbox/``: their shapes, filters that match a digest
through its lines, reading and acknowledging, and who may see them."""

from __future__ import annotations

import datetime

import pytest

from comms.models import DeliveryKind, DeliveryState
from comms.services import digests_build, escalations_sweep, message_deliver
from tests.comms.helpers import digest_item, in_app

INBOX = "/api/v1/inbox/"


@pytest.fixture
def mixed_digest(world, send, now, after_window):
    """Site One's coordinator's digest: three reminders sharing a dedup key and a newsletter
    on study A, and a reminder on study B (the same site takes part in both)."""
    reminders = [send(now, subject="Enter visit data", dedup_key="visits") for _ in range(3)]
    newsletter = send(now, subject="March newsletter", category="newsletter")
    study_b = send(
        now,
        actor=world.sponsor_lead_b,
        study=world.study_b,
        subject="Close queries",
        category="query_reminder",
    )
    digests_build(now=after_window)
    return {"reminders": reminders, "newsletter": newsletter, "study_b": study_b}


def rows_of(response) -> list[dict]:
    assert response.status_code == 200, response.content[:300]
    return response.json()["results"]


def test_digest_item_shape(world, api_as, mixed_digest):
    item = digest_item(world.site_coord_1)

    [body] = rows_of(api_as(world.site_coord_1).get(INBOX))

    assert body["id"] == item.id
    assert (body["kind"], body["is_digest"], body["state"]) == ("digest", True, "unread")
    assert body["message"] == {
        "id": None,
        "subject": "Digest: 3 updates",
        "body": "",
        "tier": "routine",
        "category": None,
        "study": None,
        "study_code": None,
        "sponsor": None,
        "sender_organization": None,
        "endorsed": False,
    }
    assert (body["requires_ack"], body["ack_due_at"], body["escalation"]) == (False, None, None)
    lines = {(line["study_code"], line["subject"]): line for line in body["digest_items"]}
    assert {key: line["count"] for key, line in lines.items()} == {
        ("A-001", "Enter visit data"): 3,
        ("A-001", "March newsletter"): 1,
        ("B-001", "Close queries"): 1,
    }
    visits = lines["A-001", "Enter visit data"]
    assert sorted(visits["message_ids"]) == sorted(m.id for m in mixed_digest["reminders"])
    assert {key: visits[key] for key in ("category", "tier", "study", "sponsor_name")} == {
        "category": "visit_reminder",
        "tier": "routine",
        "study": world.study_a.id,
        "sponsor_name": "Sponsor A",
    }
    assert lines["A-001", "March newsletter"]["tier"] == "info"
    assert lines["B-001", "Close queries"]["sponsor_name"] == "Sponsor B"
    assert (
        datetime.datetime.fromisoformat(visits["latest_at"]) == mixed_digest["reminders"][0].sent_at
    )


def test_the_detail_of_a_digest_item_has_its_lines(world, api_as, mixed_digest):
    item = digest_item(world.site_coord_1)
    body = api_as(world.site_coord_1).get(f"{INBOX}{item.id}/").json()
    assert body["is_digest"] is True
    assert sum(line["count"] for line in body["digest_items"]) == 5


@pytest.mark.parametrize(
    ("query", "listed"),
    [
        ("study={study_a}", True),
        ("study={study_b}", True),
        ("sponsor={sponsor_b}", True),
        ("tier=routine", True),
        ("tier=info", True),
        ("tier=key", False),
        ("tier=critical", False),
        ("state=unread", True),
        ("state=read", False),
        ("study={study_b}&tier=info", False),  # study B's line is a routine one
        ("sponsor={sponsor_a}&tier=info", True),
    ],
)
def test_filters_match_a_digest_through_its_lines(world, api_as, mixed_digest, query, listed):
    query = query.format(
        study_a=world.study_a.id,
        study_b=world.study_b.id,
        sponsor_a=world.sponsor_a.id,
        sponsor_b=world.sponsor_b.id,
    )
    rows = rows_of(api_as(world.site_coord_1).get(f"{INBOX}?{query}"))
    assert [row["is_digest"] for row in rows] == ([True] if listed else [])


def test_a_study_filter_does_not_match_another_recipients_digest(world, api_as, mixed_digest):
    # Site Two's coordinator works on study A only: their digest has no study B line.
    client = api_as(world.site_coord_2)
    assert len(rows_of(client.get(f"{INBOX}?study={world.study_a.id}"))) == 1
    assert rows_of(client.get(f"{INBOX}?study={world.study_b.id}")) == []


def test_reading_a_digest_through_the_api_reads_its_lines(world, api_as, mixed_digest):
    coord = world.site_coord_1
    item = digest_item(coord)
    client = api_as(coord)

    body = client.post(f"{INBOX}{item.id}/read/").json()

    assert body["state"] == "read"
    assert body["read_at"] is not None
    assert len(body["digest_items"]) == 3
    for message in [*mixed_digest["reminders"], mixed_digest["newsletter"]]:
        assert in_app(coord, message).state == DeliveryState.READ
    assert in_app(world.pi_1, mixed_digest["newsletter"]).state == DeliveryState.DELIVERED
    assert client.get(f"{INBOX}counts/").json() == {"unread": 0, "to_acknowledge": 0}


def test_acknowledging_a_digest_is_a_400(world, api_as, mixed_digest):
    item = digest_item(world.site_coord_1)
    client = api_as(world.site_coord_1)
    response = client.post(f"{INBOX}{item.id}/acknowledge/")
    assert response.status_code == 400
    assert "message" in response.json()
    assert client.get(f"{INBOX}{item.id}/").json()["state"] == "unread"


@pytest.mark.parametrize("person", ["pi_1", "site_coord_2", "sponsor_lead_a", "cra"])
def test_another_users_digest_is_a_404(world, api_as, mixed_digest, person):
    item = digest_item(world.site_coord_1)
    client = api_as(getattr(world, person))
    for method, suffix in (("get", ""), ("post", "read/"), ("post", "acknowledge/")):
        assert getattr(client, method)(f"{INBOX}{item.id}/{suffix}").status_code == 404
    assert api_as(None).get(f"{INBOX}{item.id}/").status_code in (401, 403)
    item.refresh_from_db()
    assert item.state == DeliveryState.DELIVERED


# --- escalations --------------------------------------------------------------------------


@pytest.fixture
def escalated(world, send, now):
    due = now + datetime.timedelta(hours=2)
    message = send(now, category="safety", subject="Hold dosing", ack_due_at=due)
    message_deliver(message_id=message.id, now=now)
    escalations_sweep(now=due)
    message_deliver(message_id=message.id, now=due)
    return message


def escalation_rows(client) -> list[dict]:
    return [row for row in rows_of(client.get(INBOX)) if row["kind"] == DeliveryKind.ESCALATION]


def test_escalation_item_shape(world, api_as, escalated):
    [body] = escalation_rows(api_as(world.pi_1))

    assert body["escalation"] == {"study_site": world.ss_a1.id, "site_name": "Site One"}
    assert (body["is_digest"], body["digest_items"], body["state"]) == (False, [], "unread")
    assert body["message"]["id"] == escalated.id
    assert body["message"]["subject"] == "Hold dosing"
    assert body["message"]["tier"] == "critical"
    assert (body["requires_ack"], body["ack_due_at"]) == (False, None)


def test_the_sender_sees_an_escalation_per_site(world, api_as, escalated):
    rows = escalation_rows(api_as(world.sponsor_lead_a))
    assert sorted(row["escalation"]["site_name"] for row in rows) == ["Site One", "Site Two"]
    tier_rows = rows_of(api_as(world.sponsor_lead_a).get(f"{INBOX}?tier=critical"))
    assert len(tier_rows) == 2, "an escalation carries its message's tier"


def test_an_escalation_is_read_but_not_acknowledged(world, api_as, escalated):
    client = api_as(world.cra)
    [row] = escalation_rows(client)

    refused = client.post(f"{INBOX}{row['id']}/acknowledge/")
    read = client.post(f"{INBOX}{row['id']}/read/")

    assert refused.status_code == 400
    assert "message" in refused.json()
    assert read.status_code == 200
    assert read.json()["state"] == "read"
    assert read.json()["escalation"] == {"study_site": world.ss_a1.id, "site_name": "Site One"}


@pytest.mark.parametrize("person", ["site_coord_1", "site_coord_2", "cra_2", "sponsor_lead_b"])
def test_another_users_escalation_is_a_404(world, api_as, escalated, person):
    [row] = escalation_rows(api_as(world.pi_1))
    client = api_as(getattr(world, person))
    for method, suffix in (("get", ""), ("post", "read/"), ("post", "acknowledge/")):
        assert getattr(client, method)(f"{INBOX}{row['id']}/{suffix}").status_code == 404


def test_site_name_placeholder_reads_as_each_recipients_own_site(world, api_as, send, now):
    message = send(
        now,
        category="protocol_amendment",
        subject="Amendment 4 at {site_name}",
        body="Dear {site_name} team, please file amendment 4.",
    )
    message_deliver(message_id=message.id, now=now)
    message_of = {
        user.username: rows_of(api_as(user).get(INBOX))[0]["message"]
        for user in (world.site_coord_1, world.site_coord_2)
    }

    assert {name: message["subject"] for name, message in message_of.items()} == {
        "coord_1": "Amendment 4 at Site One",
        "coord_2": "Amendment 4 at Site Two",
    }
    assert message_of["coord_1"]["body"] == "Dear Site One team, please file amendment 4."


def test_a_digest_of_info_lines_only_is_info(world, api_as, send, now, after_window):
    send(now, subject="March newsletter", category="newsletter")
    digests_build(now=after_window)

    [body] = rows_of(api_as(world.site_coord_1).get(INBOX))

    assert (body["is_digest"], body["message"]["tier"]) == (True, "info")
