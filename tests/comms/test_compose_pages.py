"""The compose page (preview, send, errors, endorsement request) and the message templates
pages (templates, comms policy, endorsement requests)."""

from __future__ import annotations

import re
from html import unescape
from itertools import count

import pytest

from comms.models import (
    Message,
    MessageStatus,
    MessageTemplate,
    StudyCommsPolicy,
    TemplateStatus,
)
from comms.services import message_template_approve, message_template_create
from tests.factories import PERSONAS

pytestmark = pytest.mark.django_db
COMPOSE = "/messages/new/"
PREVIEW = "/messages/preview/"
serial = count()


def propose(world, study=None, **fields):
    values = {
        "category": "recruitment_push",
        "name": f"Push {next(serial)}",
        "subject": "{study_code}: screening push",
        "body": "Dear {site_name}, please screen before {due_date}.",
        **fields,
    }
    return message_template_create(actor=world.cro_pm, study=study or world.study_a, **values)


@pytest.fixture
def approved(world):
    return message_template_approve(template=propose(world), actor=world.sponsor_lead_a)


def fields(world, **values) -> dict:
    """A compose form's POST data: a recruitment push to every site of study A."""
    return {
        "study": world.study_a.id,
        "category": "recruitment_push",
        "subject": "Screening push",
        "body": "Please screen every eligible patient this month.",
        "audience_scope": "all_sites",
        "roles": ["site_coordinator", "principal_investigator"],
        **values,
    }


def html(response) -> str:
    return " ".join(response.content.decode().split())


def text(response) -> str:
    """What a reader sees: the page without its tags, entities decoded."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


# --- who gets the compose page ---------------------------------------------------------------

# Writers (sponsor lead, CRO PM, CRA) get the form; the sponsor viewer sees the study but
# writes on none (an explanation, 200); site people and people without an organisation 404.
COMPOSE_STATUS = {
    "sponsor_lead_a": 200,
    "sponsor_viewer_a": 200,
    "sponsor_lead_b": 200,
    "cro_pm": 200,
    "cro_b_pm": 200,
    "cra": 200,
    "site_coord_1": 404,
    "site_coord_2": 404,
    "no_org_user": 404,
    "anonymous": 302,
}


@pytest.mark.parametrize("persona", PERSONAS)
def test_compose_page_by_persona(world, client_as, persona):
    user = None if persona == "anonymous" else getattr(world, persona)
    response = client_as(user).get(COMPOSE)
    assert response.status_code == COMPOSE_STATUS[persona]
    if persona == "anonymous":
        assert response["Location"].startswith("/accounts/login/")
    elif persona == "sponsor_viewer_a":
        assert "You write to sites on no study" in text(response)
    elif response.status_code == 200:
        assert 'name="action" value="send"' in html(response)


def test_compose_for_a_study_lists_its_sites_countries_and_templates(world, client_as, approved):
    page = text(client_as(world.cro_pm).get(COMPOSE, {"study": world.study_a.id}))
    assert "Site One (DE)" in page and "Site Two (FR)" in page
    assert "Site Three" not in page, "study B's site is not offered on study A"
    assert approved.name in page
    assert "Request sponsor endorsement" in page, "a CRO may ask for the sponsor's co-signature"
    sponsor_page = text(client_as(world.sponsor_lead_a).get(COMPOSE, {"study": world.study_a.id}))
    assert "Request sponsor endorsement" not in sponsor_page


def test_another_tenants_study_is_404_and_a_read_only_study_403(world, client_as):
    assert (
        client_as(world.sponsor_lead_b).get(COMPOSE, {"study": world.study_a.id}).status_code == 404
    )
    assert (
        client_as(world.site_coord_1).get(COMPOSE, {"study": world.study_a.id}).status_code == 404
    )
    assert client_as(world.sponsor_lead_a).get(COMPOSE, {"study": "nope"}).status_code == 404
    viewer = client_as(world.sponsor_viewer_a)
    assert viewer.get(COMPOSE, {"study": world.study_a.id}).status_code == 403
    assert viewer.post(COMPOSE, fields(world)).status_code == 403
    assert client_as(world.sponsor_lead_b).post(COMPOSE, fields(world)).status_code == 404
    assert client_as(world.sponsor_lead_b).get(PREVIEW, fields(world)).status_code == 404
    assert not Message.objects.exists()


def test_starting_from_a_template_fills_category_and_wording(world, client_as, approved):
    page = client_as(world.cro_pm).get(
        COMPOSE, {"study": world.study_a.id, "template": approved.id, "subject": "Mine"}
    )
    body = html(page)
    assert "{study_code}: screening push" in body
    assert 'value="recruitment_push" selected' in body
    assert "It uses the approved template" not in body, "no due date yet: the wording is open"


# --- the preview -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("audience", "people", "sites"),
    [
        ({"audience_scope": "all_sites"}, 3, 2),
        ({"audience_scope": "all_sites", "roles": ["site_coordinator"]}, 2, 2),
        ({"audience_scope": "study_sites", "study_sites": ["ss_a1"]}, 2, 1),
        ({"audience_scope": "countries", "countries": ["FR"]}, 1, 1),
    ],
)
def test_preview_counts_recipients_and_study_sites_today(world, client_as, audience, people, sites):
    if "study_sites" in audience:
        audience = {**audience, "study_sites": [world.ss_a1.id]}
    response = client_as(world.sponsor_lead_a).get(
        PREVIEW, fields(world, **audience), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    person = "person" if people == 1 else "people"
    study_sites = "study-site" if sites == 1 else "study-sites"
    assert f"Reaches {people} {person} at {sites} {study_sites} today" in text(response)
    assert "<html" not in html(response), "htmx gets the panel alone"


def test_compose_form_asks_htmx_for_the_preview_on_change(world, client_as):
    page = html(client_as(world.cro_pm).get(COMPOSE, {"study": world.study_a.id}))
    assert 'hx-get="/messages/preview/" hx-trigger="change" hx-target="#compose-preview"' in page
    assert 'id="compose-preview"' in page and "Before you send" in page


def test_preview_names_the_accountable_party_for_a_cro_message(world, client_as):
    page = text(client_as(world.cro_pm).get(PREVIEW, fields(world)))
    assert "Needs approval" in page
    assert "approval by Sponsor A" in page
    assert "Accountable for recruitment communications on A-001" in page
    assert "Shared CRO is Informed" in page


def test_preview_says_direct_for_the_accountable_sponsor(world, client_as):
    page = text(client_as(world.sponsor_lead_a).get(PREVIEW, fields(world)))
    assert "Goes out directly" in page
    assert "Sponsor A is Accountable for recruitment communications" in page


def test_preview_says_direct_because_of_an_approved_template(world, client_as, approved):
    data = fields(
        world,
        template=approved.id,
        subject=approved.subject,
        body=approved.body,
        due_date="2026-12-05",
    )
    page = text(client_as(world.cro_pm).get(PREVIEW, data))
    assert "Goes out directly" in page
    assert f"uses the approved template “{approved.name}” (version 1)" in page
    changed = text(client_as(world.cro_pm).get(PREVIEW, {**data, "body": "Other words."}))
    assert "Needs approval" in changed
    assert "wording differs from the approved template" in changed


def test_preview_refuses_a_tier_raise_before_sending(world, client_as):
    data = fields(world, category="visit_reminder", tier="critical")
    page = text(client_as(world.cro_pm).get(PREVIEW, data))
    assert "Refused before sending" in page
    assert "only the party Accountable for monitoring may raise it to critical" in page


def test_preview_button_without_javascript_renders_the_page_and_writes_nothing(world, client_as):
    response = client_as(world.cro_pm).post(COMPOSE, fields(world, action="preview"))
    assert response.status_code == 200
    page = text(response)
    assert "Reaches 3 people at 2 study-sites today" in page
    assert "approval by Sponsor A" in page
    assert 'value="Screening push"' in html(response), "the form keeps what was typed"
    assert not Message.objects.exists()


# --- sending ---------------------------------------------------------------------------------


def test_sponsor_sends_from_the_page(world, client_as):
    response = client_as(world.sponsor_lead_a).post(
        COMPOSE, fields(world, action="send"), follow=True
    )
    message = Message.objects.get()
    assert response.redirect_chain[0][0] == f"/messages/{message.id}/"
    assert message.status == MessageStatus.SENT
    assert (message.sender, message.audience) == (world.sponsor_lead_a, {"all_sites": True})
    assert "Sent to 3 recipients." in text(response)


def test_cro_message_waits_for_the_accountable_party(world, client_as):
    client = client_as(world.cro_pm)
    response = client.post(COMPOSE, fields(world, action="send"), follow=True)
    assert Message.objects.get().status == MessageStatus.PENDING_APPROVAL
    assert "Waiting for approval by Sponsor A." in text(response)


def test_cro_message_from_an_approved_template_is_sent_directly(world, client_as, approved):
    data = fields(world, action="send", template=approved.id, due_date="2026-12-05")
    data.update(subject=approved.subject, body=approved.body)
    response = client_as(world.cro_pm).post(COMPOSE, data, follow=True)
    message = Message.objects.get()
    assert (message.status, message.template, message.template_version) == (
        MessageStatus.SENT,
        approved,
        1,
    )
    assert message.subject == "A-001: screening push"
    assert "Sent to 3 recipients." in text(response)


def test_save_draft_keeps_a_draft(world, client_as):
    response = client_as(world.cra).post(COMPOSE, fields(world, action="draft"), follow=True)
    assert Message.objects.get().status == MessageStatus.DRAFT
    assert "Draft saved." in text(response)


def test_errors_are_shown_on_their_fields(world, client_as):
    response = client_as(world.sponsor_lead_a).post(
        COMPOSE,
        fields(world, action="send", subject="", audience_scope="study_sites", roles=[]),
    )
    assert response.status_code == 400
    form = response.context["form"]
    assert set(form.errors) == {"study_sites", "roles"}
    assert not Message.objects.exists()


def test_service_errors_are_shown_on_their_fields(world, client_as):
    response = client_as(world.sponsor_lead_a).post(
        COMPOSE,
        fields(
            world,
            action="send",
            subject="  ",
            category="visit_reminder",
            ack_due_at="2027-01-01T10:00",
        ),
    )
    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"subject", "ack_due_at"}
    assert not Message.objects.exists()


def test_a_refused_send_keeps_no_draft(world, client_as):
    response = client_as(world.cro_pm).post(
        COMPOSE, fields(world, action="send", category="visit_reminder", tier="key")
    )
    assert response.status_code == 400
    assert "tier" in response.context["form"].errors
    assert "may raise it to key" in text(response)
    assert not Message.objects.exists(), "draft and send are one transaction"


# --- endorsement requests --------------------------------------------------------------------


def test_cro_requests_endorsement_and_the_sponsor_lead_endorses(world, client_as):
    client_as(world.cro_pm).post(COMPOSE, fields(world, action="send", endorsement_requested="on"))
    message = Message.objects.get()
    assert message.endorsement_requested
    assert message.status == MessageStatus.PENDING_APPROVAL
    templates_page = f"/studies/{world.study_a.id}/templates/"
    lead_page = text(client_as(world.sponsor_lead_a).get(templates_page))
    assert "Endorsement requests" in lead_page and message.subject in lead_page
    assert "Endorsement requests" not in text(client_as(world.cro_pm).get(templates_page))
    endorse = f"/studies/{world.study_a.id}/endorsements/{message.id}/"
    assert client_as(world.cro_pm).post(endorse).status_code == 403
    assert client_as(world.sponsor_lead_b).post(endorse).status_code == 404
    wrong_study = f"/studies/{world.study_b.id}/endorsements/{message.id}/"
    assert client_as(world.cro_pm).post(wrong_study).status_code == 404
    response = client_as(world.sponsor_lead_a).post(endorse, follow=True)
    message.refresh_from_db()
    assert message.endorsed_by == world.sponsor_lead_a
    assert "co-signed by the sponsor" in text(response)
    assert message.subject not in text(client_as(world.sponsor_lead_a).get(templates_page))


def test_endorsement_request_is_refused_on_a_routine_message(world, client_as):
    response = client_as(world.cro_pm).post(
        COMPOSE,
        fields(world, action="draft", category="visit_reminder", endorsement_requested="on"),
    )
    assert response.status_code == 400
    assert "endorsement_requested" in response.context["form"].errors


# --- the templates pages ---------------------------------------------------------------------

TEMPLATES_STATUS = {
    "sponsor_lead_a": 200,
    "sponsor_viewer_a": 200,
    "sponsor_lead_b": 404,
    "cro_pm": 200,
    "cro_b_pm": 404,
    "cra": 200,
    "site_coord_1": 404,
    "site_coord_2": 404,
    "no_org_user": 404,
    "anonymous": 302,
}


@pytest.mark.parametrize("persona", PERSONAS)
def test_templates_page_by_persona(world, client_as, approved, persona):
    user = None if persona == "anonymous" else getattr(world, persona)
    response = client_as(user).get(f"/studies/{world.study_a.id}/templates/")
    assert response.status_code == TEMPLATES_STATUS[persona]
    if response.status_code == 200:
        assert approved.name in text(response)
    index = client_as(user).get("/messages/templates/")
    if persona in ("site_coord_1", "site_coord_2", "no_org_user"):
        assert index.status_code == 404
    elif persona != "anonymous":
        assert ("A-001" in text(index)) == (TEMPLATES_STATUS[persona] == 200)


def test_writer_proposes_and_only_the_sponsor_lead_approves(world, client_as):
    page = f"/studies/{world.study_a.id}/templates/"
    response = client_as(world.cra).post(
        page,
        {
            "template-category": "visit_reminder",
            "template-name": "Visit data",
            "template-subject": "Visit data for {site_name}",
            "template-body": "Enter last week's visits by {due_date}.",
        },
    )
    assert response.status_code == 302
    template = MessageTemplate.objects.get()
    assert (template.status, template.version) == (TemplateStatus.DRAFT, 1)
    cro_view = text(client_as(world.cro_pm).get(page))
    assert "Awaiting approval" in cro_view
    assert f"/templates/{template.id}/approve/" not in html(client_as(world.cro_pm).get(page))
    approve = f"{page}{template.id}/approve/"
    assert client_as(world.cro_pm).post(approve).status_code == 403
    assert client_as(world.sponsor_lead_b).post(approve).status_code == 404
    lead = client_as(world.sponsor_lead_a)
    assert f"/templates/{template.id}/approve/" in html(lead.get(page))
    assert lead.post(approve).status_code == 302
    template.refresh_from_db()
    assert template.status == TemplateStatus.APPROVED


def test_template_errors_are_shown_on_their_fields(world, client_as):
    response = client_as(world.cro_pm).post(
        f"/studies/{world.study_a.id}/templates/",
        {
            "template-category": "visit_reminder",
            "template-name": "Visits",
            "template-subject": "Hello {patient}",
            "template-body": "Text",
        },
    )
    assert response.status_code == 400
    assert set(response.context["template_form"].errors) == {"subject"}
    assert "Unknown placeholder {patient}" in text(response)
    assert not MessageTemplate.objects.exists()


def test_editing_an_approved_template_from_the_page_makes_a_new_version(world, client_as, approved):
    edit = f"/studies/{world.study_a.id}/templates/{approved.id}/edit/"
    client = client_as(world.cro_pm)
    assert approved.subject in html(client.get(edit))
    response = client.post(
        edit,
        {
            "category": approved.category,
            "name": approved.name,
            "subject": approved.subject,
            "body": "New words for {site_name}.",
        },
    )
    assert response.status_code == 302
    approved.refresh_from_db()
    assert (approved.version, approved.status) == (2, TemplateStatus.DRAFT)
    bad = client.post(edit, {"category": "safety", "name": "", "subject": "s", "body": "b"})
    assert bad.status_code == 400
    assert client_as(world.sponsor_viewer_a).get(edit).status_code == 403
    assert client_as(world.sponsor_lead_b).get(edit).status_code == 404
    other_study = f"/studies/{world.study_b.id}/templates/{approved.id}/edit/"
    assert client.get(other_study).status_code == 404


def test_retire_from_the_page(world, client_as, approved):
    retire = f"/studies/{world.study_a.id}/templates/{approved.id}/retire/"
    assert client_as(world.cro_pm).post(retire).status_code == 403
    assert client_as(world.sponsor_lead_a).post(retire).status_code == 302
    approved.refresh_from_db()
    assert approved.status == TemplateStatus.RETIRED


def test_sponsor_lead_sets_the_comms_policy(world, client_as):
    policy = f"/studies/{world.study_a.id}/comms-policy/"
    page = text(client_as(world.cro_pm).get(f"/studies/{world.study_a.id}/templates/"))
    assert "at most 2 stand-alone" in page, "others read the policy"
    assert (
        client_as(world.cro_pm).post(policy, {"policy-send_now_daily_limit": "4"}).status_code
        == 403
    )
    bad = client_as(world.sponsor_lead_a).post(policy, {"policy-send_now_daily_limit": "51"})
    assert bad.status_code == 400
    assert "send_now_daily_limit" in bad.context["policy_form"].errors
    assert (
        client_as(world.sponsor_lead_a)
        .post(policy, {"policy-send_now_daily_limit": "4"})
        .status_code
        == 302
    )
    assert StudyCommsPolicy.objects.get(study=world.study_a).send_now_daily_limit == 4


# --- query counts ----------------------------------------------------------------------------


def test_templates_pages_queries_do_not_grow_with_rows(
    world, client_as, django_assert_max_num_queries
):
    client = client_as(world.sponsor_lead_a)
    page = f"/studies/{world.study_a.id}/templates/"

    def add(n):
        for index in range(n):
            template = propose(world, category=["newsletter", "training", "safety"][index % 3])
            if index % 2:
                message_template_approve(template=template, actor=world.sponsor_lead_a)

    add(2)
    with django_assert_max_num_queries(40) as small:
        assert client.get(page).status_code == 200
    with django_assert_max_num_queries(40) as small_index:
        assert client.get("/messages/templates/").status_code == 200
    add(12)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert client.get(page).status_code == 200
    with django_assert_max_num_queries(len(small_index.captured_queries)):
        assert client.get("/messages/templates/").status_code == 200


def test_compose_queries_do_not_grow_with_sites_and_templates(
    world, client_as, django_assert_max_num_queries
):
    from sites.services import study_site_create
    from tests.factories import site_org

    client = client_as(world.cro_pm)
    query = {"study": world.study_a.id}
    with django_assert_max_num_queries(60) as small:
        assert client.get(COMPOSE, query).status_code == 200
    for index in range(6):
        _, site = site_org(f"Extra {index}", "IT", "Europe/Rome")
        study_site_create(
            study=world.study_a, site=site, enrolment_target=5, actor=world.sponsor_lead_a
        )
        message_template_approve(template=propose(world), actor=world.sponsor_lead_a)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert client.get(COMPOSE, query).status_code == 200
