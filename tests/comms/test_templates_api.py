"""API v1 for message templates, and messages drafted from one."""

from __future__ import annotations

from itertools import count

import pytest

from comms.models import MessageTemplate, TemplateStatus
from comms.services import message_template_approve, message_template_create
from tests.factories import PERSONAS

pytestmark = pytest.mark.django_db
LIST = "/api/v1/message-templates/"
serial = count()


def detail(template, verb: str = "") -> str:
    return f"{LIST}{template.id}/{verb + '/' if verb else ''}"


def propose(world, study=None, actor=None, **fields):
    values = {
        "category": "recruitment_push",
        "name": f"Push {next(serial)}",
        "subject": "{study_code}: screening push",
        "body": "Dear {site_name}, please screen before {due_date}.",
        **fields,
    }
    return message_template_create(
        actor=actor or world.cro_pm, study=study or world.study_a, **values
    )


@pytest.fixture
def template_a(world):
    return propose(world, name="A push")


@pytest.fixture
def approved_a(world, template_a):
    return message_template_approve(template=template_a, actor=world.sponsor_lead_a)


# --- tenancy -------------------------------------------------------------------------------

# Who sees study A's template: its sponsor and CRO people; site people and other tenants not.
SEES_A = {"sponsor_lead_a", "sponsor_viewer_a", "cro_pm", "cra"}


@pytest.mark.parametrize("persona", PERSONAS)
def test_template_reach_by_persona(world, api_as, template_a, persona):
    client = api_as(None if persona == "anonymous" else getattr(world, persona))
    listed = client.get(LIST, {"study": world.study_a.id})
    one = client.get(detail(template_a))
    if persona == "anonymous":
        assert (listed.status_code, one.status_code) in {(401, 401), (403, 403)}
        return
    assert listed.status_code == 200
    ids = [row["id"] for row in listed.json()["results"]]
    assert ids == ([template_a.id] if persona in SEES_A else [])
    assert one.status_code == (200 if persona in SEES_A else 404)


def test_other_tenant_cannot_edit_approve_or_retire(world, api_as, template_a):
    client = api_as(world.sponsor_lead_b)
    body = template_a.body
    assert client.patch(detail(template_a), {"body": "Mine now"}, format="json").status_code == 404
    assert client.post(detail(template_a, "approve")).status_code == 404
    assert client.post(detail(template_a, "retire")).status_code == 404
    template_a.refresh_from_db()
    assert (template_a.status, template_a.body) == (TemplateStatus.DRAFT, body)


def test_list_filters_by_study_and_status(world, api_as, template_a, now):
    approved_b = message_template_approve(
        template=propose(world, study=world.study_b), actor=world.sponsor_lead_b, now=now
    )
    client = api_as(world.cro_pm)
    everything = client.get(LIST).json()
    assert {row["id"] for row in everything["results"]} == {template_a.id, approved_b.id}
    only_b = client.get(LIST, {"study": world.study_b.id, "status": "approved"}).json()
    assert [row["id"] for row in only_b["results"]] == [approved_b.id]


# --- writing --------------------------------------------------------------------------------


def test_cro_proposes_a_template(world, api_as):
    response = api_as(world.cra).post(
        LIST,
        {
            "study": world.study_a.id,
            "category": "visit_reminder",
            "name": "Visit data",
            "subject": "Visit data for {site_name}",
            "body": "Please enter last week's visits by {due_date}.",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["version"], body["status"], body["created_by"]) == (1, "draft", "cra")
    assert body["organization"] == {"id": world.cro.id, "name": "Shared CRO", "kind": "cro"}
    assert body["approved_by"] is None


def test_bad_template_input_is_400_with_field_errors(world, api_as, template_a):
    client = api_as(world.cro_pm)
    response = client.post(
        LIST,
        {
            "study": world.study_a.id,
            "category": "recruitment_push",
            "name": "A push",
            "subject": "Hello {patient_name}",
            "body": "Body",
        },
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()) == {"name", "subject"}
    assert "{patient_name}" in response.json()["subject"][0]
    foreign = client.post(
        LIST,
        {"study": 999999, "category": "gossip", "name": "x", "subject": "s", "body": "b"},
        format="json",
    )
    assert foreign.status_code == 400
    assert set(foreign.json()) == {"study", "category"}
    assert MessageTemplate.objects.count() == 1


def test_a_study_of_another_tenant_is_a_field_error(world, api_as):
    response = api_as(world.sponsor_lead_b).post(
        LIST,
        {
            "study": world.study_a.id,
            "category": "newsletter",
            "name": "x",
            "subject": "s",
            "body": "b",
        },
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()) == {"study"}
    assert not MessageTemplate.objects.exists()


def test_viewer_cannot_propose(world, api_as):
    response = api_as(world.sponsor_viewer_a).post(
        LIST,
        {
            "study": world.study_a.id,
            "category": "newsletter",
            "name": "x",
            "subject": "s",
            "body": "b",
        },
        format="json",
    )
    assert response.status_code == 403


def test_editing_an_approved_template_via_patch_makes_a_new_version(world, api_as, approved_a):
    client = api_as(world.cro_pm)
    response = client.patch(detail(approved_a), {"body": "New words, {site_name}."}, format="json")
    assert response.status_code == 200, response.json()
    assert (response.json()["version"], response.json()["status"]) == (2, "draft")
    bad = client.patch(detail(approved_a), {"subject": "{oops}", "name": ""}, format="json")
    assert bad.status_code == 400
    assert set(bad.json()) == {"subject", "name"}
    assert client.put(detail(approved_a), {}, format="json").status_code == 405


# --- approval and retirement ----------------------------------------------------------------


@pytest.mark.parametrize("persona", ["cro_pm", "sponsor_viewer_a"])
def test_only_the_sponsor_lead_approves_403_for_others(world, api_as, template_a, persona):
    response = api_as(getattr(world, persona)).post(detail(template_a, "approve"))
    assert response.status_code == 403
    template_a.refresh_from_db()
    assert template_a.status == TemplateStatus.DRAFT


def test_sponsor_lead_approves_then_retires(world, api_as, template_a):
    client = api_as(world.sponsor_lead_a)
    approved = client.post(detail(template_a, "approve"))
    assert approved.status_code == 200
    assert (approved.json()["status"], approved.json()["approved_by"]) == ("approved", "lead_a")
    again = client.post(detail(template_a, "approve"))
    assert again.status_code == 400
    assert set(again.json()) == {"status"}
    assert api_as(world.cro_pm).post(detail(template_a, "retire")).status_code == 403
    retired = client.post(detail(template_a, "retire"))
    assert (retired.status_code, retired.json()["status"]) == (200, "retired")


# --- messages from a template ---------------------------------------------------------------


def test_message_drafted_from_a_template_goes_out_directly(world, api_as, approved_a):
    client = api_as(world.cro_pm)
    created = client.post(
        "/api/v1/messages/",
        {
            "study": world.study_a.id,
            "template": approved_a.id,
            "due_date": "2026-12-05",
            "audience": {"all_sites": True},
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["category"], body["template"], body["template_version"]) == (
        "recruitment_push",
        approved_a.id,
        1,
    )
    assert body["subject"] == "A-001: screening push"
    sent = client.post(f"/api/v1/messages/{body['id']}/send/")
    assert (sent.status_code, sent.json()["status"]) == (200, "sent")


def test_message_template_out_of_reach_or_unapproved_is_a_field_error(
    world, api_as, template_a, now
):
    b_template = message_template_approve(
        template=propose(world, study=world.study_b), actor=world.sponsor_lead_b, now=now
    )
    audience = {"all_sites": True}
    foreign = api_as(world.sponsor_lead_a).post(
        "/api/v1/messages/",
        {"study": world.study_a.id, "template": b_template.id, "audience": audience},
        format="json",
    )
    assert foreign.status_code == 400
    assert set(foreign.json()) == {"template"}
    unapproved = api_as(world.cro_pm).post(
        "/api/v1/messages/",
        {"study": world.study_a.id, "template": template_a.id, "audience": audience},
        format="json",
    )
    assert unapproved.status_code == 400
    assert set(unapproved.json()) == {"template"}
    missing = api_as(world.cro_pm).post(
        "/api/v1/messages/", {"study": world.study_a.id, "audience": audience}, format="json"
    )
    assert missing.status_code == 400
    assert set(missing.json()) == {"category", "subject", "body"}


# --- query counts ---------------------------------------------------------------------------


def test_template_list_queries_do_not_grow_with_rows(world, api_as, django_assert_max_num_queries):
    client = api_as(world.cro_pm)

    def add(n):
        for _ in range(n):
            template = propose(world)
            message_template_approve(template=template, actor=world.sponsor_lead_a)

    add(2)
    with django_assert_max_num_queries(20) as small:
        assert client.get(LIST).status_code == 200
    add(15)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert len(client.get(LIST).json()["results"]) == 17
