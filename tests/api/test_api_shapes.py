"""Read shapes and filters of studies, study-sites and people; study-site updates."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

pytestmark = pytest.mark.django_db


# --- study-sites ---------------------------------------------------------------------------


def test_study_sites_shape_and_filters(world, api_as):
    client = api_as(world.sponsor_lead_a)
    url = f"/api/v1/studies/{world.study_a.id}/sites/"

    rows = client.get(url).json()["results"]

    assert [row["site"]["name"] for row in rows] == ["Site One", "Site Two"]
    assert rows[0] == {
        "id": world.ss_a1.id,
        "study": world.study_a.id,
        "site": {"id": world.site_1.id, "name": "Site One", "country": "DE"},
        "status": "enrolling",
        "enrolment_target": 20,
        "selected_on": timezone.localdate().isoformat(),
        "regulatory_approval_on": None,
        "contract_signed_on": None,
        "activated_on": None,
        "first_patient_in_on": None,
        "last_patient_in_on": None,
        "closed_on": None,
    }
    assert [r["id"] for r in client.get(f"{url}?country=fr").json()["results"]] == [world.ss_a2.id]
    assert client.get(f"{url}?status=closed").json()["count"] == 0
    assert client.get(f"{url}?status=enrolling").json()["count"] == 2


def test_site_user_lists_only_their_own_study_site(world, api_as):
    rows = api_as(world.site_coord_1).get(f"/api/v1/studies/{world.study_a.id}/sites/").json()
    assert [row["id"] for row in rows["results"]] == [world.ss_a1.id]


def test_study_site_patch_updates_milestones_and_refuses_disorder(world, api_as):
    client = api_as(world.cra)
    url = f"/api/v1/study-sites/{world.ss_a1.id}/"
    today = timezone.localdate()

    ok = client.patch(
        url, {"activated_on": today.isoformat(), "status": "activated"}, format="json"
    )
    backwards = client.patch(
        url, {"first_patient_in_on": (today - datetime.timedelta(days=3)).isoformat()}
    )
    unknown_status = client.patch(url, {"status": "paused"}, format="json")

    assert ok.status_code == 200, ok.content
    assert ok.json()["activated_on"] == today.isoformat()
    assert ok.json()["status"] == "activated"
    assert backwards.status_code == 400
    assert "first_patient_in_on" in backwards.json()
    assert unknown_status.status_code == 400
    assert "status" in unknown_status.json()
    world.ss_a1.refresh_from_db()
    assert world.ss_a1.first_patient_in_on is None
    assert world.ss_a1.updated_by == world.cra


def test_study_site_put_is_not_offered(world, api_as):
    url = f"/api/v1/study-sites/{world.ss_a1.id}/"
    assert api_as(world.sponsor_lead_a).put(url, {}, format="json").status_code == 405


def test_study_shape_and_status_filter(world, api_as):
    client = api_as(world.cro_pm)
    study = client.get(f"/api/v1/studies/{world.study_b.id}/").json()

    assert study["code"] == "B-001"
    assert study["sponsor"] == {"id": world.sponsor_b.id, "name": "Sponsor B", "kind": "sponsor"}
    assert [cro["name"] for cro in study["cros"]] == ["B-only CRO", "Shared CRO"]
    assert {"phase", "therapeutic_area", "status", "enrolment_target"} <= study.keys()
    assert {"planned_start", "planned_end"} <= study.keys()
    assert client.get("/api/v1/studies/?status=enrolling").json()["count"] == 2
    assert client.get("/api/v1/studies/?status=closed").json()["count"] == 0


def test_me(world, api_as):
    assert api_as(world.site_coord_1).get("/api/v1/me/").json() == {
        "id": world.site_coord_1.id,
        "username": "coord_1",
        "name": world.site_coord_1.get_full_name(),
        "organization": {"id": world.site_org_1.id, "name": "Site One", "kind": "site"},
    }
    assert api_as(world.no_org_user).get("/api/v1/me/").json()["organization"] is None


def test_users_filters(world, api_as):
    client = api_as(world.sponsor_lead_a)

    def usernames(query):
        return {row["username"] for row in client.get(f"/api/v1/users/?{query}").json()["results"]}

    # The engaged CRO's people, also those without a role yet (cra_2), are hers to staff with.
    assert usernames(f"organization={world.cro.id}") == {"cro_pm", "cra", "cra_2"}
    # A CRO engaged only by another sponsor is out of reach.
    assert usernames(f"organization={world.cro_b.id}") == set()
    assert usernames("role=site_coordinator") == {"coord_1", "coord_2"}
    assert usernames("role=cra") == {"cra"}
    assert usernames(f"role=cro_pm&organization={world.sponsor_a.id}") == set()
    # Sponsor B's coordinator holds the role too, but on a study lead_a does not see.
    assert "coord_3" not in usernames("role=site_coordinator")
