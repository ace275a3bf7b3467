"""Sponsor-approved message templates, the study's comms policy, drafting from a template and
how a message written from one is routed."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from comms.models import (
    Delivery,
    Message,
    MessageStatus,
    MessageTemplate,
    StudyCommsPolicy,
    TemplateStatus,
)
from comms.services import (
    message_draft_create,
    message_send,
    message_template_approve,
    message_template_create,
    message_template_retire,
    message_template_update,
    study_comms_policy_set,
)
from comms.services.sending import (
    ROUTE_APPROVAL,
    ROUTE_DIRECT,
    ROUTE_TEMPLATE,
    message_routing_preview,
    send_now_daily_limit,
)
from comms.services.templates import template_wording_matches

DUE = datetime.date(2026, 12, 5)
PUSH_SUBJECT = "{study_code}: recruitment push until {due_date}"
PUSH_BODY = "Dear {site_name} team, please screen every eligible patient before {due_date}."


@pytest.fixture
def template(world):
    """``template(**fields)``: a template proposed by the CRO PM on study A, by default a
    recruitment push (an area where the CRO is only Informed)."""

    def make(actor=None, study=None, **fields):
        values = {
            "category": "recruitment_push",
            "name": "Recruitment push",
            "subject": PUSH_SUBJECT,
            "body": PUSH_BODY,
            **fields,
        }
        return message_template_create(
            actor=actor or world.cro_pm, study=study or world.study_a, **values
        )

    return make


@pytest.fixture
def approved(world, template, now):
    return message_template_approve(template=template(), actor=world.sponsor_lead_a, now=now)


def from_template(world, approved, **fields):
    values = {"audience": {"all_sites": True}, "template": approved, "due_date": DUE, **fields}
    return message_draft_create(actor=world.cro_pm, study=world.study_a, **values)


# --- writing and versions -----------------------------------------------------------------


def test_a_proposed_template_starts_at_version_one_awaiting_approval(world, template):
    proposed = template()
    assert (proposed.version, proposed.status) == (1, TemplateStatus.DRAFT)
    assert (proposed.created_by, proposed.organization) == (world.cro_pm, world.cro)
    assert proposed.approved_by is None


def test_editing_a_template_awaiting_approval_keeps_its_version(world, template, now):
    proposed = template()
    edited = message_template_update(
        template=proposed, actor=world.cro_pm, body="Please screen more patients.", now=now
    )
    assert (edited.version, edited.status) == (1, TemplateStatus.DRAFT)
    assert MessageTemplate.objects.get().body == "Please screen more patients."


def test_editing_an_approved_template_makes_a_new_version_awaiting_approval(world, approved, now):
    edited = message_template_update(
        template=approved, actor=world.cra, subject="{study_code}: last call", now=now
    )
    edited.refresh_from_db()
    assert (edited.version, edited.status) == (2, TemplateStatus.DRAFT)
    assert (edited.approved_by, edited.approved_at) == (None, None)
    again = message_template_approve(template=edited, actor=world.sponsor_lead_a, now=now)
    assert (again.version, again.status) == (2, TemplateStatus.APPROVED)


def test_only_the_proposing_organisation_or_the_sponsor_lead_edits_a_template(world, approved, now):
    with pytest.raises(PermissionDenied):
        message_template_update(
            template=approved, actor=world.sponsor_a_admin, subject="{study_code}: hurry", now=now
        )
    approved.refresh_from_db()
    assert (approved.version, approved.status) == (1, TemplateStatus.APPROVED)

    edited = message_template_update(
        template=approved, actor=world.sponsor_lead_a, subject="{study_code}: hurry", now=now
    )
    assert (edited.version, edited.subject) == (2, "{study_code}: hurry")


def test_an_edit_that_changes_nothing_keeps_the_approval(world, approved, now):
    same = message_template_update(template=approved, actor=world.cro_pm, subject=PUSH_SUBJECT)
    same.refresh_from_db()
    assert (same.version, same.status) == (1, TemplateStatus.APPROVED)


@pytest.mark.parametrize("field", ["subject", "body"])
def test_unknown_placeholder_is_a_field_error(world, template, field):
    with pytest.raises(ValidationError) as error:
        template(**{field: "Hello {site_name}, see {visit_date} and {patient}"})
    assert set(error.value.message_dict) == {field}
    assert "{patient}, {visit_date}" in error.value.message_dict[field][0]
    assert not MessageTemplate.objects.exists()


def test_braces_that_are_not_placeholders_are_plain_text(world, template):
    assert template(body="Use the {{ }} form and the { } box.").body.startswith("Use")


def test_template_fields_are_validated_together(world, template):
    template()
    with pytest.raises(ValidationError) as error:
        template(category="gossip", name="recruitment PUSH", subject=" ", body="")
    assert set(error.value.message_dict) == {"category", "name", "subject", "body"}


def test_names_are_unique_per_study_only(world, template):
    template()
    other = template(actor=world.cro_pm, study=world.study_b)
    assert other.study == world.study_b


@pytest.mark.parametrize("person", ["site_coord_1", "sponsor_viewer_a", "sponsor_lead_b"])
def test_only_writers_on_the_study_write_templates(world, template, person):
    with pytest.raises(PermissionDenied):
        template(actor=getattr(world, person))


# --- approval and retirement --------------------------------------------------------------


@pytest.mark.parametrize("person", ["cro_pm", "cra", "sponsor_viewer_a", "sponsor_lead_b"])
def test_only_the_studys_sponsor_lead_approves(world, template, now, person):
    proposed = template()
    with pytest.raises(PermissionDenied):
        message_template_approve(template=proposed, actor=getattr(world, person), now=now)
    proposed.refresh_from_db()
    assert proposed.status == TemplateStatus.DRAFT


def test_sponsor_lead_approval_is_recorded(world, template, now):
    approved = message_template_approve(template=template(), actor=world.sponsor_lead_a, now=now)
    assert (approved.status, approved.approved_by, approved.approved_at) == (
        TemplateStatus.APPROVED,
        world.sponsor_lead_a,
        now,
    )
    with pytest.raises(ValidationError) as error:
        message_template_approve(template=approved, actor=world.sponsor_lead_a, now=now)
    assert "status" in error.value.message_dict


def test_cro_withdraws_its_own_proposal_but_not_an_approved_template(world, template, now):
    proposed = template(name="Withdrawn")
    assert message_template_retire(template=proposed, actor=world.cra, now=now).status == "retired"
    approved = message_template_approve(template=template(), actor=world.sponsor_lead_a, now=now)
    with pytest.raises(PermissionDenied):
        message_template_retire(template=approved, actor=world.cro_pm, now=now)
    retired = message_template_retire(template=approved, actor=world.sponsor_lead_a, now=now)
    assert retired.status == TemplateStatus.RETIRED


def test_a_retired_template_is_neither_edited_nor_retired_again(world, approved, now):
    retired = message_template_retire(template=approved, actor=world.sponsor_lead_a, now=now)
    with pytest.raises(ValidationError) as error:
        message_template_update(template=retired, actor=world.cro_pm, body="New words")
    assert "status" in error.value.message_dict
    with pytest.raises(ValidationError):
        message_template_retire(template=retired, actor=world.sponsor_lead_a, now=now)


# --- the study's comms policy -------------------------------------------------------------


def test_sponsor_lead_sets_the_send_now_limit(world, now):
    assert send_now_daily_limit(world.study_a.id) == 2
    policy = study_comms_policy_set(
        study=world.study_a, actor=world.sponsor_lead_a, send_now_daily_limit=5, now=now
    )
    assert (policy.send_now_daily_limit, policy.updated_by) == (5, world.sponsor_lead_a)
    study_comms_policy_set(study=world.study_a, actor=world.sponsor_lead_a, send_now_daily_limit=0)
    assert StudyCommsPolicy.objects.count() == 1
    assert send_now_daily_limit(world.study_a.id) == 0


@pytest.mark.parametrize("limit", [-1, 51, "3", True, None])
def test_send_now_limit_is_a_whole_number_from_0_to_50(world, limit):
    with pytest.raises(ValidationError) as error:
        study_comms_policy_set(
            study=world.study_a, actor=world.sponsor_lead_a, send_now_daily_limit=limit
        )
    assert set(error.value.message_dict) == {"send_now_daily_limit"}


@pytest.mark.parametrize("person", ["cro_pm", "sponsor_viewer_a", "sponsor_a_admin"])
def test_only_the_sponsor_lead_sets_the_policy(world, person):
    with pytest.raises(PermissionDenied):
        study_comms_policy_set(
            study=world.study_a, actor=getattr(world, person), send_now_daily_limit=4
        )
    assert not StudyCommsPolicy.objects.exists()


# --- drafting from a template -------------------------------------------------------------


def test_draft_from_a_template_takes_its_category_and_fills_due_date_and_study_code(
    world, approved
):
    message = from_template(world, approved)
    assert message.category == "recruitment_push"
    assert message.subject == "A-001: recruitment push until 5 December 2026"
    assert message.body == (
        "Dear {site_name} team, please screen every eligible patient before 5 December 2026."
    ), "{site_name} is filled per recipient when shown"
    assert (message.template, message.template_version) == (approved, 1)


def test_a_template_using_due_date_needs_one(world, approved):
    with pytest.raises(ValidationError) as error:
        from_template(world, approved, due_date=None)
    assert set(error.value.message_dict) == {"due_date"}


def test_draft_category_must_match_the_templates(world, approved):
    with pytest.raises(ValidationError) as error:
        from_template(world, approved, category="newsletter")
    assert set(error.value.message_dict) == {"category"}


def test_only_approved_templates_of_the_study_are_drafted_from(world, template, approved, now):
    awaiting = template(name="Awaiting")
    other_study = message_template_approve(
        template=template(study=world.study_b, name="B push"), actor=world.sponsor_lead_b, now=now
    )
    retired = message_template_retire(template=approved, actor=world.sponsor_lead_a, now=now)
    for refused in (awaiting, other_study, retired):
        with pytest.raises(ValidationError) as error:
            from_template(world, refused)
        assert set(error.value.message_dict) == {"template"}, refused
    assert not Message.objects.exists()


# --- sending from a template --------------------------------------------------------------


def test_cro_message_from_an_approved_template_goes_out_without_approval(world, approved, now):
    message = message_send(message=from_template(world, approved), actor=world.cro_pm, now=now)
    assert message.status == MessageStatus.SENT, "the CRO is only Informed: the template decides"
    assert message.recipients_count == 3
    assert Delivery.objects.filter(message=message).exists()


@pytest.mark.parametrize("code", ["C", "I"])
def test_template_lets_a_consulted_or_informed_cro_send_directly(
    world, set_codes, approved, now, code
):
    set_codes(world.study_a, "recruitment_comms", {world.cro: code})
    message = message_send(message=from_template(world, approved), actor=world.cro_pm, now=now)
    assert message.status == MessageStatus.SENT


def test_edited_wording_goes_through_normal_routing(world, approved, now):
    message = from_template(
        world, approved, body="Dear team, please screen patients, or not, as you like."
    )
    assert message.template == approved, "the template it started from is still recorded"
    message = message_send(message=message, actor=world.cro_pm, now=now)
    assert message.status == MessageStatus.PENDING_APPROVAL
    assert not Delivery.objects.filter(message=message).exists()


def test_message_from_an_old_version_goes_through_normal_routing(world, approved, now):
    message = from_template(world, approved)
    edited = message_template_update(
        template=approved, actor=world.cro_pm, body="New wording for {site_name}.", now=now
    )
    message_template_approve(template=edited, actor=world.sponsor_lead_a, now=now)
    message = message_send(message=message, actor=world.cro_pm, now=now)
    assert (message.template_version, message.status) == (1, MessageStatus.PENDING_APPROVAL)


@pytest.mark.parametrize("change", ["edited", "retired"])
def test_template_no_longer_approved_at_send_goes_through_normal_routing(
    world, approved, now, change
):
    message = from_template(world, approved)
    if change == "edited":
        message_template_update(template=approved, actor=world.cro_pm, name="Push v2", body="Hi")
    else:
        message_template_retire(template=approved, actor=world.sponsor_lead_a, now=now)
    message = message_send(message=message, actor=world.cro_pm, now=now)
    assert message.status == MessageStatus.PENDING_APPROVAL


def test_tier_raising_rules_still_apply_to_template_messages(world, template, now):
    reminder = message_template_approve(
        template=template(category="visit_reminder", name="Visits", subject="Visits", body="Go"),
        actor=world.sponsor_lead_a,
        now=now,
    )
    message = from_template(world, reminder, tier="key")
    with pytest.raises(ValidationError) as error:
        message_send(message=message, actor=world.cro_pm, now=now)
    assert "tier" in error.value.message_dict
    message.refresh_from_db()
    assert message.status == MessageStatus.DRAFT


def test_wording_match_takes_one_due_date_throughout(world, approved):
    kwargs = {"study_code": "A-001"}
    good = (
        "A-001: recruitment push until 1 May 2027",
        PUSH_BODY.replace("{due_date}", "1 May 2027"),
    )
    assert template_wording_matches(approved, subject=good[0], body=good[1], **kwargs)
    mixed = PUSH_BODY.replace("{due_date}", "2 May 2027")
    assert not template_wording_matches(approved, subject=good[0], body=mixed, **kwargs)
    loose = PUSH_BODY.replace("{due_date}", "1 May 2027, or later")
    assert not template_wording_matches(approved, subject=good[0], body=loose, **kwargs)
    assert not template_wording_matches(approved, subject=good[0], body=good[1], study_code="B")


# --- routing preview ----------------------------------------------------------------------


def test_routing_preview_names_the_accountable_party_and_writes_nothing(world, approved, set_codes):
    args = {"study": world.study_a, "category": "recruitment_push"}
    plain = message_routing_preview(actor=world.cro_pm, **args)
    assert (plain.route, plain.goes_directly, plain.accountable_name) == (
        ROUTE_APPROVAL,
        False,
        "Sponsor A",
    )
    assert message_routing_preview(actor=world.cro_pm, template=approved, **args).route == (
        ROUTE_TEMPLATE
    )
    assert message_routing_preview(actor=world.sponsor_lead_a, **args).route == ROUTE_DIRECT
    raised = message_routing_preview(
        actor=world.cro_pm, study=world.study_a, category="newsletter", tier="key"
    )
    assert raised.tier_error and not raised.goes_directly
    assert not Message.objects.exists()


# --- endorsement requests -----------------------------------------------------------------


def test_cro_asks_for_the_sponsors_endorsement_on_key_messages(world, draft):
    message = draft(actor=world.cro_pm, category="protocol_amendment", endorsement_requested=True)
    assert message.endorsement_requested
    with pytest.raises(ValidationError) as error:
        draft(actor=world.cro_pm, category="visit_reminder", endorsement_requested=True)
    assert set(error.value.message_dict) == {"endorsement_requested"}
    with pytest.raises(ValidationError) as error:
        draft(category="protocol_amendment", endorsement_requested=True)
    assert set(error.value.message_dict) == {"endorsement_requested"}, "the sponsor speaks itself"
