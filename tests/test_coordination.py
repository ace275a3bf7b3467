"""Sponsor–CRO coordination: status updates, the meeting log and its action items.

Service rules, database invariants, tenancy (another sponsor and site people get 404, anonymous
visitors log in or get 401), the role × page and role × endpoint tables, form errors, API
shapes, and query counts that do not grow with the rows.
"""

from __future__ import annotations

import datetime
import itertools
import re
from urllib.parse import quote

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.http import Http404
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories import PERSONAS, member
from trialhub.models import ActionItem, Meeting, StudyRole, StudyStatusUpdate
from trialhub.selectors import (
    coordination_study_for_user,
    meetings_for_study,
    open_action_items_for_user,
    status_updates_for_study,
)
from trialhub.services import (
    action_item_set_done,
    meeting_create,
    role_assignment_end,
    status_update_create,
)

User = get_user_model()
TODAY = timezone.localdate
_serial = itertools.count()


def days(n: int) -> datetime.timedelta:
    return datetime.timedelta(days=n)


def add_update(world, *, actor=None, study=None, **fields):
    today = TODAY()
    values = {
        "period_start": today - days(30),
        "period_end": today - days(1),
        "highlights": "Ten patients randomised.",
        "risks": "Slow start-up in PL.",
        "asks": "Approve the push.",
    } | fields
    return status_update_create(
        study=study or world.study_a, actor=actor or world.sponsor_lead_a, **values
    )


def add_meeting(world, *, actor=None, study=None, items=None, **fields):
    today = TODAY()
    if items is None:
        items = [
            {"description": "Book the SIV", "owner": world.cra, "due_date": today + days(7)},
            {"description": "Send letter", "owner": world.sponsor_lead_a, "due_date": today},
        ]
    values = {"held_on": today - days(2), "title": "Operations review"} | fields
    return meeting_create(
        study=study or world.study_a, actor=actor or world.cro_pm, action_items=items, **values
    )


def text(response) -> str:
    html = response.content.decode()
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# --- services ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_sponsor_lead_posts_a_status_update_for_their_organisation(world):
    now = timezone.now().replace(microsecond=0)  # roles are checked as of ``now``
    update = add_update(world, highlights="  Enrolment on track.  ", now=now)

    assert update.author == world.sponsor_lead_a
    assert update.author_organization == world.sponsor_a
    assert update.highlights == "Enrolment on track."
    assert update.created_at == now


@pytest.mark.django_db
def test_status_update_needs_highlights_and_an_ordered_period_and_writes_nothing(world):
    today = TODAY()
    with pytest.raises(ValidationError) as caught:
        add_update(
            world, highlights="   ", period_start=today - days(3), period_end=today - days(5)
        )

    assert set(caught.value.message_dict) == {"highlights", "period_end"}
    assert not StudyStatusUpdate.objects.exists()


@pytest.mark.django_db
def test_status_update_for_a_period_that_has_not_begun_is_refused(world):
    today = TODAY()
    with pytest.raises(ValidationError) as caught:
        add_update(world, period_start=today + days(1), period_end=today + days(30))
    assert "period_start" in caught.value.message_dict


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["sponsor_viewer_a", "cra", "site_coord_1", "cro_b_pm"])
def test_who_may_not_write_is_refused_by_the_services(world, persona):
    actor = getattr(world, persona)
    with pytest.raises(PermissionDenied):
        add_update(world, actor=actor)
    with pytest.raises(PermissionDenied):
        add_meeting(world, actor=actor)
    assert not StudyStatusUpdate.objects.exists() and not Meeting.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["sponsor_lead_a", "cro_pm", "sponsor_a_admin", "cro_admin"])
def test_leads_project_managers_and_organisation_admins_write(world, persona):
    world.cro_admin = member(world.cro, "cro_admin", admin=True)
    actor = getattr(world, persona)
    add_update(world, actor=actor)
    meeting = add_meeting(world, actor=actor)
    assert meeting.recorded_by == actor
    assert meeting.recorded_by_organization == actor.membership.organization


@pytest.mark.django_db
def test_a_writer_whose_role_ended_may_no_longer_write(world):
    lead = world.cro_pm.role_assignments.get(study=world.study_a, role=StudyRole.CRO_PM)
    role_assignment_end(assignment=lead, actor=world.sponsor_lead_a, reason="Left", on=TODAY())
    with pytest.raises(PermissionDenied):
        add_update(world, actor=User.objects.get(pk=world.cro_pm.pk))


@pytest.mark.django_db
def test_meeting_is_logged_with_its_action_items(world):
    meeting = add_meeting(world, attendees=" Rachel, Katharina ", notes="Went well.")

    items = list(meeting.action_items.order_by("id"))
    assert [(i.description, i.owner, i.done) for i in items] == [
        ("Book the SIV", world.cra, False),
        ("Send letter", world.sponsor_lead_a, False),
    ]
    assert meeting.attendees == "Rachel, Katharina"
    assert meeting.recorded_by == world.cro_pm


@pytest.mark.django_db
def test_one_bad_action_item_writes_neither_the_meeting_nor_the_other_items(world):
    today = TODAY()
    items = [
        {"description": "Fine", "owner": world.cra, "due_date": today},
        {"description": "Site person", "owner": world.site_coord_1, "due_date": today},
        {"description": " ", "owner": world.sponsor_lead_b, "due_date": today - days(9)},
    ]
    with pytest.raises(ValidationError) as caught:
        add_meeting(world, items=items)

    assert set(caught.value.message_dict) == {
        "action_items.1.owner",
        "action_items.2.description",
        "action_items.2.owner",
        "action_items.2.due_date",
    }
    assert not Meeting.objects.exists() and not ActionItem.objects.exists()


@pytest.mark.django_db
def test_action_item_owner_works_for_the_sponsor_or_an_engaged_cro(world):
    today = TODAY()

    def owner_error(study, owner, actor) -> bool:
        item = {"description": "Do it", "owner": owner, "due_date": today}
        try:
            add_meeting(world, study=study, actor=actor, items=[item])
        except ValidationError as error:
            return "action_items.0.owner" in error.message_dict
        return False

    assert not owner_error(world.study_a, world.sponsor_viewer_a, world.cro_pm)
    assert not owner_error(world.study_a, world.cra_2, world.cro_pm), "a CRO colleague, no role"
    assert owner_error(world.study_a, world.cro_b_pm, world.cro_pm), "B-only CRO not on study A"
    assert owner_error(world.study_a, world.sponsor_lead_b, world.cro_pm), "another sponsor"
    assert owner_error(world.study_a, world.pi_1, world.cro_pm), "a site person"
    assert not owner_error(world.study_b, world.cro_b_pm, world.sponsor_lead_b)


@pytest.mark.django_db
def test_meeting_needs_a_title_a_past_date_and_due_dates_after_it(world):
    today = TODAY()
    item = {"description": "Do it", "owner": world.cra, "due_date": today}
    with pytest.raises(ValidationError) as caught:
        add_meeting(world, title=" ", held_on=today + days(1), items=[item])
    assert set(caught.value.message_dict) == {"title", "held_on", "action_items.0.due_date"}


@pytest.mark.django_db
def test_owner_marks_done_and_open_again_with_who_and_when(world):
    item = add_meeting(world).action_items.get(owner=world.cra)
    done_at = timezone.now().replace(microsecond=0)

    done = action_item_set_done(action_item=item, actor=world.cra, done=True, now=done_at)
    assert (done.done, done.done_at, done.done_by) == (True, done_at, world.cra)

    again = action_item_set_done(action_item=item, actor=world.sponsor_lead_a, done=True)
    assert again.done_at == done_at and again.done_by == world.cra, "a repeat keeps the first"

    reopened = action_item_set_done(action_item=item, actor=world.cro_pm, done=False)
    assert (reopened.done, reopened.done_at, reopened.done_by) == (False, None, None)


@pytest.mark.django_db
def test_a_reader_who_does_not_own_the_item_may_not_mark_it(world):
    item = add_meeting(world).action_items.get(owner=world.sponsor_lead_a)
    with pytest.raises(PermissionDenied):
        action_item_set_done(action_item=item, actor=world.cra, done=True)
    with pytest.raises(PermissionDenied):
        action_item_set_done(action_item=item, actor=world.sponsor_viewer_a, done=True)
    item.refresh_from_db()
    assert not item.done


# --- database invariants -----------------------------------------------------------------------


@pytest.mark.django_db
def test_database_refuses_done_without_time_and_a_backwards_period(world):
    item = add_meeting(world).action_items.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        ActionItem.objects.filter(pk=item.pk).update(done=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        ActionItem.objects.filter(pk=item.pk).update(done_at=timezone.now())
    update = add_update(world)
    with pytest.raises(IntegrityError), transaction.atomic():
        StudyStatusUpdate.objects.filter(pk=update.pk).update(
            period_end=update.period_start - days(1)
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        StudyStatusUpdate.objects.filter(pk=update.pk).update(highlights="")


# --- selectors (tenancy) -----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("persona", "reads"),
    [
        ("sponsor_lead_a", True),
        ("sponsor_viewer_a", True),
        ("sponsor_a_admin", True),
        ("cro_pm", True),
        ("cra", True),
        ("sponsor_lead_b", False),
        ("cro_b_pm", False),
        ("site_coord_1", False),
        ("pi_1", False),
        ("no_org_user", False),
    ],
)
def test_who_reads_a_studys_coordination(world, persona, reads):
    add_update(world)
    add_meeting(world)
    user = getattr(world, persona)
    if reads:
        assert coordination_study_for_user(user, world.study_a.id) == world.study_a
    else:
        with pytest.raises(Http404):
            coordination_study_for_user(user, world.study_a.id)
    assert status_updates_for_study(user, world.study_a).exists() is reads
    assert meetings_for_study(user, world.study_a).exists() is reads


@pytest.mark.django_db
def test_open_action_items_are_the_users_own_undone_ones(world):
    meeting = add_meeting(world)
    other = add_meeting(world, title="Second")
    mine = meeting.action_items.get(owner=world.cra)
    done = other.action_items.get(owner=world.cra)
    action_item_set_done(action_item=done, actor=world.cra, done=True)

    assert list(open_action_items_for_user(world.cra)) == [mine]
    assert not open_action_items_for_user(None).exists()
    # The CRA's role ends: the item is out of reach with the study.
    for assignment in world.cra.role_assignments.filter(study=world.study_a):
        role_assignment_end(assignment=assignment, actor=world.cro_pm, reason="Left", on=TODAY())
    assert not open_action_items_for_user(User.objects.get(pk=world.cra.pk)).exists()


# --- pages -------------------------------------------------------------------------------------


def _status_form(**fields) -> dict:
    today = TODAY()
    return {
        "status-period_start": (today - days(30)).isoformat(),
        "status-period_end": (today - days(1)).isoformat(),
        "status-highlights": "Twelve patients randomised.",
        "status-risks": "",
        "status-asks": "",
    } | fields


def _meeting_form(rows=(), **fields) -> dict:
    data = {
        "meeting-held_on": (TODAY() - days(1)).isoformat(),
        "meeting-title": "Weekly call",
        "meeting-attendees": "",
        "meeting-notes": "",
        "items-TOTAL_FORMS": "3",
        "items-INITIAL_FORMS": "0",
        "items-MIN_NUM_FORMS": "0",
        "items-MAX_NUM_FORMS": "30",
    } | fields
    for index, row in enumerate(rows):
        data |= {f"items-{index}-{key}": value for key, value in row.items()}
    return data


def _item_row(owner, due: datetime.date, description: str = "Chase the contract") -> dict:
    return {"description": description, "owner": str(owner.id), "due_date": due.isoformat()}


def _cra_item(world) -> ActionItem:
    return Meeting.objects.get(title="Operations review").action_items.get(owner=world.cra)


# (page, method, url, data, expected per signed-in persona in PERSONAS order)
# fmt: off
#                      lead_a viewer_a lead_b cro_pm cro_b cra  coord_1 coord_2 no_org
READERS_200 =         (200,   200,     404,   200,   404,  200, 404,    404,    404)
WRITERS_302 =         (302,   403,     404,   302,   404,  403, 404,    404,    404)
OWNER_OR_WRITER_302 = (302,   403,     404,   302,   404,  302, 404,    404,    404)
STUDY_PAGE =          (200,   200,     404,   200,   404,  200, 200,    200,    404)
# fmt: on
PAGES = [
    # Site people see the study page itself (without the section, tested below).
    ("study page", "get", lambda w: f"/studies/{w.study_a.id}/", None, STUDY_PAGE),
    (
        "status updates",
        "get",
        lambda w: f"/studies/{w.study_a.id}/status-updates/",
        None,
        READERS_200,
    ),  # noqa: E501
    ("meetings", "get", lambda w: f"/studies/{w.study_a.id}/meetings/", None, READERS_200),
    (
        "post status update",
        "post",
        lambda w: f"/studies/{w.study_a.id}/status-updates/",
        lambda w: _status_form(),
        WRITERS_302,
    ),  # noqa: E501
    (
        "log meeting",
        "post",
        lambda w: f"/studies/{w.study_a.id}/meetings/",
        lambda w: _meeting_form([_item_row(w.cra, TODAY())]),
        WRITERS_302,
    ),
    (
        "tick action item",
        "post",
        lambda w: f"/action-items/{_cra_item(w).id}/done/",
        lambda w: {"done": "true"},
        OWNER_OR_WRITER_302,
    ),  # noqa: E501
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("page", "method", "url", "data", "expected"), PAGES, ids=[page[0] for page in PAGES]
)
def test_page_status_per_persona(world, client_as, page, method, url, data, expected):
    add_update(world)
    add_meeting(world)
    path = url(world)
    wrong = []
    for persona, status in zip(PERSONAS, (*expected, None), strict=True):
        user = None if persona == "anonymous" else getattr(world, persona)
        response = getattr(client_as(user), method)(path, data(world) if data else None)
        if persona == "anonymous":
            if response.status_code != 302 or response["Location"] != (
                f"/accounts/login/?next={quote(path)}"
            ):
                wrong.append(f"anonymous: {response.status_code}")
        elif response.status_code != status:
            wrong.append(f"{persona}: {response.status_code}, expected {status}")
    assert not wrong, f"{page}: " + "; ".join(wrong)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("persona", "section", "forms"),
    [
        ("sponsor_lead_a", True, True),
        ("cro_pm", True, True),
        ("sponsor_viewer_a", True, False),
        ("cra", True, False),
        ("site_coord_1", False, False),
    ],
)
def test_study_page_shows_coordination_to_sponsor_and_cro_people_only(
    world, client_as, persona, section, forms
):
    add_update(world, highlights="Secret sponsor highlight.")
    add_meeting(world, title="Private operations review")
    page = client_as(getattr(world, persona)).get(f"/studies/{world.study_a.id}/")
    html, words = page.content.decode(), text(page)

    assert ('id="coordination"' in html) is section
    assert ("Secret sponsor highlight." in words) is section
    assert ("Private operations review" in words) is section
    assert ("Post a status update" in words) is forms
    assert ("Log a meeting" in words) is forms


@pytest.mark.django_db
def test_empty_coordination_section_says_so(world, client_as):
    words = text(client_as(world.cra).get(f"/studies/{world.study_a.id}/"))
    assert "No status updates yet" in words
    assert "No meetings logged yet" in words


@pytest.mark.django_db
def test_study_page_shows_the_latest_five_and_links_to_all(world, client_as):
    today = TODAY()
    for week in range(7):
        add_update(
            world,
            highlights=f"Week {week} highlights.",
            period_start=today - days(7 * week + 7),
            period_end=today - days(7 * week + 1),
        )
    client = client_as(world.sponsor_viewer_a)

    study_page = text(client.get(f"/studies/{world.study_a.id}/"))
    shown = re.findall(r"Week (\d) highlights", study_page)
    assert shown == ["0", "1", "2", "3", "4"], "latest period first, five of them"
    assert "All status updates" in study_page

    full = text(client.get(f"/studies/{world.study_a.id}/status-updates/"))
    assert re.findall(r"Week (\d) highlights", full) == [str(n) for n in range(7)]


@pytest.mark.django_db
def test_sponsor_lead_posts_a_status_update_through_the_study_page(world, client_as):
    response = client_as(world.sponsor_lead_a).post(
        f"/studies/{world.study_a.id}/status-updates/",
        _status_form(**{"status-highlights": "First patient in at Site Two."}),
        follow=True,
    )
    assert response.redirect_chain[-1][0] == f"/studies/{world.study_a.id}/#status-updates"
    words = text(response)
    assert "Status update posted." in words
    assert "First patient in at Site Two." in words
    assert StudyStatusUpdate.objects.get().author == world.sponsor_lead_a


@pytest.mark.django_db
def test_invalid_status_update_shows_errors_in_the_form_and_writes_nothing(world, client_as):
    today = TODAY()
    response = client_as(world.sponsor_lead_a).post(
        f"/studies/{world.study_a.id}/status-updates/",
        _status_form(
            **{
                "status-period_start": today.isoformat(),
                "status-period_end": (today - days(3)).isoformat(),
                "status-highlights": "Looks fine.",
            }
        ),
    )
    assert response.status_code == 400
    html = response.content.decode()
    form = html.split('id="status-update-form" open')[1].split("</form>")[0]
    assert "The period ends before it starts." in form
    assert "Looks fine.</textarea>" in form, "the input is kept"
    assert not StudyStatusUpdate.objects.exists()

    missing = client_as(world.sponsor_lead_a).post(
        f"/studies/{world.study_a.id}/status-updates/", _status_form(**{"status-highlights": ""})
    )
    form = missing.content.decode().split('id="status-update-form" open')[1].split("</form>")[0]
    assert "This field is required." in form


@pytest.mark.django_db
def test_cro_pm_logs_a_meeting_with_action_items_skipping_empty_rows(world, client_as):
    today = TODAY()
    rows = [
        _item_row(world.cra, today + days(5), "Book the SIV"),
        {"description": "", "owner": "", "due_date": ""},
        _item_row(world.sponsor_lead_a, today + days(9), "Sign the letter"),
    ]
    response = client_as(world.cro_pm).post(
        f"/studies/{world.study_a.id}/meetings/",
        _meeting_form(rows, **{"meeting-title": "Kick-off follow-up"}),
        follow=True,
    )
    assert response.redirect_chain[-1][0] == f"/studies/{world.study_a.id}/#meetings"
    meeting = Meeting.objects.get()
    assert meeting.title == "Kick-off follow-up"
    items = meeting.action_items.order_by("due_date")
    assert [(i.description, i.owner) for i in items] == [
        ("Book the SIV", world.cra),
        ("Sign the letter", world.sponsor_lead_a),
    ]
    words = text(response)
    assert "Meeting logged." in words and "Book the SIV" in words and "Sign the letter" in words


@pytest.mark.django_db
def test_meeting_errors_show_on_their_action_item_row(world, client_as):
    today = TODAY()
    rows = [
        _item_row(world.cra, today, "Fine row"),
        _item_row(world.cra, today - days(10), "Due before the meeting"),
        _item_row(world.site_coord_1, today, "Site person"),
    ]
    response = client_as(world.cro_pm).post(
        f"/studies/{world.study_a.id}/meetings/", _meeting_form(rows)
    )
    assert response.status_code == 400
    html = response.content.decode()
    form = html.split('id="meeting-form" open')[1].split("</form>")[0]
    row_1 = form.split('id="action-item-row-1"')[1].split("</fieldset>")[0]
    row_2 = form.split('id="action-item-row-2"')[1].split("</fieldset>")[0]
    assert "Select a valid choice" in row_2, "site people are not offered as owners"
    assert "Due before the meeting" in row_1, "the row keeps its input"
    assert not Meeting.objects.exists()

    # Only the service knows the due date rule: its error lands on that row too.
    rows[2] = _item_row(world.cra, today, "Fixed")
    response = client_as(world.cro_pm).post(
        f"/studies/{world.study_a.id}/meetings/", _meeting_form(rows)
    )
    assert response.status_code == 400
    form = response.content.decode().split('id="meeting-form" open')[1].split("</form>")[0]
    row_1 = form.split('id="action-item-row-1"')[1].split("</fieldset>")[0]
    assert "The due date comes before the meeting." in row_1
    assert "Some action items need attention." in form
    assert not Meeting.objects.exists()


@pytest.mark.django_db
def test_action_item_ticked_without_javascript_returns_to_the_page(world, client_as):
    item = add_meeting(world).action_items.get(owner=world.cra)
    client = client_as(world.cra)
    back = f"/studies/{world.study_a.id}/meetings/?page=1"

    done = client.post(f"/action-items/{item.id}/done/", {"done": "true", "next": back})
    assert done.status_code == 302 and done["Location"] == back
    item.refresh_from_db()
    assert item.done and item.done_by == world.cra

    # An unticked box sends nothing: the item is open again. A foreign next is ignored.
    reopened = client.post(f"/action-items/{item.id}/done/", {"next": "https://evil.example/"})
    assert reopened["Location"] == f"/studies/{world.study_a.id}/#meetings"
    item.refresh_from_db()
    assert not item.done and item.done_at is None


@pytest.mark.django_db
def test_action_item_ticked_with_htmx_gets_its_row_back(world, client_as):
    item = add_meeting(world).action_items.get(owner=world.cra)
    response = client_as(world.cra).post(
        f"/action-items/{item.id}/done/", {"done": "true"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.strip().startswith(f'<tr id="action-item-{item.id}"')
    assert "checked" in html and f'hx-post="/action-items/{item.id}/done/"' in html
    assert "<html" not in html, "a fragment, not a page"


@pytest.mark.django_db
def test_done_checkbox_only_for_owner_and_writers(world, client_as):
    meeting = add_meeting(world)
    cra_item = meeting.action_items.get(owner=world.cra)
    lead_item = meeting.action_items.get(owner=world.sponsor_lead_a)
    url = f"/studies/{world.study_a.id}/"

    cra_page = client_as(world.cra).get(url).content.decode()
    assert f'id="done-{cra_item.id}"' in cra_page
    assert f'id="done-{lead_item.id}"' not in cra_page
    viewer_page = client_as(world.sponsor_viewer_a).get(url).content.decode()
    assert 'name="done"' not in viewer_page
    lead_page = client_as(world.sponsor_lead_a).get(url).content.decode()
    assert f'id="done-{cra_item.id}"' in lead_page and f'id="done-{lead_item.id}"' in lead_page


@pytest.mark.django_db
def test_overdue_items_are_flagged(world, client_as):
    today = TODAY()
    items = [{"description": "Late thing", "owner": world.cra, "due_date": today - days(2)}]
    add_meeting(world, held_on=today - days(9), items=items)
    words = text(client_as(world.cra).get(f"/studies/{world.study_a.id}/meetings/"))
    assert "Late thing" in words and "Overdue" in words


# --- API: role × endpoint ---------------------------------------------------------------------


def _update_body(w):
    today = TODAY()
    return {
        "period_start": (today - days(14)).isoformat(),
        "period_end": today.isoformat(),
        "highlights": "On track.",
    }


def _meeting_body(w):
    today = TODAY()
    return {
        "held_on": today.isoformat(),
        "title": "Call",
        "action_items": [
            {"description": "Do", "owner": w.sponsor_lead_a.id, "due_date": today.isoformat()}
        ],
    }


ENDPOINTS = {
    "status-updates": ("get", lambda w: f"/api/v1/studies/{w.study_a.id}/status-updates/", None),
    "status-update-create": (
        "post",
        lambda w: f"/api/v1/studies/{w.study_a.id}/status-updates/",
        _update_body,
    ),
    "meetings": ("get", lambda w: f"/api/v1/studies/{w.study_a.id}/meetings/", None),
    "meeting-create": (
        "post",
        lambda w: f"/api/v1/studies/{w.study_a.id}/meetings/",
        _meeting_body,
    ),
    "action-item-done": (
        "post",
        lambda w: f"/api/v1/action-items/{w.cra_item.id}/done/",
        lambda w: {"done": True},
    ),
}
# fmt: off
#                         lead_a viewer_a lead_b cro_pm cro_b  cra  coord_1 coord_2 no_org anon
EXPECTED = {
    "status-updates":       (200,  200,     404,   200,   404,   200, 404,    404,    404,   401),
    "status-update-create": (201,  403,     404,   201,   404,   403, 404,    404,    404,   401),
    "meetings":             (200,  200,     404,   200,   404,   200, 404,    404,    404,   401),
    "meeting-create":       (201,  403,     404,   201,   404,   403, 404,    404,    404,   401),
    # The CRA owns the item: a reader who may tick their own.
    "action-item-done":     (200,  403,     404,   200,   404,   200, 404,    404,    404,   401),
}
# fmt: on


def test_api_table_covers_every_endpoint():
    assert EXPECTED.keys() == ENDPOINTS.keys()


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_api_status_per_persona(world, api_as, endpoint):
    """One world per endpoint (a status update, and a meeting whose item the CRA owns), every
    persona against it; all mismatches are reported together."""
    add_update(world)
    world.cra_item = add_meeting(world).action_items.get(owner=world.cra)
    method, path, body = ENDPOINTS[endpoint]
    wrong = []
    for persona, expected in zip(PERSONAS, EXPECTED[endpoint], strict=True):
        user = None if persona == "anonymous" else getattr(world, persona)
        data = body(world) if body else None
        response = getattr(api_as(user), method)(path(world), data, format="json")
        if response.status_code != expected:
            wrong.append(f"{persona}: {response.status_code}, expected {expected}")
    assert not wrong, f"{endpoint}: " + "; ".join(wrong)


@pytest.mark.django_db
def test_api_missing_study_and_item_are_404(world, api_as):
    client = api_as(world.sponsor_lead_a)
    assert client.get("/api/v1/studies/999999/status-updates/").status_code == 404
    assert client.post("/api/v1/action-items/999999/done/", {"done": True}).status_code == 404


# --- API: shapes and errors -------------------------------------------------------------------


def _user_shape(user, organization) -> dict:
    return {
        "id": user.id,
        "username": user.username,
        "name": user.get_full_name(),
        "organization": {
            "id": organization.id,
            "name": organization.name,
            "kind": organization.kind,
        },
    }


@pytest.mark.django_db
def test_api_status_update_shape(world, api_as):
    update = add_update(world)
    body = api_as(world.cra).get(f"/api/v1/studies/{world.study_a.id}/status-updates/").json()

    assert body["count"] == 1 and "next" in body
    assert body["results"][0] == {
        "id": update.id,
        "study": world.study_a.id,
        "period_start": update.period_start.isoformat(),
        "period_end": update.period_end.isoformat(),
        "highlights": "Ten patients randomised.",
        "risks": "Slow start-up in PL.",
        "asks": "Approve the push.",
        "author": _user_shape(world.sponsor_lead_a, world.sponsor_a),
        "author_organization": {"id": world.sponsor_a.id, "name": "Sponsor A", "kind": "sponsor"},
        "created_at": body["results"][0]["created_at"],
    }


@pytest.mark.django_db
def test_api_meeting_post_with_nested_action_items_and_its_shape(world, api_as):
    today = TODAY()
    client = api_as(world.cro_pm)
    response = client.post(
        f"/api/v1/studies/{world.study_a.id}/meetings/",
        {
            "held_on": (today - days(1)).isoformat(),
            "title": "Monthly review",
            "attendees": "Everyone",
            "action_items": [
                {"description": "Ship kits", "owner": world.cra.id, "due_date": today.isoformat()},
                {
                    "description": "Old one",
                    "owner": world.sponsor_lead_a.id,
                    "due_date": (today - days(1)).isoformat(),
                },
            ],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    meeting = response.json()
    assert {key: meeting[key] for key in ("study", "title", "attendees", "notes")} == {
        "study": world.study_a.id,
        "title": "Monthly review",
        "attendees": "Everyone",
        "notes": "",
    }
    assert meeting["recorded_by"] == _user_shape(world.cro_pm, world.cro)
    assert meeting["recorded_by_organization"]["kind"] == "cro"
    item = meeting["action_items"][0]
    assert item == {
        "id": item["id"],
        "meeting": meeting["id"],
        "description": "Old one",
        "owner": _user_shape(world.sponsor_lead_a, world.sponsor_a),
        "due_date": (today - days(1)).isoformat(),
        "done": False,
        "done_at": None,
        "done_by": None,
        "overdue": True,
    }
    listed = client.get(f"/api/v1/studies/{world.study_a.id}/meetings/").json()["results"]
    assert listed == [meeting]


@pytest.mark.django_db
def test_api_meeting_errors_are_nested_per_action_item_and_nothing_is_written(world, api_as):
    today = TODAY()
    url = f"/api/v1/studies/{world.study_a.id}/meetings/"
    client = api_as(world.cro_pm)

    def post(items, **fields):
        body = {"held_on": today.isoformat(), "title": "Call", "action_items": items} | fields
        return client.post(url, body, format="json")

    ok = {"description": "Fine", "owner": world.cra.id, "due_date": today.isoformat()}
    parsed = post([ok, {"owner": world.no_org_user.id, "due_date": "soon"}])
    assert parsed.status_code == 400
    errors = parsed.json()["action_items"]
    assert set(errors) == {"1"}, "only the failing item, by its index"
    assert set(errors["1"]) == {"description", "owner", "due_date"}
    assert errors["1"]["owner"] == ["Not found."], "a person out of reach is not found"

    ruled = post([ok, ok | {"owner": world.site_coord_1.id}], title=" ")
    assert ruled.status_code == 400
    assert set(ruled.json()) == {"title"}, "a blank title fails parsing first"
    ruled = post([ok, ok | {"owner": world.site_coord_1.id}])
    assert ruled.status_code == 400
    assert ruled.json() == {
        "action_items": {
            "1": {"owner": ["The owner must work for the sponsor or a CRO engaged on the study."]}
        }
    }, "the service's errors come in the serializer's shape"
    future = post([], held_on=(today + days(2)).isoformat())
    assert future.status_code == 400 and set(future.json()) == {"held_on"}
    assert not Meeting.objects.exists()


@pytest.mark.django_db
def test_api_status_update_errors_are_keyed_by_field(world, api_as):
    today = TODAY()
    response = api_as(world.sponsor_lead_a).post(
        f"/api/v1/studies/{world.study_a.id}/status-updates/",
        {
            "period_start": today.isoformat(),
            "period_end": (today - days(1)).isoformat(),
            "highlights": "x",
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {"period_end": ["The period ends before it starts."]}
    blank = api_as(world.sponsor_lead_a).post(
        f"/api/v1/studies/{world.study_a.id}/status-updates/",
        {"period_start": today.isoformat(), "period_end": today.isoformat(), "highlights": ""},
        format="json",
    )
    assert blank.status_code == 400 and set(blank.json()) == {"highlights"}
    assert not StudyStatusUpdate.objects.exists()


@pytest.mark.django_db
def test_api_action_item_done_and_undone(world, api_as):
    item = add_meeting(world).action_items.get(owner=world.cra)
    client = api_as(world.cra)
    url = f"/api/v1/action-items/{item.id}/done/"

    done = client.post(url, {"done": True}, format="json")
    assert done.status_code == 200
    assert done.json()["done"] is True and done.json()["done_by"] == "cra"
    assert done.json()["done_at"] is not None

    undone = client.post(url, {"done": False}, format="json")
    assert undone.json()["done"] is False and undone.json()["done_at"] is None

    missing = client.post(url, {}, format="json")
    assert missing.status_code == 400 and set(missing.json()) == {"done"}


# --- query counts ------------------------------------------------------------------------------


def grow(world, count: int) -> None:
    """``count`` more status updates and meetings on study A; each meeting has two action
    items owned by a new person each (one of them done), so per-row lookups would show."""
    today = TODAY()
    for _ in range(count):
        n = next(_serial)
        owner = member(world.cro, f"owner_{n}")
        add_update(world, highlights=f"Update {n}", actor=world.cro_pm)
        meeting = add_meeting(
            world,
            title=f"Meeting {n}",
            items=[
                {"description": f"Item {n}", "owner": owner, "due_date": today},
                {"description": f"Late {n}", "owner": world.cra, "due_date": today - days(1)},
            ],
            held_on=today - days(3),
        )
        action_item_set_done(
            action_item=meeting.action_items.get(owner=owner), actor=world.cro_pm, done=True
        )


def _fresh(world, persona):
    return User.objects.get(pk=getattr(world, persona).pk)


PAGE_CASES = {
    "study page (writer)": ("sponsor_lead_a", lambda w: f"/studies/{w.study_a.id}/"),
    "study page (reader)": ("cra", lambda w: f"/studies/{w.study_a.id}/"),
    "status updates page": ("cro_pm", lambda w: f"/studies/{w.study_a.id}/status-updates/"),
    "meetings page": ("sponsor_viewer_a", lambda w: f"/studies/{w.study_a.id}/meetings/"),
}


@pytest.mark.django_db
@pytest.mark.parametrize(("persona", "url"), PAGE_CASES.values(), ids=PAGE_CASES.keys())
def test_page_queries_do_not_grow_with_rows(
    world, client_as, django_assert_max_num_queries, persona, url
):
    def measure() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = client_as(_fresh(world, persona)).get(url(world))
        assert response.status_code == 200
        return len(queries)

    measure()  # warm per-process caches (content types ...)
    grow(world, 2)
    small = measure()
    grow(world, 10)
    with django_assert_max_num_queries(small):
        response = client_as(_fresh(world, persona)).get(url(world))
    assert response.status_code == 200


API_CASES = {
    "status updates": (
        "sponsor_lead_a",
        lambda w: f"/api/v1/studies/{w.study_a.id}/status-updates/",
    ),  # noqa: E501
    "meetings": ("cra", lambda w: f"/api/v1/studies/{w.study_a.id}/meetings/"),
}


@pytest.mark.django_db
@pytest.mark.parametrize(("persona", "url"), API_CASES.values(), ids=API_CASES.keys())
def test_api_list_queries_do_not_grow_with_rows(world, django_assert_max_num_queries, persona, url):
    def measure() -> tuple[int, int]:
        client = APIClient()
        client.force_authenticate(_fresh(world, persona))
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url(world))
        assert response.status_code == 200
        return len(queries), response.json()["count"]

    measure()  # warm per-process caches (content types ...)
    grow(world, 2)
    small, small_rows = measure()
    grow(world, 10)
    client = APIClient()
    client.force_authenticate(_fresh(world, persona))
    with django_assert_max_num_queries(small):
        response = client.get(url(world))
    assert response.json()["count"] == small_rows + 10, "the data did grow"
