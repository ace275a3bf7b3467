"""What the API does, beyond who may call it: shapes, round trips, audit, history, errors."""

from __future__ import annotations

import datetime
import uuid

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from tests.factories import PASSWORD
from trialhub.models import (
    Area,
    MatrixRevision,
    Raci,
    ResponsibilityEntry,
    RoleAssignment,
    StudyRole,
)

pytestmark = pytest.mark.django_db


def matrix_url(study):
    return f"/api/v1/studies/{study.id}/responsibilities/"


def matrix_rows(study):
    return sorted(
        ResponsibilityEntry.objects.filter(study=study).values_list("area", "organization", "code")
    )


# --- responsibility matrix ---------------------------------------------------------------


def test_matrix_get_put_round_trip_changes_nothing(world, api_as):
    client = api_as(world.sponsor_lead_a)
    matrix = client.get(matrix_url(world.study_a)).json()
    assert matrix["study"] == world.study_a.id
    assert [party["name"] for party in matrix["parties"]] == ["Sponsor A", "Shared CRO"]
    assert len(matrix["entries"]) == len(Area.values) * 2
    revisions = MatrixRevision.objects.filter(study=world.study_a).count()

    response = client.put(matrix_url(world.study_a), matrix, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == matrix
    assert MatrixRevision.objects.filter(study=world.study_a).count() == revisions


def _with_two_accountables(entries, world):
    for entry in entries:
        if entry["area"] == Area.MONITORING and entry["organization"] == world.cro.id:
            entry["code"] = Raci.ACCOUNTABLE
    return entries


def _with_unknown_area(entries, world):
    return [*entries, {"area": "catering", "organization": world.cro.id, "code": "I"}]


def _without_cro_code(entries, world):
    return [
        entry
        for entry in entries
        if not (entry["area"] == Area.TRAINING and entry["organization"] == world.cro.id)
    ]


@pytest.mark.parametrize(
    ("breakage", "error_key"),
    [
        (_with_two_accountables, "monitoring"),
        (_with_unknown_area, "entries"),
        (_without_cro_code, "training"),
    ],
    ids=["two-accountables", "unknown-area", "party-without-code"],
)
def test_invalid_matrix_is_refused_with_field_errors_and_nothing_written(
    world, api_as, breakage, error_key
):
    client = api_as(world.sponsor_lead_a)
    matrix = client.get(matrix_url(world.study_a)).json()
    before, revisions = matrix_rows(world.study_a), MatrixRevision.objects.count()
    # A valid change alongside the broken one must not be written either.
    for entry in matrix["entries"]:
        if entry["area"] == Area.PAYMENTS and entry["organization"] == world.cro.id:
            entry["code"] = Raci.RESPONSIBLE

    response = client.put(
        matrix_url(world.study_a), {"entries": breakage(matrix["entries"], world)}, format="json"
    )

    assert response.status_code == 400
    assert error_key in response.json(), response.json()
    assert matrix_rows(world.study_a) == before
    assert MatrixRevision.objects.count() == revisions


def test_malformed_matrix_body_is_a_field_error(world, api_as):
    response = api_as(world.sponsor_lead_a).put(
        matrix_url(world.study_a), {"entries": [{"area": "monitoring"}]}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {
        "entries": {
            "0": {
                "organization": ["This field is required."],
                "code": ["This field is required."],
            }
        }
    }


def test_matrix_change_is_recorded_and_listed_in_history(world, api_as):
    client = api_as(world.sponsor_lead_a)
    matrix = client.get(matrix_url(world.study_a)).json()
    for entry in matrix["entries"]:
        if entry["area"] == Area.MONITORING and entry["organization"] == world.cro.id:
            entry["code"] = Raci.RESPONSIBLE

    response = client.put(
        matrix_url(world.study_a),
        {"entries": matrix["entries"], "note": "CRO monitors."},
        format="json",
    )

    assert response.status_code == 200
    assert {"area": "monitoring", "organization": world.cro.id, "code": "R"} in response.json()[
        "entries"
    ]
    history = client.get(f"{matrix_url(world.study_a)}history/").json()
    latest = history["results"][0]
    assert history["count"] == 3, "study created, CRO engaged, this change"
    assert latest["note"] == "CRO monitors."
    assert latest["changed_by"]["username"] == "lead_a"
    assert latest["changed_by"]["organization"]["name"] == "Sponsor A"
    assert latest["changes"] == [
        {"area": "monitoring", "organization": world.cro.id, "old_code": "I", "new_code": "R"}
    ]


# --- role assignments --------------------------------------------------------------------


def assignments_url(suffix=""):
    return f"/api/v1/role-assignments/{suffix}"


def test_role_assignment_create_and_end_keep_history(world, api_as):
    client = api_as(world.cro_pm)
    created = client.post(
        assignments_url(),
        {"user": world.cra_2.id, "role": "cra", "study_site": world.ss_a2.id},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["user"] == {
        "id": world.cra_2.id,
        "username": "cra_2",
        "name": world.cra_2.get_full_name(),
        "organization": {"id": world.cro.id, "name": "Shared CRO", "kind": "cro"},
    }
    assert body["study"] == world.study_a.id
    assert body["study_site"] == world.ss_a2.id
    assert body["start_date"] == timezone.localdate().isoformat()
    assert body["end_date"] is None

    ended = client.post(
        assignments_url(f"{body['id']}/end/"), {"reason": "Rotated to site 1."}, format="json"
    )

    assert ended.status_code == 200, ended.content
    assert ended.json()["end_date"] == timezone.localdate().isoformat()
    assert ended.json()["end_reason"] == "Rotated to site 1."
    assert ended.json()["ended_by"] == "cro_pm"
    listed = {row["id"] for row in client.get(assignments_url()).json()["results"]}
    active = {row["id"] for row in client.get(assignments_url("?active=true")).json()["results"]}
    inactive = {row["id"] for row in client.get(assignments_url("?active=false")).json()["results"]}
    assert body["id"] in listed, "an ended assignment stays as history"
    assert body["id"] not in active
    assert body["id"] in inactive
    assert world.cra_assignment.id in active


def test_ending_the_only_assignment_withdraws_access(world, api_as):
    cra = api_as(world.cra)
    assert cra.get(f"/api/v1/studies/{world.study_a.id}/").status_code == 200

    response = api_as(world.cro_pm).post(
        assignments_url(f"{world.cra_assignment.id}/end/"),
        {"reason": "Left the study."},
        format="json",
    )

    assert response.status_code == 200
    assert cra.get(f"/api/v1/studies/{world.study_a.id}/").status_code == 404
    assert cra.get(f"/api/v1/study-sites/{world.ss_a1.id}/").status_code == 404
    assert cra.get(f"/api/v1/studies/{world.study_b.id}/").status_code == 200, "still on B"


def test_end_checks_date_reason_and_repeats(world, api_as):
    client = api_as(world.cro_pm)
    url = assignments_url(f"{world.cra_assignment.id}/end/")
    too_early = (world.cra_assignment.start_date - datetime.timedelta(days=1)).isoformat()

    assert client.post(url, {"reason": "x", "end_date": too_early}, format="json").json() == {
        "end_date": ["An assignment cannot end before it starts."]
    }
    assert client.post(url, {}, format="json").status_code == 400, "a reason is required"
    assert client.post(url, {"reason": "Left."}, format="json").status_code == 200
    again = client.post(url, {"reason": "Left."}, format="json")
    assert again.status_code == 400
    assert "end_date" in again.json()


@pytest.mark.parametrize(
    ("actor", "payload", "error_key"),
    [
        # A person of a CRO that sponsor A never engaged.
        ("sponsor_lead_a", lambda w: {"user": w.cro_b_pm.id, "role": "cro_pm"}, "user"),
        # Sponsor B's study.
        ("sponsor_lead_a", lambda w: {"study": w.study_b.id}, "study"),
        # A study-site of sponsor B's study.
        ("sponsor_lead_a", lambda w: {"study_site": w.ss_b1.id, "role": "cra"}, "study_site"),
        # Both studies in reach, but the study-site belongs to the other one.
        (
            "cro_pm",
            lambda w: {"study": w.study_a.id, "study_site": w.ss_b1.id, "role": "cra"},
            "study_site",
        ),
        ("cro_pm", lambda w: {"user": 10**9}, "user"),
    ],
    ids=["user-of-other-tenant", "other-sponsors-study", "other-studys-site", "mixed", "no-user"],
)
def test_out_of_reach_ids_in_post_are_refused(world, api_as, actor, payload, error_key):
    data = {"user": world.cra.id, "role": "sponsor_viewer", "study": world.study_a.id}
    data.update(payload(world))
    count = RoleAssignment.objects.count()

    response = api_as(getattr(world, actor)).post(assignments_url(), data, format="json")

    assert response.status_code == 400, response.content
    assert error_key in response.json(), response.json()
    assert RoleAssignment.objects.count() == count


def test_out_of_reach_error_does_not_disclose_existence(world, api_as):
    client = api_as(world.sponsor_lead_a)
    base = {"role": "sponsor_viewer", "study": world.study_a.id}
    someone_elses = client.post(assignments_url(), {**base, "user": world.cro_b_pm.id})
    nobody = client.post(assignments_url(), {**base, "user": 10**9})
    assert someone_elses.json() == nobody.json() == {"user": ["Not found."]}


def test_overlapping_assignment_is_refused(world, api_as):
    response = api_as(world.cro_pm).post(
        assignments_url(),
        {"user": world.cra.id, "role": "cra", "study_site": world.ss_a1.id},
        format="json",
    )
    assert response.status_code == 400
    assert "user" in response.json()


def test_role_assignment_filters(world, api_as):
    client = api_as(world.cro_pm)

    def ids(query):
        return {row["id"] for row in client.get(assignments_url(f"?{query}")).json()["results"]}

    on_a = RoleAssignment.objects.filter(study=world.study_a)
    assert ids(f"study={world.study_a.id}") == set(on_a.values_list("id", flat=True))
    assert ids(f"study_site={world.ss_a1.id}") == set(
        on_a.filter(study_site=world.ss_a1).values_list("id", flat=True)
    )
    assert ids(f"user={world.cra.id}&role=cra") == set(
        RoleAssignment.objects.filter(user=world.cra).values_list("id", flat=True)
    )
    assert ids(f"study={world.study_a.id}&role=sponsor_lead") == set(
        on_a.filter(role=StudyRole.SPONSOR_LEAD).values_list("id", flat=True)
    )
    assert client.get(assignments_url("?role=janitor")).status_code == 400


# --- people ---------------------------------------------------------------------------------


def test_users_list_for_site_user_excludes_other_sites_people(world, api_as):
    rows = api_as(world.site_coord_1).get("/api/v1/users/").json()["results"]
    usernames = {row["username"] for row in rows}
    assert {"coord_1", "pi_1", "cra", "cro_pm", "lead_a"} <= usernames
    assert not {"coord_2", "coord_3"} & usernames


# --- authentication, schema ---------------------------------------------------------------


def test_token_with_right_and_wrong_password(world):
    client = APIClient()
    wrong = client.post("/api/v1/auth/token/", {"username": "cra", "password": "nope"})
    right = client.post("/api/v1/auth/token/", {"username": "cra", "password": PASSWORD})

    assert wrong.status_code == 400
    assert "token" not in wrong.json()
    assert right.status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Token {right.json()['token']}")
    assert client.get("/api/v1/me/").json()["username"] == "cra"


def test_token_endpoint_is_throttled(world, monkeypatch):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"token": "2/min"})
    address = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7"
    client = APIClient(REMOTE_ADDR=address)
    try:
        statuses = [client.post("/api/v1/auth/token/", {}).status_code for _ in range(3)]
    finally:
        cache.delete(f"throttle_token_{address}")
    assert statuses == [400, 400, 429]


def test_anonymous_is_asked_to_authenticate(world):
    response = APIClient().get("/api/v1/studies/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_schema_and_docs_answer(db):
    client = APIClient()
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/role-assignments/{id}/end/" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
