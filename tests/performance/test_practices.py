"""The best-practices library: who contributes to which sponsor's library, tag rules,
publishing through comms (an info-tier newsletter that reaches the study's sites as a digest
line), withdrawing, who reads what, and the pages (tenancy, 403, login, query counts)."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.template import Context, Template
from django.test import RequestFactory
from django.utils import timezone

from comms.models import Channel, Delivery, DeliveryKind, Message, MessageStatus, Tier
from comms.services import digests_build
from performance.models import PracticeNote, PracticeStatus, Recognition
from performance.selectors.practices import (
    practice_note_for_user,
    practice_notes_for_user,
    practice_sponsor_choices,
)
from performance.services.practices import (
    practice_note_create,
    practice_note_publish,
    practice_note_withdraw,
)
from sites.services import study_site_create
from tests.comms.helpers import DIGEST_WAIT, digest_item, line_counts
from tests.factories import new_study
from trialhub.models import StudyRole
from trialhub.selectors import responsibility_matrix
from trialhub.services import responsibility_matrix_set, role_assignment_create

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)
LIST = "/practices/"
NEW = "/practices/new/"


def recognise(study_site, quarter=datetime.date(2026, 4, 1)) -> Recognition:
    """A top-quartile place for ``study_site`` (no recognition service exists yet)."""
    return Recognition.objects.create(
        study_site=study_site, quarter=quarter, score=91.5, rank=1, sites_ranked=2
    )


def contribute(actor, sponsor, title="Pre-screen logs", *, now=NOW, **fields) -> PracticeNote:
    values = {"body": "Keep a pre-screening log per clinic day.", **fields}
    return practice_note_create(actor=actor, sponsor=sponsor, title=title, now=now, **values)


def publish(note, actor, *studies, now=NOW):
    return practice_note_publish(note=note, actor=actor, studies=studies, now=now)


def hours(count: int) -> datetime.datetime:
    return NOW + datetime.timedelta(hours=count)


def usernames(users) -> set[str]:
    return {user.username for user in users}


# --- Contributing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "allowed"),
    [
        ("sponsor_lead_a", {"Sponsor A"}),
        ("sponsor_viewer_a", {"Sponsor A"}),
        ("sponsor_b_admin", {"Sponsor B"}),
        ("cro_pm", {"Sponsor A", "Sponsor B"}),  # engaged by both
        ("cra", {"Sponsor A", "Sponsor B"}),
        ("cro_b_pm", {"Sponsor B"}),
        ("site_coord_1", set()),  # Site One has no recognition
        ("no_org_user", set()),
    ],
)
def test_sponsor_choices_per_organisation_kind(world, persona, allowed):
    user = getattr(world, persona)
    assert {org.name for org in practice_sponsor_choices(user)} == allowed
    for sponsor in (world.sponsor_a, world.sponsor_b):
        if sponsor.name in allowed:
            assert contribute(user, sponsor).sponsor == sponsor
        else:
            with pytest.raises(ValidationError) as error:
                contribute(user, sponsor)
            assert set(error.value.message_dict) == {"sponsor"}


def test_recognised_site_contributes_to_every_sponsor_it_works_with(world):
    recognise(world.ss_b1)  # recognised on sponsor B's study; Site One also works for A

    assert {org.name for org in practice_sponsor_choices(world.site_coord_1)} == {
        "Sponsor A",
        "Sponsor B",
    }
    note = contribute(world.pi_1, world.sponsor_a)
    assert (note.author_organization, note.author) == (world.site_org_1, world.pi_1)


def test_recognised_site_cannot_contribute_to_a_sponsor_it_does_not_work_with(world):
    recognise(world.ss_a2)  # Site Two works on sponsor A's study only

    assert [org.name for org in practice_sponsor_choices(world.site_coord_2)] == ["Sponsor A"]
    with pytest.raises(ValidationError) as error:
        contribute(world.site_coord_2, world.sponsor_b)
    assert "sponsor" in error.value.message_dict
    assert not PracticeNote.objects.exists()


def test_another_sites_recognition_does_not_count(world):
    recognise(world.ss_a1)

    assert not practice_sponsor_choices(world.site_coord_2).exists()


def test_a_note_by_the_sponsor_itself_starts_proposed(world):
    note = contribute(world.sponsor_lead_a, world.sponsor_a, therapeutic_area=" Oncology ")

    note.refresh_from_db()
    assert (note.status, note.published_at, note.created_at) == ("proposed", None, NOW)
    assert (note.author_organization, note.therapeutic_area) == (world.sponsor_a, "Oncology")


def test_tags_are_normalised(world):
    note = contribute(
        world.cro_pm,
        world.sponsor_a,
        tags=["  Recruitment ", "recruitment", "Data   Entry", "", "EDC", "RECRUITMENT"],
    )
    assert note.tags == ["recruitment", "data entry", "edc"]
    assert contribute(world.cro_pm, world.sponsor_a, tags="a, B ,a,,c").tags == ["a", "b", "c"]


def test_too_many_or_too_long_tags_and_missing_text_are_refused(world):
    with pytest.raises(ValidationError) as error:
        contribute(world.cro_pm, world.sponsor_a, tags=[f"tag {n}" for n in range(9)])
    assert set(error.value.message_dict) == {"tags"}
    # Eight distinct tags once repeats collapse are fine.
    assert len(contribute(world.cro_pm, world.sponsor_a, tags=[*"abcdefgh", "A"]).tags) == 8

    with pytest.raises(ValidationError) as error:
        contribute(world.cro_pm, world.sponsor_a, tags=["x" * 41])
    assert set(error.value.message_dict) == {"tags"}
    assert contribute(world.cro_pm, world.sponsor_a, tags=["x" * 40]).tags == ["x" * 40]

    with pytest.raises(ValidationError) as error:
        contribute(world.cro_pm, world.sponsor_a, title="  ", body=" \n ")
    assert set(error.value.message_dict) == {"title", "body"}


# --- Publishing --------------------------------------------------------------------------------


def test_publishing_sends_an_info_newsletter_to_the_studys_sites_as_a_digest_line(world):
    note = contribute(world.cro_pm, world.sponsor_a, title="Pre-screen logs")

    publication = publish(note, world.sponsor_lead_a, world.study_a)

    note.refresh_from_db()
    assert (note.status, note.published_at, note.published_by) == (
        PracticeStatus.PUBLISHED,
        NOW,
        world.sponsor_lead_a,
    )
    assert list(note.published_studies.all()) == [world.study_a]
    message = Message.objects.get()
    assert publication.messages == [message]
    assert (message.study, message.category, message.tier, message.status) == (
        world.study_a,
        "newsletter",
        Tier.INFO,
        MessageStatus.SENT,
    )
    assert message.audience == {"all_sites": True}
    assert message.subject == "Best practice: Pre-screen logs"
    assert message.body == (
        "Keep a pre-screening log per clinic day.\n\n"
        f"Read it in the practice library: /practices/{note.id}/"
    )
    assert (message.sender, message.sender_organization) == (world.sponsor_lead_a, world.sponsor_a)
    assert not message.requires_ack
    assert message.recipients_count == 3, "coord_1 and pi_1 at Site One, coord_2 at Site Two"
    deliveries = Delivery.objects.filter(message=message)
    assert usernames(d.recipient for d in deliveries) == {"coord_1", "pi_1", "coord_2"}
    assert set(deliveries.values_list("channel", "via_digest", "kind")) == {
        (Channel.IN_APP, True, DeliveryKind.MESSAGE)
    }, "info tier: in-app digest lines only, no e-mail of its own"

    assert digests_build(now=NOW + DIGEST_WAIT) == 3
    for user in (world.site_coord_1, world.pi_1, world.site_coord_2):
        assert line_counts(digest_item(user)) == [("Best practice: Pre-screen logs", 1)]
    assert not Delivery.objects.filter(recipient=world.site_coord_3).exists()


def test_publishing_waits_for_approval_when_the_matrix_says_so(world):
    # The CRO becomes Accountable for recruitment communications; the sponsor is Consulted.
    entries = [
        {**entry, "code": {world.sponsor_a.id: "C", world.cro.id: "A"}[entry["organization"]]}
        if entry["area"] == "recruitment_comms"
        else entry
        for entry in responsibility_matrix(world.study_a)["entries"]
    ]
    responsibility_matrix_set(study=world.study_a, entries=entries, actor=world.sponsor_lead_a)
    note = contribute(world.sponsor_lead_a, world.sponsor_a)

    message = publish(note, world.sponsor_lead_a, world.study_a).messages[0]

    assert message.status == MessageStatus.PENDING_APPROVAL
    assert not Delivery.objects.exists(), "nothing reaches the sites before approval"
    note.refresh_from_db()
    assert note.status == PracticeStatus.PUBLISHED


@pytest.mark.parametrize("persona", ["sponsor_viewer_a", "sponsor_lead_b", "cro_pm", "pi_1"])
def test_only_the_sponsor_lead_or_admin_publishes(world, persona):
    note = contribute(world.cro_pm, world.sponsor_a)

    with pytest.raises(PermissionDenied):
        publish(note, getattr(world, persona), world.study_a)

    note.refresh_from_db()
    assert note.status == PracticeStatus.PROPOSED
    assert not Message.objects.exists()


def test_studies_must_be_the_sponsors_own_and_at_least_one(world):
    note = contribute(world.cro_pm, world.sponsor_a)

    with pytest.raises(ValidationError) as error:
        publish(note, world.sponsor_a_admin, world.study_b)
    assert error.value.message_dict == {"studies": ["Not a study of Sponsor A: B-001."]}
    with pytest.raises(ValidationError) as error:
        publish(note, world.sponsor_a_admin)
    assert set(error.value.message_dict) == {"studies"}
    assert not Message.objects.exists()


def test_publishing_again_to_a_study_is_refused_but_new_studies_are_added(world):
    note = contribute(world.cro_pm, world.sponsor_a)
    publish(note, world.sponsor_lead_a, world.study_a)

    with pytest.raises(ValidationError) as error:
        publish(note, world.sponsor_a_admin, world.study_a)
    assert error.value.message_dict == {"studies": ["Already published to A-001."]}

    study_2 = new_study(world.sponsor_a, "A-002", actor=world.sponsor_a_admin)
    study_site = study_site_create(study=study_2, site=world.site_2, enrolment_target=5)
    role_assignment_create(
        actor=world.sponsor_a_admin,
        user=world.site_coord_2,
        role=StudyRole.SITE_COORDINATOR,
        study_site=study_site,
    )
    later = NOW + datetime.timedelta(hours=2)
    publication = practice_note_publish(
        note=note, actor=world.sponsor_a_admin, studies=[study_2], now=later
    )

    assert [m.study.code for m in publication.messages] == ["A-002"]
    assert sorted(Message.objects.values_list("study__code", flat=True)) == ["A-001", "A-002"]
    assert usernames(d.recipient for d in Delivery.objects.filter(message__study=study_2)) == {
        "coord_2"
    }
    note.refresh_from_db()
    assert (note.published_at, note.published_by) == (NOW, world.sponsor_lead_a), "first stays"
    assert {s.code for s in note.published_studies.all()} == {"A-001", "A-002"}


def test_a_study_nobody_would_hear_on_is_refused_and_nothing_is_written(world):
    empty = new_study(world.sponsor_a, "A-003", actor=world.sponsor_a_admin)
    note = contribute(world.cro_pm, world.sponsor_a)

    with pytest.raises(ValidationError) as error:
        publish(note, world.sponsor_a_admin, world.study_a, empty)

    assert list(error.value.message_dict) == ["studies"]
    assert error.value.message_dict["studies"][0].startswith("A-003: ")
    note.refresh_from_db()
    assert (note.status, list(note.published_studies.all())) == (PracticeStatus.PROPOSED, [])
    assert not Message.objects.exists()


# --- Withdrawing -------------------------------------------------------------------------------


def test_the_contributing_organisation_withdraws_its_proposed_note(world):
    note = contribute(world.cro_pm, world.sponsor_a)

    with pytest.raises(PermissionDenied):
        practice_note_withdraw(note=note, actor=world.sponsor_lead_a)
    practice_note_withdraw(note=note, actor=world.cra)  # a colleague at the same CRO

    assert not PracticeNote.objects.exists()


def test_a_published_note_cannot_be_withdrawn(world):
    note = contribute(world.cro_pm, world.sponsor_a)
    publish(note, world.sponsor_lead_a, world.study_a)

    with pytest.raises(ValidationError):
        practice_note_withdraw(note=note, actor=world.cro_pm)
    assert PracticeNote.objects.filter(pk=note.pk).exists()


# --- Who reads what ----------------------------------------------------------------------------


@pytest.fixture
def library(world):
    """Four notes: sponsor A's published one and a CRO proposal to A; sponsor B's published
    one and a proposal of (recognised) Site One to B."""
    recognise(world.ss_b1)
    lead_a, lead_b = world.sponsor_lead_a, world.sponsor_lead_b
    notes = {
        "a_published": contribute(lead_a, world.sponsor_a, title="A published"),
        "a_cro_proposal": contribute(
            world.cro_pm, world.sponsor_a, title="A CRO proposal", now=hours(1)
        ),
        "b_published": contribute(lead_b, world.sponsor_b, title="B published"),
        "b_site_proposal": contribute(world.site_coord_1, world.sponsor_b, title="B site idea"),
    }
    publish(notes["a_published"], lead_a, world.study_a, now=hours(3))
    publish(notes["b_published"], lead_b, world.study_b, now=hours(2))
    return notes


READERS = {
    "sponsor_lead_a": {"a_published", "a_cro_proposal"},
    "sponsor_viewer_a": {"a_published", "a_cro_proposal"},
    "sponsor_lead_b": {"b_published", "b_site_proposal"},
    "cro_pm": {"a_cro_proposal", "a_published", "b_published"},
    "cro_b_pm": {"b_published"},  # never sponsor A's, who does not engage this CRO
    "site_coord_1": {"b_site_proposal", "a_published", "b_published"},
    "site_coord_2": {"a_published"},  # Site Two works for sponsor A only
    "site_coord_3": {"b_published"},  # Site Three works for sponsor B only
    "no_org_user": set(),
}


@pytest.mark.parametrize(("persona", "expected"), READERS.items())
def test_who_reads_which_notes(world, library, persona, expected):
    user = getattr(world, persona)
    names = {note.pk: name for name, note in library.items()}

    assert {names[note.pk] for note in practice_notes_for_user(user)} == expected
    for name, note in library.items():
        if name in expected:
            assert practice_note_for_user(user, note.pk) == note
        else:
            with pytest.raises(Exception, match="No such practice note"):
                practice_note_for_user(user, note.pk)


def test_filters_by_text_area_and_tag(world):
    a = contribute(world.sponsor_lead_a, world.sponsor_a, title="Eligibility", tags=["Screening"])
    b = contribute(
        world.sponsor_lead_a,
        world.sponsor_a,
        title="Query turnaround",
        body="Answer queries within 48 hours.",
        therapeutic_area="Cardiology",
        tags=["data entry", "queries"],
    )
    user = world.sponsor_lead_a

    assert list(practice_notes_for_user(user)) == [b, a], "newest first (same time: by id)"
    assert list(practice_notes_for_user(user, q="48 HOURS")) == [b]
    assert list(practice_notes_for_user(user, therapeutic_area="cardiology")) == [b]
    assert list(practice_notes_for_user(user, tag=" Screening ")) == [a]
    assert list(practice_notes_for_user(user, tag="data entry", q="eligib")) == []


# --- Pages -------------------------------------------------------------------------------------


def detail(note) -> str:
    return f"/practices/{note.id}/"


@pytest.mark.parametrize(
    "url",
    [
        LIST,
        NEW,
        "/practices/{id}/",
        "/practices/{id}/publish/",
        "/practices/{id}/withdraw/",
    ],
)
def test_anonymous_is_sent_to_log_in(world, client_as, url):
    note = contribute(world.cro_pm, world.sponsor_a)
    url = url.format(id=note.id)
    method = "post" if url.endswith(("publish/", "withdraw/")) else "get"

    response = getattr(client_as(None), method)(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/") or "login" in response["Location"]
    assert PracticeNote.objects.filter(pk=note.pk, status="proposed").exists()


@pytest.mark.parametrize("persona", ["sponsor_lead_b", "cro_b_pm", "site_coord_3", "no_org_user"])
@pytest.mark.parametrize(
    ("suffix", "method"), [("", "get"), ("publish/", "post"), ("withdraw/", "post")]
)
def test_another_tenants_note_is_not_found_on_every_page(world, client_as, persona, suffix, method):
    note = contribute(world.cro_pm, world.sponsor_a)
    publish(note, world.sponsor_lead_a, world.study_a)  # published: still not theirs
    proposal = contribute(world.sponsor_lead_a, world.sponsor_a, title="Proposal")
    client = client_as(getattr(world, persona))

    for target in (note, proposal):
        data = {"studies": [world.study_a.id]} if suffix == "publish/" else {}
        response = getattr(client, method)(detail(target) + suffix, data)
        assert response.status_code == 404, (persona, target.title, suffix)
    assert PracticeNote.objects.count() == 2
    assert Message.objects.count() == 1


def test_list_page_shows_notes_with_badges_filters_and_the_contribute_link(
    world, library, client_as
):
    response = client_as(world.cro_pm).get(LIST)

    assert response.status_code == 200
    html = response.content.decode()
    assert [n.title for n in response.context["notes"]] == [
        "A published",
        "B published",
        "A CRO proposal",
    ], "newest first: by publication time, else by contribution time"
    assert 'href="/practices/new/"' in html
    assert "Proposed</span>" in html and "Published</span>" in html
    assert 'name="q"' in html and 'name="tag"' in html and 'name="therapeutic_area"' in html

    filtered = client_as(world.cro_pm).get(LIST, {"q": "CRO proposal"})
    assert [n.title for n in filtered.context["notes"]] == ["A CRO proposal"]


def test_list_page_empty_state_and_no_contribute_link_for_an_unrecognised_site(world, client_as):
    response = client_as(world.site_coord_2).get(LIST)

    html = response.content.decode()
    assert response.status_code == 200
    assert "No practices yet" in html
    assert "/practices/new/" not in html
    no_match = client_as(world.site_coord_2).get(LIST, {"tag": "nothing"})
    assert "No practices match these filters" in no_match.content.decode()


def test_list_page_paginates(world, client_as):
    for number in range(23):
        contribute(world.sponsor_lead_a, world.sponsor_a, title=f"Note {number:02}")

    first = client_as(world.sponsor_lead_a).get(LIST)
    second = client_as(world.sponsor_lead_a).get(LIST, {"page": 2})

    assert len(first.context["notes"]) == 20
    assert [n.title for n in second.context["notes"]] == ["Note 02", "Note 01", "Note 00"]
    assert "Page 2 of 2" in second.content.decode()


def _fill_library(world, count: int) -> None:
    authors = [world.sponsor_lead_a, world.cro_pm, world.site_coord_1]
    for number in range(count):
        note = contribute(
            authors[number % 3],
            world.sponsor_a,
            title=f"Note {number}",
            therapeutic_area=["Oncology", "Cardiology"][number % 2],
            tags=["recruitment", f"t{number}"],
        )
        if number % 2:
            note.status, note.published_at = PracticeStatus.PUBLISHED, NOW
            note.save()


@pytest.mark.parametrize("persona", ["sponsor_lead_a", "cro_pm", "site_coord_1"])
def test_list_page_queries_do_not_grow_with_notes(
    world, client_as, django_assert_max_num_queries, persona
):
    client = client_as(getattr(world, persona))
    recognise(world.ss_a1)
    _fill_library(world, 3)
    with django_assert_max_num_queries(10):
        assert client.get(LIST, {"tag": "recruitment"}).status_code == 200
    _fill_library(world, 40)
    with django_assert_max_num_queries(10):
        response = client.get(LIST, {"tag": "recruitment"})
    assert response.status_code == 200
    assert len(response.context["notes"]) == 20


def test_create_page_proposes_a_note(world, client_as):
    client = client_as(world.cro_pm)

    form = client.get(NEW)
    assert form.status_code == 200
    assert 'name="sponsor"' in form.content.decode() and "<select" in form.content.decode()
    response = client.post(
        NEW,
        {
            "sponsor": world.sponsor_b.id,
            "title": "Weekly site calls",
            "body": "A 15-minute call each Monday.",
            "therapeutic_area": "Oncology",
            "tags": "Communication, calls,communication",
        },
    )

    note = PracticeNote.objects.get()
    assert response.status_code == 302 and response["Location"] == detail(note)
    assert (note.sponsor, note.author, note.tags) == (
        world.sponsor_b,
        world.cro_pm,
        ["communication", "calls"],
    )


def test_create_page_with_one_library_hides_the_choice_and_shows_errors(world, client_as):
    client = client_as(world.sponsor_lead_a)

    html = client.get(NEW).content.decode()
    assert 'type="hidden" name="sponsor"' in html and "For Sponsor A's library." in html
    response = client.post(NEW, {"sponsor": world.sponsor_a.id, "title": "", "body": "x"})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    response = client.post(
        NEW,
        {"sponsor": world.sponsor_a.id, "title": "T", "body": "x", "tags": ",".join("abcdefghi")},
    )
    assert response.status_code == 400
    assert "Give at most 8 tags." in response.content.decode()
    forged = client.post(NEW, {"sponsor": world.sponsor_b.id, "title": "T", "body": "x"})
    assert forged.status_code == 400, "another sponsor is not a choice"
    assert not PracticeNote.objects.exists()


@pytest.mark.parametrize("persona", ["site_coord_1", "no_org_user"])
def test_create_page_is_forbidden_without_a_library_to_write_to(world, client_as, persona):
    client = client_as(getattr(world, persona))
    assert client.get(NEW).status_code == 403
    assert client.post(NEW, {"title": "T", "body": "x"}).status_code == 403


def test_detail_page_offers_publishing_to_the_leads_studies_and_withdrawing_to_the_author(
    world, client_as
):
    note = contribute(world.cro_pm, world.sponsor_a, tags=["edc"])

    lead = client_as(world.sponsor_lead_a).get(detail(note))
    assert lead.status_code == 200
    assert [s.code for s in lead.context["publish_form"].studies.values()] == ["A-001"]
    assert f'action="/practices/{note.id}/publish/"' in lead.content.decode()
    assert "/withdraw/" not in lead.content.decode()

    viewer = client_as(world.sponsor_viewer_a).get(detail(note)).content.decode()
    assert "/publish/" not in viewer and "/withdraw/" not in viewer
    author = client_as(world.cra).get(detail(note)).content.decode()
    assert f'action="/practices/{note.id}/withdraw/"' in author and "/publish/" not in author


def test_publish_page_publishes_and_reports_the_message(world, client_as):
    note = contribute(world.cro_pm, world.sponsor_a)
    client = client_as(world.sponsor_lead_a)

    response = client.post(detail(note) + "publish/", {"studies": [world.study_a.id]}, follow=True)

    assert response.status_code == 200
    assert "A-001: in the sites&#x27; next digest" in response.content.decode()
    message = Message.objects.get()
    assert (message.category, message.tier, message.study) == ("newsletter", "info", world.study_a)
    assert "Published to every study you lead" in response.content.decode()
    site_view = client_as(world.site_coord_2).get(detail(note)).content.decode()
    assert "Keep a pre-screening log" in site_view and "A-001" in site_view


def test_publish_page_refuses_readers_who_may_not_publish_and_bad_studies(world, client_as):
    note = contribute(world.cro_pm, world.sponsor_a)

    for persona in ("sponsor_viewer_a", "cro_pm"):
        response = client_as(getattr(world, persona)).post(
            detail(note) + "publish/", {"studies": [world.study_a.id]}
        )
        assert response.status_code == 403, persona
    forged = client_as(world.sponsor_lead_a).post(
        detail(note) + "publish/", {"studies": [world.study_b.id]}
    )
    assert forged.status_code == 400
    empty = client_as(world.sponsor_lead_a).post(detail(note) + "publish/", {})
    assert empty.status_code == 400 and "This field is required." in empty.content.decode()
    assert not Message.objects.exists()


def test_withdraw_page(world, client_as):
    note = contribute(world.cro_pm, world.sponsor_a)

    assert client_as(world.sponsor_lead_a).post(detail(note) + "withdraw/").status_code == 403
    response = client_as(world.cra).post(detail(note) + "withdraw/")
    assert response.status_code == 302 and response["Location"] == LIST
    assert not PracticeNote.objects.exists()


def test_withdraw_page_keeps_a_published_note(world, client_as):
    note = contribute(world.cro_pm, world.sponsor_a)
    publish(note, world.sponsor_lead_a, world.study_a)

    response = client_as(world.cro_pm).post(detail(note) + "withdraw/", follow=True)

    assert "A published note cannot be withdrawn." in response.content.decode()
    assert PracticeNote.objects.filter(pk=note.pk).exists()


# --- Dashboard card ----------------------------------------------------------------------------


def render_card(user) -> str:
    request = RequestFactory().get("/")
    request.user = user
    template = Template("{% load practice_tags %}{% practice_notes_card %}")
    return template.render(Context({"request": request}))


def test_card_shows_the_latest_three_published_notes_the_user_can_read(world, library):
    extra = [contribute(world.sponsor_lead_a, world.sponsor_a, title=f"Tip {n}") for n in range(3)]
    for offset, note in enumerate(extra, start=1):
        practice_note_publish(
            note=note,
            actor=world.sponsor_lead_a,
            studies=[world.study_a],
            now=hours(3 + offset),
        )

    html = render_card(world.site_coord_2)
    assert html.index("Tip 2") < html.index("Tip 1") < html.index("Tip 0")
    assert "A published" not in html, "only the latest three"
    assert 'href="/practices/"' in html
    assert "B published" not in render_card(world.site_coord_2)


def test_card_renders_nothing_without_published_notes(world):
    contribute(world.cro_pm, world.sponsor_a)

    assert render_card(world.cro_pm).strip() == ""
    assert render_card(world.no_org_user).strip() == ""
