"""The demo personas of PRODUCT.md against every page and endpoint of a study or site, for a
study of each sponsor: the owner sees it, another tenant gets 404, an anonymous visitor is
sent to log in (pages) or gets 401 (API), and visible-but-not-allowed is 403."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from rest_framework.test import APIClient

from sites.models import Site
from trialhub.models import Study

User = get_user_model()
ONC, CAR, NEU = "SPA-ONC-301", "SPA-CAR-202", "SPB-NEU-201"  # two of Sponsor A, one of B
CHARITE, HERRIOT = "Charité Berlin", "Hôpital Édouard Herriot"  # site_coord's, site_coord_2's
PERSONAS = [
    "sponsor_a",
    "sponsor_b",
    "cro_pm",
    "cra_1",
    "cra_2",
    "site_coord",
    "site_coord_2",
    "admin",
    None,
]
SEES_STUDY = {
    "sponsor_a": {ONC, CAR},
    "sponsor_b": {NEU},
    "cro_pm": {ONC, CAR, NEU},
    "cra_1": {ONC, CAR, NEU},
    "cra_2": {ONC, CAR, NEU},
    "site_coord": {ONC, NEU},
    "site_coord_2": {ONC, CAR},
    "admin": set(),
}
ASSIGNS_ON = {"sponsor_a": {ONC, CAR}, "sponsor_b": {NEU}, "cro_pm": {ONC, CAR, NEU}}
SEES_SITE = {
    "sponsor_a": {CHARITE, HERRIOT},
    "sponsor_b": {CHARITE},
    "cro_pm": {CHARITE, HERRIOT},
    "cra_1": {CHARITE, HERRIOT},
    "cra_2": {CHARITE, HERRIOT},
    "site_coord": {CHARITE},
    "site_coord_2": {HERRIOT},
    "admin": set(),
}
STUDY_PAGES = ["/studies/{id}/", "/studies/{id}/matrix/"]
STUDY_ENDPOINTS = [
    "/api/v1/studies/{id}/",
    "/api/v1/studies/{id}/sites/",
    "/api/v1/studies/{id}/responsibilities/",
    "/api/v1/studies/{id}/responsibilities/history/",
]

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker):
    """The demo data, loaded once for the module and rolled back at its end."""
    with django_db_blocker.unblock(), transaction.atomic():
        call_command("seed_demo", stdout=io.StringIO())
        yield {
            "studies": dict(Study.objects.values_list("code", "id")),
            "sites": dict(Site.objects.values_list("name", "id")),
        }
        transaction.set_rollback(True)


def page_client(username: str | None) -> Client:
    client = Client()
    if username:
        client.force_login(User.objects.get(username=username))
    return client


def api_client(username: str | None) -> APIClient:
    client = APIClient()
    if username:
        client.force_authenticate(User.objects.get(username=username))
    return client


def cases(paths):
    return [
        (path, code, persona) for path in paths for code in (ONC, CAR, NEU) for persona in PERSONAS
    ]


@pytest.mark.parametrize("path, code, persona", cases(STUDY_PAGES))
def test_study_pages(demo, path, code, persona):
    url = path.format(id=demo["studies"][code])
    response = page_client(persona).get(url)
    if persona is None:
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    else:
        assert response.status_code == (200 if code in SEES_STUDY[persona] else 404)


@pytest.mark.parametrize("code", [ONC, CAR, NEU])
@pytest.mark.parametrize("persona", PERSONAS)
def test_assignments_page(demo, persona, code):
    response = page_client(persona).get(f"/studies/{demo['studies'][code]}/assignments/")
    if persona is None:
        expected = 302
    elif code in ASSIGNS_ON.get(persona, set()):
        expected = 200
    elif code in SEES_STUDY[persona]:
        expected = 403
    else:
        expected = 404
    assert response.status_code == expected


@pytest.mark.parametrize("site", [CHARITE, HERRIOT])
@pytest.mark.parametrize("persona", PERSONAS)
def test_site_profile_page(demo, persona, site):
    response = page_client(persona).get(f"/sites/{demo['sites'][site]}/")
    if persona is None:
        assert response.status_code == 302
    else:
        assert response.status_code == (200 if site in SEES_SITE[persona] else 404)


@pytest.mark.parametrize("path, code, persona", cases(STUDY_ENDPOINTS))
def test_study_endpoints(demo, path, code, persona):
    response = api_client(persona).get(path.format(id=demo["studies"][code]))
    if persona is None:
        assert response.status_code == 401
    else:
        assert response.status_code == (200 if code in SEES_STUDY[persona] else 404)


@pytest.mark.parametrize("code", [ONC, NEU])
@pytest.mark.parametrize("persona", PERSONAS)
def test_matrix_put_back_unchanged(demo, persona, code):
    url = f"/api/v1/studies/{demo['studies'][code]}/responsibilities/"
    client = api_client(persona)
    lead_view = api_client("sponsor_a" if code == ONC else "sponsor_b").get(url).json()
    response = client.put(url, {"entries": lead_view["entries"]}, format="json")
    lead = {ONC: "sponsor_a", NEU: "sponsor_b"}[code]
    if persona is None:
        expected = 401
    elif persona == lead:
        expected = 200
    elif code in SEES_STUDY[persona]:
        expected = 403
    else:
        expected = 404
    assert response.status_code == expected


@pytest.mark.parametrize("persona", [p for p in PERSONAS if p])
def test_study_lists_show_exactly_the_reach(demo, persona):
    listed = {row["code"] for row in api_client(persona).get("/api/v1/studies/").json()["results"]}
    assert listed == SEES_STUDY[persona]
    page = page_client(persona).get("/studies/").content.decode()
    for code in (ONC, CAR, NEU):
        assert (code in page) == (code in SEES_STUDY[persona]), f"{persona} / {code}"


@pytest.mark.parametrize("persona", PERSONAS)
def test_dashboard(demo, persona):
    response = page_client(persona).get("/")
    assert response.status_code == (302 if persona is None else 200)
