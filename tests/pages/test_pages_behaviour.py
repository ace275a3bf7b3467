"""What the pages do: forms call the services, errors show inline, nothing is half-written,
and each persona's dashboard shows what that persona works on."""

from __future__ import annotations

import datetime
import re

import pytest
from django.utils import timezone

from sites.models import Site, TrainingRecord
from tests.factories import PASSWORD
from trialhub.models import MatrixRevision, ResponsibilityEntry, RoleAssignment, StudyRole
from trialhub.selectors import responsibility_matrix
from trialhub.services import role_assignment_end

pytestmark = pytest.mark.django_db


def text(response) -> str:
    """The page's text with tags and extra whitespace removed, for readable assertions."""
    html = response.content.decode()
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def grid(world, study) -> dict[str, str]:
    matrix = responsibility_matrix(study)
    return {f"cell__{e['area']}__{e['organization']}": e["code"] for e in matrix["entries"]}


# --- responsibility matrix --------------------------------------------------------------------


def test_sponsor_lead_saves_the_matrix_and_sees_the_change_in_the_history(world, client_as):
    client = client_as(world.sponsor_lead_a)
    data = grid(world, world.study_a)
    data[f"cell__monitoring__{world.cro.id}"] = "R"
    data["note"] = "CRO monitors the sites"

    response = client.post(f"/studies/{world.study_a.id}/matrix/", data, follow=True)

    assert response.redirect_chain[-1][0] == f"/studies/{world.study_a.id}/matrix/"
    page = text(response)
    assert "Matrix saved (1 cell changed)" in page
    assert "Monitoring · Shared CRO: I → R" in page
    assert "CRO monitors the sites" in page
    entry = ResponsibilityEntry.objects.get(
        study=world.study_a, area="monitoring", organization=world.cro
    )
    assert entry.code == "R"


def test_saving_the_unchanged_matrix_says_no_changes(world, client_as):
    client = client_as(world.sponsor_lead_a)
    before = MatrixRevision.objects.filter(study=world.study_a).count()
    response = client.post(
        f"/studies/{world.study_a.id}/matrix/", grid(world, world.study_a), follow=True
    )
    assert "No changes." in text(response)
    assert MatrixRevision.objects.filter(study=world.study_a).count() == before


def test_invalid_matrix_shows_errors_in_the_area_row_and_writes_nothing(world, client_as):
    client = client_as(world.sponsor_lead_a)
    data = grid(world, world.study_a)
    data[f"cell__monitoring__{world.cro.id}"] = "A"  # two Accountable parties
    data[f"cell__payments__{world.cro.id}"] = ""  # a missing code
    before = {(e.area, e.organization_id, e.code) for e in ResponsibilityEntry.objects.all()}
    revisions = MatrixRevision.objects.count()

    response = client.post(f"/studies/{world.study_a.id}/matrix/", data)

    assert response.status_code == 400
    html = response.content.decode()
    monitoring_row = html.split('id="area-monitoring"')[1].split("</tr>")[0]
    assert "Exactly one party must be Accountable; 2 are." in monitoring_row
    payments_row = html.split('id="area-payments"')[1].split("</tr>")[0]
    assert "Shared CRO has no code." in payments_row
    # The grid keeps what was submitted, so the lead can fix it.
    cell = f'name="cell__monitoring__{world.cro.id}"'
    assert '<option value="A" selected>' in html.split(cell)[1].split("</select>")[0]
    assert {(e.area, e.organization_id, e.code) for e in ResponsibilityEntry.objects.all()} == (
        before
    )
    assert MatrixRevision.objects.count() == revisions


def test_matrix_is_read_only_for_those_who_may_not_edit(world, client_as):
    response = client_as(world.cro_pm).get(f"/studies/{world.study_a.id}/matrix/")
    assert response.status_code == 200
    assert b"<select" not in response.content
    assert b"Save matrix" not in response.content
    assert "Accountable" in text(response)  # the legend


# --- role assignments -------------------------------------------------------------------------


def test_cro_pm_hands_over_a_cra_through_the_page(world, client_as):
    client = client_as(world.cro_pm)
    url = f"/studies/{world.study_a.id}/assignments/"

    end = client.post(
        f"{url}{world.cra_assignment.id}/end/",
        {f"end-{world.cra_assignment.id}-reason": "Moved to another region"},
    )
    assert end.status_code == 302
    assign = client.post(
        url,
        {
            "assign-role": StudyRole.CRA,
            "assign-user": world.cra_2.id,
            "assign-study_site": world.ss_a1.id,
        },
    )
    assert assign.status_code == 302

    world.cra_assignment.refresh_from_db()
    assert world.cra_assignment.end_reason == "Moved to another region"
    assert (
        RoleAssignment.objects.active()
        .filter(user=world.cra_2, role=StudyRole.CRA, study_site=world.ss_a1)
        .exists()
    )
    page = client.get(url)
    sites = text(page).split("not counting the site's first CRA.")[1]
    site_one = sites.split("Site One")[1].split("Site Two")[0]
    assert "1 CRA change (12 months)" in site_one
    assert "Moved to another region" in site_one, "the CRA history keeps the ended assignment"
    assert world.cra.get_full_name() in site_one
    assert world.cra_2.get_full_name() in site_one
    assert "not counting the site's first CRA" in text(page), "the count is explained"


def test_ending_without_a_reason_shows_the_error_next_to_that_assignment(world, client_as):
    client = client_as(world.cro_pm)
    assignment = world.cra_assignment
    response = client.post(
        f"/studies/{world.study_a.id}/assignments/{assignment.id}/end/",
        {f"end-{assignment.id}-reason": ""},
    )
    assert response.status_code == 400
    html = response.content.decode()
    form = html.split(f'action="/studies/{world.study_a.id}/assignments/{assignment.id}/end/"')[1]
    assert "This field is required." in form.split("</form>")[0]
    assignment.refresh_from_db()
    assert assignment.end_date is None


def test_service_validation_errors_show_on_the_assign_form(world, client_as):
    # A CRA works at a CRO: the service refuses a site coordinator for the role.
    response = client_as(world.cro_pm).post(
        f"/studies/{world.study_a.id}/assignments/",
        {
            "assign-role": StudyRole.CRA,
            "assign-user": world.site_coord_1.id,
            "assign-study_site": world.ss_a2.id,
        },
    )
    assert response.status_code == 400
    assert "A CRA must work for a cro." in text(response)
    assert not RoleAssignment.objects.filter(user=world.site_coord_1, role=StudyRole.CRA).exists()


def test_assign_form_offers_only_roles_the_user_may_hand_out(world, client_as):
    html = client_as(world.cro_pm).get(f"/studies/{world.study_a.id}/assignments/").content
    assert b'value="cra"' in html
    assert b'value="sponsor_lead"' not in html
    response = client_as(world.cro_pm).post(
        f"/studies/{world.study_a.id}/assignments/",
        {"assign-role": StudyRole.SPONSOR_VIEWER, "assign-user": world.sponsor_viewer_a.id},
    )
    assert response.status_code == 400
    assert not RoleAssignment.objects.filter(
        user=world.sponsor_viewer_a, role=StudyRole.SPONSOR_VIEWER, created_by=world.cro_pm
    ).exists()


def test_study_team_lists_study_level_roles_with_end_buttons(world, client_as):
    html = client_as(world.sponsor_lead_a).get(f"/studies/{world.study_a.id}/assignments/")
    team = text(html).split("Study team")[1]
    assert "Sponsor viewer" in team
    assert "CRO project manager" in team
    assert "End assignment" in team


# --- sites ------------------------------------------------------------------------------------


def _preferences(**overrides) -> dict:
    data = {
        "prefs-time_zone": "Europe/Paris",
        "prefs-digest_frequency": "weekly",
        "prefs-digest_hour": "9",
        "prefs-digest_weekday": "2",
        "prefs-quiet_hours_enabled": "on",
        "prefs-quiet_hours_start": "21:00",
        "prefs-quiet_hours_end": "06:30",
    }
    return data | overrides


def test_site_coordinator_edits_the_site_preferences(world, client_as):
    response = client_as(world.site_coord_1).post(
        f"/sites/{world.site_1.id}/preferences/", _preferences(), follow=True
    )
    assert "Preferences saved." in text(response)
    site = Site.objects.get(pk=world.site_1.pk)
    assert site.time_zone == "Europe/Paris"
    assert site.digest_frequency == "weekly"
    assert (site.digest_hour, site.digest_weekday) == (9, 2)
    assert site.quiet_hours_enabled
    assert site.quiet_hours_start == datetime.time(21, 0)


def test_preference_errors_from_the_service_show_inline(world, client_as):
    response = client_as(world.site_coord_1).post(
        f"/sites/{world.site_1.id}/preferences/",
        _preferences(**{"prefs-quiet_hours_end": "21:00"}),
    )
    assert response.status_code == 400
    assert "Quiet hours need different start and end times." in text(response)
    assert Site.objects.get(pk=world.site_1.pk).time_zone == "Europe/Berlin"


def test_a_cra_sees_the_site_but_may_not_edit_its_preferences(world, client_as):
    client = client_as(world.cra)
    page = client.get(f"/sites/{world.site_1.id}/")
    assert page.status_code == 200
    assert b"Save preferences" not in page.content
    assert client.post(f"/sites/{world.site_1.id}/preferences/", _preferences()).status_code == 403
    assert Site.objects.get(pk=world.site_1.pk).time_zone == "Europe/Berlin"


def test_site_coordinator_records_a_training(world, client_as):
    client = client_as(world.site_coord_1)
    data = {
        "training-study_site": world.ss_a1.id,
        "training-user": world.pi_1.id,
        "training-kind": "protocol",
        "training-title": "Protocol v2 training",
        "training-completed_on": timezone.localdate().isoformat(),
    }
    response = client.post(f"/sites/{world.site_1.id}/training/", data, follow=True)
    assert "Training recorded: Protocol v2 training." in text(response)
    assert "Protocol v2 training" in text(response).split("Training records")[1]
    record = TrainingRecord.objects.get(title="Protocol v2 training")
    assert (record.user, record.recorded_by) == (world.pi_1, world.site_coord_1)

    future = data | {
        "training-title": "Later",
        "training-completed_on": (timezone.localdate() + datetime.timedelta(days=3)).isoformat(),
    }
    response = client.post(f"/sites/{world.site_1.id}/training/", future)
    assert response.status_code == 400
    assert "A completion date cannot be in the future." in text(response)


def test_training_form_offers_only_the_site_staff(world, client_as):
    html = client_as(world.site_coord_1).get(f"/sites/{world.site_1.id}/").content.decode()
    staff = html.split('name="training-user"')[1].split("</select>")[0]
    assert f'value="{world.pi_1.id}"' in staff
    assert f'value="{world.cra.id}"' not in staff


def test_study_site_edit_saves_and_reports_milestone_order_errors(world, client_as):
    client = client_as(world.cra)
    url = f"/sites/study-sites/{world.ss_a1.id}/edit/"
    today = timezone.localdate()
    bad = {
        "status": "enrolling",
        "enrolment_target": "25",
        "selected_on": today.isoformat(),
        "activated_on": (today - datetime.timedelta(days=10)).isoformat(),
    }
    response = client.post(url, bad)
    assert response.status_code == 400
    assert "Cannot come before the selected date." in text(response)

    good = bad | {"activated_on": today.isoformat()}
    response = client.post(url, good)
    assert response.status_code == 302
    world.ss_a1.refresh_from_db()
    assert (world.ss_a1.enrolment_target, world.ss_a1.activated_on) == (25, today)


# --- dashboards and lists ---------------------------------------------------------------------


def test_cro_pm_dashboard_shows_sites_without_a_cra_and_recent_changes(world, client_as):
    role_assignment_end(assignment=world.cra_assignment, actor=world.cro_pm, reason="Left us")
    page = text(client_as(world.cro_pm).get("/"))
    uncovered = page.split("Open sites without an active CRA")[1].split("CRA changes")[0]
    assert "Site Two" in uncovered and "Site Three" in uncovered
    assert "Site One" in uncovered.split("B-001")[0], "site 1 of A lost its CRA"
    changes = page.split("CRA changes in the last 90 days")[1]
    assert "ended" in changes and "Left us" in changes


def test_cra_dashboard_lists_the_sites_it_monitors(world, client_as):
    response = client_as(world.cra).get("/")
    assert b'href="/assignments/"' not in response.content, "a CRA assigns no roles"
    page = text(response)
    assert "Sites you monitor" in page
    assert "Site One" in page
    assert "Site Two" not in page


def test_sponsor_dashboard_shows_only_its_studies_with_sites_and_cros(world, client_as):
    page = text(client_as(world.sponsor_lead_a).get("/"))
    assert "A-001" in page and "B-001" not in page
    assert "Shared CRO" in page and "B-only CRO" not in page
    assert "35 of 120 planned at sites" in page
    assert "Enrolling 2" in page


def test_site_coordinator_sees_studies_of_both_sponsors(world, client_as):
    page = text(client_as(world.site_coord_1).get("/"))
    assert "Sponsor A" in page and "Sponsor B" in page
    assert "My site" in page


def test_second_site_coordinator_does_not_see_sponsor_b(world, client_as):
    page = text(client_as(world.site_coord_2).get("/"))
    assert "Sponsor A" in page
    assert "Sponsor B" not in page


def test_user_without_organisation_is_pointed_to_the_admin(world, client_as):
    world.no_org_user.is_staff = True
    world.no_org_user.save()
    response = client_as(world.no_org_user).get("/")
    assert "Platform administration" in text(response)
    assert b'href="/admin/"' in response.content


def test_site_user_sees_only_their_own_site_and_people_on_the_study(world, client_as):
    page = text(client_as(world.site_coord_1).get(f"/studies/{world.study_a.id}/"))
    assert "Site One" in page
    assert "Site Two" not in page
    assert world.site_coord_2.get_full_name() not in page
    assert world.cra.get_full_name() in page


def test_study_list_filters_by_search_and_status(world, client_as):
    client = client_as(world.cro_pm)
    page = text(client.get("/studies/", {"q": "b-0"}))
    assert "B-001" in page and "A-001" not in page
    assert "No studies match" in text(client.get("/studies/", {"status": "closed"}))
    page = text(client.get("/studies/", {"status": "enrolling"}))
    assert "A-001" in page and "B-001" in page


def test_study_detail_links_to_assignments_only_for_those_who_assign(world, client_as):
    url = f"/studies/{world.study_a.id}/"
    assert b"/assignments/" in client_as(world.cro_pm).get(url).content.split(b"<main")[1]
    viewer = client_as(world.sponsor_viewer_a).get(url).content.split(b"<main")[1]
    assert f"/studies/{world.study_a.id}/assignments/".encode() not in viewer


def test_pages_never_show_none(world, client_as):
    urls = [
        "/",
        "/studies/",
        f"/studies/{world.study_a.id}/",
        f"/studies/{world.study_a.id}/matrix/",
        f"/studies/{world.study_a.id}/assignments/",
        f"/sites/{world.site_1.id}/",
    ]
    client = client_as(world.sponsor_lead_a)
    for url in urls:
        assert ">None<" not in client.get(url).content.decode().replace(" ", ""), url


# --- log-in -----------------------------------------------------------------------------------


def test_log_in_with_a_real_post(world, client_as):
    client = client_as(None)
    response = client.post(
        "/accounts/login/", {"username": "lead_a", "password": PASSWORD, "next": "/studies/"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/studies/"
    assert "A-001" in text(client.get("/studies/"))


def test_wrong_password_shows_an_error(world, client_as):
    response = client_as(None).post("/accounts/login/", {"username": "lead_a", "password": "nope"})
    assert response.status_code == 200
    assert "do not match" in text(response)


def test_demo_hint_only_in_debug(world, client_as, settings):
    assert b"Demo log-ins" not in client_as(None).get("/accounts/login/").content
    settings.DEBUG = True
    assert b"Demo log-ins" in client_as(None).get("/accounts/login/").content


def test_log_out_is_a_post(world, client_as):
    client = client_as(world.cra)
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/").status_code == 302


def test_closed_sites_are_not_listed_as_needing_a_cra(world, client_as):
    from sites.models import StudySite

    role_assignment_end(assignment=world.cra_assignment, actor=world.cro_pm, reason="Site closed")
    StudySite.objects.filter(pk=world.ss_a1.pk).update(status="closed")
    page = text(client_as(world.cro_pm).get("/"))
    uncovered = page.split("Open sites without an active CRA")[1].split("CRA changes")[0]
    assert "Site One" not in uncovered
    assert "Site Two" in uncovered


def test_site_admin_assigns_site_staff_at_their_own_site(world, client_as):
    from tests.factories import member

    site_admin = member(world.site_org_1, "site_admin_1", admin=True)
    client = client_as(site_admin)
    assert b'href="/assignments/"' in client.get("/").content, "Assignments in the navigation"
    url = f"/studies/{world.study_a.id}/assignments/"
    page = client.get(url)
    assert page.status_code == 200
    roles = page.content.decode().split('name="assign-role"')[1].split("</select>")[0]
    assert 'value="principal_investigator"' in roles and 'value="cra"' not in roles
    response = client.post(
        url,
        {
            "assign-role": StudyRole.PRINCIPAL_INVESTIGATOR,
            "assign-user": world.site_coord_1.id,
            "assign-study_site": world.ss_a1.id,
        },
    )
    assert response.status_code == 302
    assert (
        RoleAssignment.objects.active()
        .filter(
            user=world.site_coord_1, role=StudyRole.PRINCIPAL_INVESTIGATOR, study_site=world.ss_a1
        )
        .exists()
    )
