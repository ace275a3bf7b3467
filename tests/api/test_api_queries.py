"""List endpoints answer in a number of queries that does not grow with their rows."""

from __future__ import annotations

from itertools import count

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from sites.services import study_site_create
from tests.factories import member, new_study, site_org
from trialhub.models import Area, Raci, StudyRole
from trialhub.selectors import responsibility_matrix
from trialhub.services import (
    engagement_create,
    responsibility_matrix_set,
    role_assignment_create,
    role_assignment_end,
)

pytestmark = pytest.mark.django_db
User = get_user_model()
SMALL, LARGE = 3, 15
serial = count()


def add_studies(w, n):
    for _ in range(n):
        study = new_study(w.sponsor_a, f"X-{next(serial)}", actor=w.sponsor_a_admin)
        engagement_create(study=study, cro=w.cro, actor=w.sponsor_a_admin)


def add_study_sites(w, n):
    for _ in range(n):
        number = next(serial)
        _, site = site_org(f"Extra site {number}", "IT", "Europe/Rome")
        study_site_create(study=w.study_a, site=site, enrolment_target=5, actor=w.sponsor_lead_a)


def add_people(w, n):
    for _ in range(n):
        member(w.sponsor_a, f"colleague_{next(serial)}")


def add_assignments(w, n):
    for index in range(n):
        cra = member(w.cro, f"extra_cra_{next(serial)}")
        assignment = role_assignment_create(
            actor=w.cro_pm, user=cra, role=StudyRole.CRA, study_site=w.ss_a1
        )
        if index % 2:  # ended ones render ended_by too
            role_assignment_end(assignment=assignment, actor=w.cro_pm, reason="Rotated.")


def add_matrix_revisions(w, n):
    entries = responsibility_matrix(w.study_a)["entries"]
    for index in range(n):
        code = Raci.CONSULTED if index % 2 == 0 else Raci.INFORMED
        for entry in entries:
            if entry["organization"] == w.cro.id and entry["area"] == Area.TRAINING:
                entry["code"] = code
        responsibility_matrix_set(study=w.study_a, entries=entries, actor=w.sponsor_lead_a)


CASES = {
    "studies": ("sponsor_a_admin", lambda w: "/api/v1/studies/", add_studies),
    "study-sites": (
        "sponsor_lead_a",
        lambda w: f"/api/v1/studies/{w.study_a.id}/sites/",
        add_study_sites,
    ),
    "users": ("sponsor_lead_a", lambda w: "/api/v1/users/", add_people),
    "users-by-role": ("sponsor_lead_a", lambda w: "/api/v1/users/?role=cra", add_assignments),
    "role-assignments": ("sponsor_lead_a", lambda w: "/api/v1/role-assignments/", add_assignments),
    "role-assignments-site-user": (
        "site_coord_1",
        lambda w: "/api/v1/role-assignments/?active=true",
        add_assignments,
    ),
    "matrix-history": (
        "sponsor_lead_a",
        lambda w: f"/api/v1/studies/{w.study_a.id}/responsibilities/history/",
        add_matrix_revisions,
    ),
}


def measure(client: APIClient, url: str) -> tuple[int, int]:
    """Queries of one request and the rows it counted."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content[:300]
    return len(queries), response.json()["count"]


@pytest.mark.parametrize(("persona", "url", "grow"), CASES.values(), ids=CASES.keys())
def test_query_count_does_not_grow_with_rows(
    world, django_assert_max_num_queries, persona, url, grow
):
    def fresh_client():
        # A freshly loaded user: nothing cached on it (membership) from an earlier request.
        client = APIClient()
        client.force_authenticate(User.objects.get(pk=getattr(world, persona).pk))
        return client

    measure(fresh_client(), url(world))  # warm per-process caches (content types ...)
    grow(world, SMALL)
    small_queries, small_rows = measure(fresh_client(), url(world))
    grow(world, LARGE - SMALL)
    client = fresh_client()
    with django_assert_max_num_queries(small_queries):
        large_queries, large_rows = measure(client, url(world))

    assert large_rows >= small_rows + (LARGE - SMALL) // 2, "the data did grow"
    assert large_queries == small_queries
