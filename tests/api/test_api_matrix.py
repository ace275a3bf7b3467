"""Role x endpoint x tenant matrix (Sentry's PermissionTestCase): one status per cell.

Every endpoint is called on objects of sponsor A's study (``study_a``) by each persona:
the owner side answers 200/201, another tenant 404 (existence is not disclosed), anonymous
401, and someone who can see the object but may not change it 403. Ids sent in a POST body
are parsed, not routed, so an id out of the caller's reach is a 400 field error there.
"""

from __future__ import annotations

import pytest

from tests.factories import PERSONAS, status_cases
from trialhub.models import StudyRole
from trialhub.selectors import responsibility_matrix


def _matrix_unchanged(w):
    return {"entries": responsibility_matrix(w.study_a)["entries"]}


def _assign_cra_to_site_2(w):
    return {"user": w.cra.id, "role": StudyRole.CRA, "study_site": w.ss_a2.id}


# endpoint: (method, path builder, body builder or None)
ENDPOINTS = {
    "me": ("get", lambda w: "/api/v1/me/", None),
    "users": ("get", lambda w: "/api/v1/users/", None),
    "studies": ("get", lambda w: "/api/v1/studies/", None),
    "study": ("get", lambda w: f"/api/v1/studies/{w.study_a.id}/", None),
    "study-sites": ("get", lambda w: f"/api/v1/studies/{w.study_a.id}/sites/", None),
    "study-site": ("get", lambda w: f"/api/v1/study-sites/{w.ss_a1.id}/", None),
    "study-site-patch": (
        "patch",
        lambda w: f"/api/v1/study-sites/{w.ss_a1.id}/",
        lambda w: {"enrolment_target": 25},
    ),
    "matrix": ("get", lambda w: f"/api/v1/studies/{w.study_a.id}/responsibilities/", None),
    "matrix-put": (
        "put",
        lambda w: f"/api/v1/studies/{w.study_a.id}/responsibilities/",
        _matrix_unchanged,
    ),
    "matrix-history": (
        "get",
        lambda w: f"/api/v1/studies/{w.study_a.id}/responsibilities/history/",
        None,
    ),
    "assignments": ("get", lambda w: "/api/v1/role-assignments/", None),
    "assignment": ("get", lambda w: f"/api/v1/role-assignments/{w.cra_assignment.id}/", None),
    "assignment-create": ("post", lambda w: "/api/v1/role-assignments/", _assign_cra_to_site_2),
    "assignment-end": (
        "post",
        lambda w: f"/api/v1/role-assignments/{w.cra_assignment.id}/end/",
        lambda w: {"reason": "Moved to another region."},
    ),
}

# fmt: off
#                      lead_a viewer_a lead_b cro_pm cro_b  cra  coord_1 coord_2 no_org anon
EXPECTED = {
    "me":                (200,  200,     200,   200,   200,   200, 200,    200,    200,   401),
    "users":             (200,  200,     200,   200,   200,   200, 200,    200,    200,   401),
    "studies":           (200,  200,     200,   200,   200,   200, 200,    200,    200,   401),
    "study":             (200,  200,     404,   200,   404,   200, 200,    200,    404,   401),
    "study-sites":       (200,  200,     404,   200,   404,   200, 200,    200,    404,   401),
    # ss_a1 is Site One's row: Site Two's coordinator does not see it.
    "study-site":        (200,  200,     404,   200,   404,   200, 200,    404,    404,   401),
    # Sponsor lead and CRO PM manage the study's sites; the CRA changes their own site.
    "study-site-patch":  (200,  403,     404,   200,   404,   200, 403,    404,    404,   401),
    "matrix":            (200,  200,     404,   200,   404,   200, 200,    200,    404,   401),
    "matrix-put":        (200,  403,     404,   403,   404,   403, 403,    403,    404,   401),
    "matrix-history":    (200,  200,     404,   200,   404,   200, 200,    200,    404,   401),
    "assignments":       (200,  200,     200,   200,   200,   200, 200,    200,    200,   401),
    # The CRA's assignment at Site One: not Site Two's business.
    "assignment":        (200,  200,     404,   200,   404,   200, 200,    404,    404,   401),
    # Body ids out of reach (study-site of study A, or the CRA) are 400 field errors.
    "assignment-create": (201,  403,     400,   201,   400,   403, 400,    400,    400,   401),
    "assignment-end":    (200,  403,     404,   200,   404,   403, 403,    404,    404,   401),
}
# fmt: on

CASES = status_cases(EXPECTED)


@pytest.fixture
def world(module_world):
    """Built once for the module: each test rolls its own writes back."""
    return module_world


def test_matrix_covers_every_endpoint():
    assert EXPECTED.keys() == ENDPOINTS.keys()


@pytest.mark.django_db
@pytest.mark.parametrize(("endpoint", "persona", "expected"), CASES)
def test_status(world, api_as, endpoint, persona, expected):
    method, path, body = ENDPOINTS[endpoint]
    user = None if persona == "anonymous" else getattr(world, persona)
    client = api_as(user)
    data = body(world) if body else None
    response = getattr(client, method)(path(world), data, format="json")
    assert response.status_code == expected, response.content[:300]


# Lists answer 200 to everyone signed in; what is in them follows the same tenancy.
# fmt: off
#                          lead_a viewer_a lead_b cro_pm cro_b  cra   coord_1 coord_2 no_org
LIST_HAS_STUDY_A_OBJECT = {
    "studies":            (True,  True,    False, True,  False, True, True,   True,   False),
    "assignments":        (True,  True,    False, True,  False, True, True,   False,  False),
    "users":              (True,  True,    False, True,  False, True, False,  True,   False),
}
# fmt: on
LIST_CASES = [
    pytest.param(endpoint, persona, listed, id=f"{endpoint}-{persona}-{listed}")
    for endpoint, flags in LIST_HAS_STUDY_A_OBJECT.items()
    for persona, listed in zip(PERSONAS[:-1], flags, strict=True)
]


def _expected_id(w, endpoint):
    # studies: study A; assignments: the CRA's at Site One; users: Site Two's coordinator,
    # who works on study A only.
    return {
        "studies": w.study_a.id,
        "assignments": w.cra_assignment.id,
        "users": w.site_coord_2.id,
    }[endpoint]


@pytest.mark.django_db
@pytest.mark.parametrize(("endpoint", "persona", "listed"), LIST_CASES)
def test_list_content(world, api_as, endpoint, persona, listed):
    _, path, _ = ENDPOINTS[endpoint]
    response = api_as(getattr(world, persona)).get(path(world))
    assert response.status_code == 200
    ids = {row["id"] for row in response.data["results"]}
    assert (_expected_id(world, endpoint) in ids) is listed, ids
