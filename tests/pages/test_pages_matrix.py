"""Every page × persona: the owner gets 200, another tenant 404, an anonymous visitor is sent to
log in, and someone who can see the object but may not act on it gets 403 (PRODUCT.md "Who sees
what"; STYLE.md "Tenancy fails closed")."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.factories import PERSONAS

EVERYONE_200 = dict.fromkeys(PERSONAS[:-1], 200)


def _row(**statuses) -> dict[str, int]:
    assert set(statuses) == set(PERSONAS[:-1]), "every signed-in persona needs an expectation"
    return statuses


# (page name, method, url builder, expected status per signed-in persona)
PAGES = [
    ("dashboard", "get", lambda w: "/", EVERYONE_200),
    ("study list", "get", lambda w: "/studies/", EVERYONE_200),
    ("managed studies", "get", lambda w: "/assignments/", EVERYONE_200),
    (
        "study detail A",
        "get",
        lambda w: f"/studies/{w.study_a.id}/",
        _row(
            sponsor_lead_a=200,
            sponsor_viewer_a=200,
            sponsor_lead_b=404,
            cro_pm=200,
            cro_b_pm=404,
            cra=200,
            site_coord_1=200,
            site_coord_2=200,
            no_org_user=404,
        ),
    ),
    (
        "study detail B",
        "get",
        lambda w: f"/studies/{w.study_b.id}/",
        _row(
            sponsor_lead_a=404,
            sponsor_viewer_a=404,
            sponsor_lead_b=200,
            cro_pm=200,
            cro_b_pm=200,
            cra=200,
            site_coord_1=200,
            site_coord_2=404,
            no_org_user=404,
        ),
    ),
    (
        "matrix A",
        "get",
        lambda w: f"/studies/{w.study_a.id}/matrix/",
        _row(
            sponsor_lead_a=200,
            sponsor_viewer_a=200,
            sponsor_lead_b=404,
            cro_pm=200,
            cro_b_pm=404,
            cra=200,
            site_coord_1=200,
            site_coord_2=200,
            no_org_user=404,
        ),
    ),
    (
        "matrix A save",
        "post",
        lambda w: f"/studies/{w.study_a.id}/matrix/",
        _row(
            sponsor_lead_a=302,
            sponsor_viewer_a=403,
            sponsor_lead_b=404,
            cro_pm=403,
            cro_b_pm=404,
            cra=403,
            site_coord_1=403,
            site_coord_2=403,
            no_org_user=404,
        ),
    ),
    (
        "assignments A",
        "get",
        lambda w: f"/studies/{w.study_a.id}/assignments/",
        _row(
            sponsor_lead_a=200,
            sponsor_viewer_a=403,
            sponsor_lead_b=404,
            cro_pm=200,
            cro_b_pm=404,
            cra=403,
            site_coord_1=403,
            site_coord_2=403,
            no_org_user=404,
        ),
    ),
    (
        "assign on A (empty form)",
        "post",
        lambda w: f"/studies/{w.study_a.id}/assignments/",
        _row(
            sponsor_lead_a=400,
            sponsor_viewer_a=403,
            sponsor_lead_b=404,
            cro_pm=400,
            cro_b_pm=404,
            cra=403,
            site_coord_1=403,
            site_coord_2=403,
            no_org_user=404,
        ),
    ),
    (
        "end the CRA of site 1 on A (no reason)",
        "post",
        lambda w: f"/studies/{w.study_a.id}/assignments/{w.cra_assignment.id}/end/",
        _row(
            sponsor_lead_a=400,
            sponsor_viewer_a=403,
            sponsor_lead_b=404,
            cro_pm=400,
            cro_b_pm=404,
            cra=403,
            site_coord_1=403,
            site_coord_2=404,  # another site's people are out of a site user's reach
            no_org_user=404,
        ),
    ),
    (
        "site profile 2",
        "get",
        lambda w: f"/sites/{w.site_2.id}/",
        _row(
            sponsor_lead_a=200,
            sponsor_viewer_a=200,
            sponsor_lead_b=404,
            cro_pm=200,
            cro_b_pm=404,
            cra=200,
            site_coord_1=404,
            site_coord_2=200,
            no_org_user=404,
        ),
    ),
    (
        "site 2 preferences (empty form)",
        "post",
        lambda w: f"/sites/{w.site_2.id}/preferences/",
        _row(
            sponsor_lead_a=403,
            sponsor_viewer_a=403,
            sponsor_lead_b=404,
            cro_pm=403,
            cro_b_pm=404,
            cra=403,
            site_coord_1=404,
            site_coord_2=400,
            no_org_user=404,
        ),
    ),
    (
        "site 2 training (empty form)",
        "post",
        lambda w: f"/sites/{w.site_2.id}/training/",
        _row(
            sponsor_lead_a=403,
            sponsor_viewer_a=403,
            sponsor_lead_b=404,
            cro_pm=403,
            cro_b_pm=404,
            cra=403,
            site_coord_1=404,
            site_coord_2=400,
            no_org_user=404,
        ),
    ),
    (
        "my site",
        "get",
        lambda w: "/sites/mine/",
        _row(
            sponsor_lead_a=404,
            sponsor_viewer_a=404,
            sponsor_lead_b=404,
            cro_pm=404,
            cro_b_pm=404,
            cra=404,
            site_coord_1=302,
            site_coord_2=302,
            no_org_user=404,
        ),
    ),
    (
        "study-site A/1 edit",
        "get",
        lambda w: f"/sites/study-sites/{w.ss_a1.id}/edit/",
        _row(
            sponsor_lead_a=200,
            sponsor_viewer_a=403,
            sponsor_lead_b=404,
            cro_pm=200,
            cro_b_pm=404,
            cra=200,
            site_coord_1=403,
            site_coord_2=404,
            no_org_user=404,
        ),
    ),
    (
        "study-site A/2 edit",
        "get",
        lambda w: f"/sites/study-sites/{w.ss_a2.id}/edit/",
        _row(
            sponsor_lead_a=200,
            sponsor_viewer_a=403,
            sponsor_lead_b=404,
            cro_pm=200,
            cro_b_pm=404,
            cra=403,  # sees every site of its studies, changes only those it monitors
            site_coord_1=404,
            site_coord_2=403,
            no_org_user=404,
        ),
    ),
]


def _matrix_post_data(world) -> dict[str, str]:
    """The current matrix of study A, unchanged (a valid submission)."""
    from trialhub.selectors import responsibility_matrix

    matrix = responsibility_matrix(world.study_a)
    return {
        f"cell__{entry['area']}__{entry['organization']}": entry["code"]
        for entry in matrix["entries"]
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("page", "method", "url", "expected"), PAGES, ids=[page[0] for page in PAGES]
)
def test_page_status_per_persona(world, client_as, page, method, url, expected):
    """One world per page, every persona against it; all mismatches are reported together."""
    path = url(world)
    data = _matrix_post_data(world) if page == "matrix A save" else {}
    wrong = []
    for persona in PERSONAS:
        user = None if persona == "anonymous" else getattr(world, persona)
        response = getattr(client_as(user), method)(path, data)
        if persona == "anonymous":
            login = f"/accounts/login/?next={quote(path)}"
            if response.status_code != 302 or response["Location"] != login:
                wrong.append(f"anonymous: {response.status_code} {response.get('Location')}")
            continue
        status = response.status_code
        if status != expected[persona]:
            wrong.append(f"{persona}: {status}, expected {expected[persona]}")
        elif status == 404 and b"Page not found" not in response.content:
            wrong.append(f"{persona}: 404 without the friendly page")
        elif status == 403 and b"you may not do that" not in response.content:
            wrong.append(f"{persona}: 403 without the friendly page")
    assert not wrong, f"{page} ({method.upper()} {path}): " + "; ".join(wrong)


@pytest.mark.django_db
def test_my_site_redirects_a_site_user_to_their_own_site(world, client_as):
    response = client_as(world.site_coord_1).get("/sites/mine/")
    assert response["Location"] == f"/sites/{world.site_1.id}/"


@pytest.mark.django_db
def test_study_site_edit_post_by_a_viewer_is_refused(world, client_as):
    response = client_as(world.sponsor_viewer_a).post(
        f"/sites/study-sites/{world.ss_a1.id}/edit/", {"status": "closed"}
    )
    assert response.status_code == 403
    world.ss_a1.refresh_from_db()
    assert world.ss_a1.status == "enrolling"
