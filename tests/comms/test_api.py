"""Messages and inbox over the API: who may call what, the flows, shapes and query counts."""

from __future__ import annotations

import datetime
from itertools import count

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from comms.models import Channel, Delivery, MessageStatus
from comms.services import (
    digests_build,
    escalations_sweep,
    message_deliver,
    message_draft_create,
    message_send,
)
from comms.tasks import deliver_message
from tests.comms.helpers import DIGEST_WAIT
from tests.factories import status_cases

pytestmark = pytest.mark.django_db
User = get_user_model()
MESSAGES = "/api/v1/messages/"
INBOX = "/api/v1/inbox/"


def make_message(w, actor=None, category="visit_reminder", **fields):
    """A draft to every site of study A (by sponsor A's lead unless told)."""
    return message_draft_create(
        actor=actor or w.sponsor_lead_a,
        study=w.study_a,
        category=category,
        subject=fields.pop("subject", f"About {category}"),
        body="Please read this.",
        audience={"all_sites": True},
        **fields,
    )


def send_and_deliver(w, actor=None, category="protocol_amendment", **fields):
    """Sent directly and delivered by the delivery task (called as a function)."""
    actor = actor or w.sponsor_lead_a
    message = message_send(message=make_message(w, actor, category, **fields), actor=actor)
    deliver_message(message.id)
    return message


def pending_message(w):
    """A CRO recruitment push: the CRO is Informed, so it waits for sponsor A's lead."""
    message = make_message(w, w.cro_pm, "recruitment_push")
    return message_send(message=message, actor=w.cro_pm)


def inbox_item(w, message, user=None):
    return Delivery.objects.get(
        message=message, recipient=user or w.site_coord_1, channel=Channel.IN_APP
    )


def _draft_body(w):
    return {
        "study": w.study_a.id,
        "category": "visit_reminder",
        "subject": "Enter visit data",
        "body": "Please enter last week's visits.",
        "audience": {"all_sites": True},
    }


# --- role x endpoint x tenant --------------------------------------------------------------

# endpoint: (method, path builder, body builder or None)
ENDPOINTS = {
    "messages": ("get", lambda w: MESSAGES, None),
    "message": ("get", lambda w: f"{MESSAGES}{send_and_deliver(w).id}/", None),
    "draft": ("get", lambda w: f"{MESSAGES}{make_message(w).id}/", None),
    "create": ("post", lambda w: MESSAGES, _draft_body),
    "send": ("post", lambda w: f"{MESSAGES}{make_message(w).id}/send/", None),
    "approve": ("post", lambda w: f"{MESSAGES}{pending_message(w).id}/approve/", None),
    "reject": (
        "post",
        lambda w: f"{MESSAGES}{pending_message(w).id}/reject/",
        lambda w: {"reason": "Wait for the newsletter."},
    ),
    "endorse": ("post", lambda w: f"{MESSAGES}{send_and_deliver(w).id}/endorse/", None),
    "inbox": ("get", lambda w: INBOX, None),
    "inbox-counts": ("get", lambda w: f"{INBOX}counts/", None),
    "inbox-item": ("get", lambda w: f"{INBOX}{inbox_item(w, send_and_deliver(w)).id}/", None),
    "inbox-read": (
        "post",
        lambda w: f"{INBOX}{inbox_item(w, send_and_deliver(w)).id}/read/",
        None,
    ),
    "inbox-acknowledge": (
        "post",
        lambda w: f"{INBOX}{inbox_item(w, send_and_deliver(w)).id}/acknowledge/",
        None,
    ),
}

# fmt: off
#                      lead_a viewer_a lead_b cro_pm cro_b  cra  coord_1 coord_2 no_org anon
EXPECTED = {
    "messages":          (200,  200,     200,   200,   200,   200, 200,    200,    200,   401),
    # A sent message: its study's sponsor and CRO people, and the sites it was delivered to.
    "message":           (200,  200,     404,   200,   404,   200, 200,    200,    404,   401),
    # A draft is its organisation's business only.
    "draft":             (200,  200,     404,   404,   404,   404, 404,    404,    404,   401),
    # Writers of study A's parties draft; viewers and sites may not (403); a study out of
    # reach in the body is a 400 field error.
    "create":            (201,  403,     400,   201,   400,   201, 403,    403,    400,   401),
    "send":              (200,  403,     404,   404,   404,   404, 404,    404,    404,   401),
    # The Accountable sponsor decides; the CRO sees its own message pending but may not.
    "approve":           (200,  403,     404,   403,   404,   403, 404,    404,    404,   401),
    "reject":            (200,  403,     404,   403,   404,   403, 404,    404,    404,   401),
    "endorse":           (200,  403,     404,   403,   404,   403, 403,    403,    404,   401),
    "inbox":             (200,  200,     200,   200,   200,   200, 200,    200,    200,   401),
    "inbox-counts":      (200,  200,     200,   200,   200,   200, 200,    200,    200,   401),
    # Site One's coordinator's own inbox item: nobody else's business.
    "inbox-item":        (404,  404,     404,   404,   404,   404, 200,    404,    404,   401),
    "inbox-read":        (404,  404,     404,   404,   404,   404, 200,    404,    404,   401),
    "inbox-acknowledge": (404,  404,     404,   404,   404,   404, 200,    404,    404,   401),
}
# fmt: on

CASES = status_cases(EXPECTED)


@pytest.fixture
def world(module_world):
    """Built once for the module: each test rolls its own writes back."""
    return module_world


def test_matrix_covers_every_endpoint():
    assert EXPECTED.keys() == ENDPOINTS.keys()


@pytest.mark.parametrize(("endpoint", "persona", "expected"), CASES)
def test_status(world, api_as, endpoint, persona, expected):
    w = world
    method, path, body = ENDPOINTS[endpoint]
    user = None if persona == "anonymous" else User.objects.get(pk=getattr(w, persona).pk)
    url = path(w)
    response = getattr(api_as(user), method)(url, body(w) if body else None, format="json")
    assert response.status_code == expected, response.content[:300]


# --- messages ------------------------------------------------------------------------------


def test_message_shape(world, api_as):
    message = send_and_deliver(world, category="safety", subject="Hold dosing")
    response = api_as(world.sponsor_lead_a).post(f"{MESSAGES}{message.id}/endorse/")
    assert response.status_code == 200, response.content

    body = api_as(world.cro_pm).get(f"{MESSAGES}{message.id}/").json()

    assert body["id"] == message.id
    assert {key: body[key] for key in ("study", "category", "tier", "subject", "status")} == {
        "study": world.study_a.id,
        "category": "safety",
        "tier": "critical",
        "subject": "Hold dosing",
        "status": "sent",
    }
    assert body["requires_ack"] is True
    assert body["ack_due_at"] is not None
    assert body["audience"] == {"all_sites": True}
    assert (body["dedup_key"], body["send_now"]) == ("", False)
    assert body["sender"] == "lead_a"
    assert body["sender_organization"] == {
        "id": world.sponsor_a.id,
        "name": "Sponsor A",
        "kind": "sponsor",
    }
    assert body["endorsed_by"] == "lead_a"
    assert body["sent_at"] is not None
    assert body["recipients_count"] == 3


def test_draft_create_parses_every_field(world, api_as):
    due = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=3)).replace(microsecond=0)
    payload = {
        **_draft_body(world),
        "category": "protocol_amendment",
        "tier": "key",
        "dedup_key": "amendment-3",
        "ack_due_at": due.isoformat(),
        "audience": {"study_sites": [world.ss_a1.id], "roles": ["site_coordinator"]},
    }

    response = api_as(world.sponsor_lead_a).post(MESSAGES, payload, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["tier"], body["dedup_key"]) == ("draft", "key", "amendment-3")
    assert datetime.datetime.fromisoformat(body["ack_due_at"]) == due
    assert body["audience"] == {"study_sites": [world.ss_a1.id], "roles": ["site_coordinator"]}


@pytest.mark.parametrize(
    ("change", "error_key"),
    [
        ({"category": "gossip"}, "category"),
        ({"subject": ""}, "subject"),
        ({"audience": {"everyone": True}}, "audience"),
        ({"audience": {"study_sites": [999999]}}, "audience"),
        ({"send_now": True, "category": "safety"}, "send_now"),
        ({"tier": "urgent"}, "tier"),
    ],
)
def test_bad_draft_is_a_400_with_field_errors(world, api_as, change, error_key):
    response = api_as(world.sponsor_lead_a).post(
        MESSAGES, {**_draft_body(world), **change}, format="json"
    )
    assert response.status_code == 400, response.content
    assert error_key in response.json()


def test_study_out_of_reach_in_a_draft_is_a_field_error(world, api_as):
    for study in (world.study_a, world.study_a.id + 1000):
        study_id = getattr(study, "id", study)
        response = api_as(world.sponsor_lead_b).post(
            MESSAGES, {**_draft_body(world), "study": study_id}, format="json"
        )
        assert response.status_code == 400
        assert response.json() == {"study": ["Not found."]}, "same answer as a missing study"
    assert not world.study_a.messages.exists()


def test_approve_and_reject_flow_through_the_api(world, api_as):
    cro, lead = api_as(world.cro_pm), api_as(world.sponsor_lead_a)
    drafts = [
        cro.post(MESSAGES, {**_draft_body(world), "category": "recruitment_push"}, format="json")
        for _ in range(2)
    ]
    first, second = (response.json()["id"] for response in drafts)
    for message_id in (first, second):
        sent = cro.post(f"{MESSAGES}{message_id}/send/")
        assert sent.status_code == 200, sent.content
        assert sent.json()["status"] == "pending_approval"
    waiting = lead.get(f"{MESSAGES}?status=pending_approval").json()
    assert {row["id"] for row in waiting["results"]} == {first, second}

    no_reason = lead.post(f"{MESSAGES}{first}/reject/", {"reason": " "}, format="json")
    rejected = lead.post(f"{MESSAGES}{first}/reject/", {"reason": "Not now."}, format="json")
    approved = lead.post(f"{MESSAGES}{second}/approve/", {"reason": "Go."}, format="json")
    twice = lead.post(f"{MESSAGES}{second}/approve/", {}, format="json")

    assert no_reason.status_code == 400
    assert "reason" in no_reason.json()
    assert rejected.status_code == 200, rejected.content
    assert rejected.json()["status"] == "rejected"
    assert approved.status_code == 200, approved.content
    assert (approved.json()["status"], approved.json()["recipients_count"]) == ("sent", 3)
    assert approved.json()["sender"] == "cro_pm", "the CRO stays the sender"
    assert twice.status_code == 400
    assert "status" in twice.json()

    deliver_message(second)
    inbox = api_as(world.site_coord_1).get(INBOX).json()["results"]
    assert [row["message"]["id"] for row in inbox] == [second]
    assert inbox[0]["message"]["sender_organization"]["name"] == "Shared CRO"


def test_approve_without_a_body_records_no_reason(world, api_as):
    message = pending_message(world)
    response = api_as(world.sponsor_lead_a).post(f"{MESSAGES}{message.id}/approve/")
    assert response.status_code == 200, response.content
    assert message.decisions.get().reason == ""


def test_sending_twice_is_a_400(world, api_as):
    message = make_message(world)
    client = api_as(world.sponsor_lead_a)
    assert client.post(f"{MESSAGES}{message.id}/send/").json()["status"] == "sent"
    again = client.post(f"{MESSAGES}{message.id}/send/")
    assert again.status_code == 400
    assert "status" in again.json()


def test_message_list_filters(world, api_as):
    reminder = send_and_deliver(world, category="visit_reminder")
    amendment = send_and_deliver(world, category="protocol_amendment")
    draft = make_message(world, category="newsletter")
    client = api_as(world.sponsor_lead_a)

    def ids(query):
        response = client.get(f"{MESSAGES}?{query}")
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert ids(f"study={world.study_a.id}") == {reminder.id, amendment.id, draft.id}
    assert ids(f"study={world.study_b.id}") == set()
    assert ids("status=draft") == {draft.id}
    assert ids("category=protocol_amendment") == {amendment.id}
    assert ids("tier=routine") == {reminder.id}
    assert client.get(f"{MESSAGES}?tier=urgent").status_code == 400


def test_site_people_list_only_messages_delivered_to_them(world, api_as):
    delivered = send_and_deliver(world)
    make_message(world)
    pending_message(world)
    rows = api_as(world.site_coord_1).get(MESSAGES).json()["results"]
    assert [row["id"] for row in rows] == [delivered.id]
    assert api_as(world.site_coord_3).get(MESSAGES).json()["count"] == 0


# --- inbox ---------------------------------------------------------------------------------


def test_inbox_item_shape(world, api_as):
    message = send_and_deliver(world, category="safety", subject="Hold dosing")
    item = inbox_item(world, message)

    body = api_as(world.site_coord_1).get(f"{INBOX}{item.id}/").json()

    assert body == {
        "id": item.id,
        "kind": "message",
        "message": {
            "id": message.id,
            "subject": "Hold dosing",
            "body": "Please read this.",
            "tier": "critical",
            "category": "safety",
            "study": world.study_a.id,
            "study_code": "A-001",
            "sponsor": {"id": world.sponsor_a.id, "name": "Sponsor A", "kind": "sponsor"},
            "sender_organization": {
                "id": world.sponsor_a.id,
                "name": "Sponsor A",
                "kind": "sponsor",
            },
            "endorsed": False,
        },
        "state": "unread",
        "is_digest": False,
        "digest_items": [],
        "escalation": None,
        "delivered_at": body["delivered_at"],
        "read_at": None,
        "acknowledged_at": None,
        "ack_due_at": body["ack_due_at"],
        "requires_ack": True,
    }
    assert body["delivered_at"] is not None
    message.refresh_from_db()
    assert datetime.datetime.fromisoformat(body["ack_due_at"]) == message.ack_due_at
    item.refresh_from_db()
    assert item.read_at is None, "GET does not mark read: POST read/ does"


def test_inbox_lists_in_priority_order_and_filters_by_state(world, api_as):
    routine = send_and_deliver(world, category="visit_reminder", send_now=True)
    key = send_and_deliver(world, category="protocol_amendment")
    acknowledged = send_and_deliver(world, category="recruitment_push")
    client = api_as(world.site_coord_1)
    client.post(f"{INBOX}{inbox_item(world, acknowledged).id}/acknowledge/")
    safety = send_and_deliver(world, category="safety")

    def message_ids(query=""):
        response = client.get(f"{INBOX}{query}")
        assert response.status_code == 200, response.content
        return [row["message"]["id"] for row in response.json()["results"]]

    assert message_ids() == [safety.id, key.id, acknowledged.id, routine.id]
    assert message_ids("?state=acknowledged") == [acknowledged.id]
    assert message_ids("?state=unread") == [safety.id, key.id, routine.id]
    assert message_ids("?tier=key") == [key.id, acknowledged.id]
    assert message_ids(f"?study={world.study_b.id}") == []
    assert message_ids(f"?sponsor={world.sponsor_a.id}") == message_ids()
    assert client.get(f"{INBOX}?state=deleted").status_code == 400
    assert client.get(f"{INBOX}?study=abc").status_code == 400


def test_read_and_acknowledge_are_idempotent(world, api_as):
    client = api_as(world.site_coord_1)
    item = inbox_item(world, send_and_deliver(world, category="protocol_amendment"))

    read = client.post(f"{INBOX}{item.id}/read/").json()
    read_again = client.post(f"{INBOX}{item.id}/read/").json()
    acknowledged = client.post(f"{INBOX}{item.id}/acknowledge/").json()
    acknowledged_again = client.post(f"{INBOX}{item.id}/acknowledge/").json()
    read_after = client.post(f"{INBOX}{item.id}/read/").json()

    assert read["state"] == read_again["state"] == "read"
    assert read["read_at"] == read_again["read_at"] is not None
    assert acknowledged["state"] == "acknowledged"
    assert acknowledged["read_at"] == read["read_at"], "the first read time is kept"
    assert acknowledged_again == acknowledged
    assert read_after == acknowledged


def test_acknowledging_a_routine_message_is_a_400(world, api_as):
    client = api_as(world.site_coord_1)
    item = inbox_item(world, send_and_deliver(world, category="visit_reminder", send_now=True))

    response = client.post(f"{INBOX}{item.id}/acknowledge/")

    assert response.status_code == 400
    assert "message" in response.json()
    assert client.get(f"{INBOX}{item.id}/").json()["state"] == "unread"


@pytest.mark.parametrize("person", ["pi_1", "site_coord_2", "site_coord_3", "sponsor_lead_b"])
def test_another_users_inbox_item_is_a_404(world, api_as, person):
    item = inbox_item(world, send_and_deliver(world, category="safety"))
    client = api_as(getattr(world, person))
    for method, suffix in (("get", ""), ("post", "read/"), ("post", "acknowledge/")):
        assert getattr(client, method)(f"{INBOX}{item.id}/{suffix}").status_code == 404
    item.refresh_from_db()
    assert item.read_at is None


def test_inbox_counts(world, api_as):
    client = api_as(world.site_coord_1)
    routine = send_and_deliver(world, category="visit_reminder", send_now=True)
    key = send_and_deliver(world, category="protocol_amendment")
    send_and_deliver(world, category="safety")
    client.post(f"{INBOX}{inbox_item(world, routine).id}/read/")
    client.post(f"{INBOX}{inbox_item(world, key).id}/acknowledge/")

    assert client.get(f"{INBOX}counts/").json() == {"unread": 1, "to_acknowledge": 1}
    assert api_as(world.pi_1).get(f"{INBOX}counts/").json() == {
        "unread": 3,
        "to_acknowledge": 2,
    }


def test_pending_deliveries_are_not_in_the_inbox(world, api_as):
    message = message_send(message=make_message(world), actor=world.sponsor_lead_a)
    client = api_as(world.site_coord_1)
    assert client.get(INBOX).json()["count"] == 0
    assert client.get(f"{INBOX}{inbox_item(world, message).id}/").status_code == 404
    assert message.status == MessageStatus.SENT


# --- query counts --------------------------------------------------------------------------

SMALL, LARGE = 3, 12
serial = count()


def grow(w, n):
    """``n`` more of each kind of row: a key message delivered to the sites; two reminders
    sharing a dedup key and a newsletter folded into one more digest per site person (each
    round is sent on its own later day, so its window is its own); a critical message left
    unacknowledged and escalated; a draft and a message pending approval."""
    for _ in range(n):
        number = next(serial)
        send_and_deliver(w, category="protocol_amendment", subject=f"Amendment {number}")
        at = timezone.now() + datetime.timedelta(days=2 * number + 1)
        for category, subject in (
            ("visit_reminder", f"Reminder {number}"),
            ("visit_reminder", f"Reminder {number}"),
            ("newsletter", f"Newsletter {number}"),
        ):
            message = make_message(w, category=category, subject=subject, dedup_key="visits")
            message_send(message=message, actor=w.sponsor_lead_a, now=at)
        safety = make_message(w, category="safety", subject=f"Safety {number}")
        safety = message_send(message=safety, actor=w.sponsor_lead_a, now=at)
        later = at + DIGEST_WAIT
        assert digests_build(now=later) == 3, "one more digest for each person of study A"
        assert escalations_sweep(now=safety.ack_due_at) >= 2, "both sites of study A"
        message_deliver(message_id=safety.id, now=safety.ack_due_at)
        make_message(w, subject=f"Draft {number}")
        pending_message(w)


QUERY_CASES = {
    "inbox": ("site_coord_1", INBOX),
    # The investigator's inbox holds escalations too.
    "inbox-pi": ("pi_1", INBOX),
    "inbox-digests": ("site_coord_1", f"{INBOX}?tier=info"),
    "inbox-filtered": ("site_coord_1", f"{INBOX}?state=unread&tier=key"),
    "messages-sponsor": ("sponsor_lead_a", MESSAGES),
    "messages-cro": ("cro_pm", f"{MESSAGES}?status=pending_approval"),
    "messages-site": ("site_coord_1", MESSAGES),
}


def measure(client: APIClient, url: str) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content[:300]
    return len(queries), response.json()["count"]


@pytest.mark.parametrize(("persona", "url"), QUERY_CASES.values(), ids=QUERY_CASES.keys())
def test_query_count_does_not_grow_with_rows(world, persona, url):
    def fresh_client():
        client = APIClient()
        client.force_authenticate(User.objects.get(pk=getattr(world, persona).pk))
        return client

    measure(fresh_client(), url)  # warm per-process caches
    grow(world, SMALL)
    small_queries, small_rows = measure(fresh_client(), url)
    grow(world, LARGE - SMALL)
    large_queries, large_rows = measure(fresh_client(), url)

    assert large_rows >= small_rows + (LARGE - SMALL), "the data did grow"
    assert large_queries == small_queries
