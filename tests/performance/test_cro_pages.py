"""CRO scorecard pages: who sees which CRO, anonymity of site feedback, 404 outside reach,
and query counts at two sizes."""

from __future__ import annotations

import pytest

from performance.models import Survey, SurveyResponse
from sites.services import study_site_create
from tests.factories import member, site_org
from trialhub.models import RoleAssignment, StudyRole

pytestmark = pytest.mark.django_db


def study_page(study) -> str:
    return f"/studies/{study.id}/cro-scorecard/"


@pytest.fixture
def feedback(world):
    """Three answers about the shared CRO on study B from Site One (names must never show)."""
    survey = Survey.objects.create(
        study=world.study_b,
        title="Autumn feedback",
        opened_by=world.sponsor_lead_b,
        opened_by_organization=world.sponsor_b,
    )
    for index, score in enumerate((5, 4, 3)):
        SurveyResponse.objects.create(
            survey=survey,
            study_site=world.ss_b1,
            respondent=member(world.site_org_1, f"respondent_{index}"),
            cro=world.cro,
            communication_clarity=score,
            support=score,
            cra_responsiveness=score,
            comment="Site One's CRA was great",
        )
    return world


def test_the_sponsor_sees_every_engaged_cro(feedback, client_as):
    response = client_as(feedback.sponsor_lead_b).get(study_page(feedback.study_b))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Shared CRO" in page and "B-only CRO" in page
    assert "4.0 / 5" in page, "the mean of 5, 4 and 3"
    assert "Track record across studies" in page


def test_a_cro_sees_its_own_column_without_site_names_or_comments(feedback, client_as):
    page = client_as(feedback.cro_pm).get(study_page(feedback.study_b)).content.decode()
    assert "Shared CRO" in page and "B-only CRO" not in page
    assert "Site One" not in page and "respondent_" not in page and "was great" not in page
    assert "Track record across studies" not in page


@pytest.mark.parametrize("who", ["sponsor_lead_a", "site_coord_1", "no_org_user"])
def test_cro_scorecard_page_outside_reach_is_404(feedback, client_as, who):
    assert client_as(getattr(feedback, who)).get(study_page(feedback.study_b)).status_code == 404


def test_anonymous_visitors_are_sent_to_log_in(world, client_as):
    for url in (study_page(world.study_b), "/cro-track-record/"):
        response = client_as(None).get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_track_record_puts_a_sponsors_cros_side_by_side(feedback, client_as):
    page = client_as(feedback.sponsor_lead_b).get("/cro-track-record/").content.decode()
    assert "Shared CRO" in page and "B-only CRO" in page and "B-001" in page
    assert "A-001" not in page, "sponsor A's study is not sponsor B's record"


@pytest.mark.parametrize("who", ["cro_pm", "site_coord_1", "no_org_user"])
def test_the_track_record_is_for_sponsors_only(world, client_as, who):
    assert client_as(getattr(world, who)).get("/cro-track-record/").status_code == 404


@pytest.mark.parametrize("extra_sites", [0, 8])
def test_cro_pages_queries_do_not_grow_with_sites(
    feedback, client_as, django_assert_max_num_queries, extra_sites
):
    for index in range(extra_sites):
        _, site = site_org(f"Extra {index}", "PL", "Europe/Warsaw")
        study_site = study_site_create(study=feedback.study_b, site=site, enrolment_target=5)
        RoleAssignment.objects.create(
            user=feedback.cra,
            role=StudyRole.CRA,
            study=feedback.study_b,
            study_site=study_site,
            start_date=study_site.study.planned_start,
        )
    client = client_as(feedback.sponsor_lead_b)
    with django_assert_max_num_queries(16):
        assert client.get(study_page(feedback.study_b)).status_code == 200
    with django_assert_max_num_queries(16):
        assert client.get("/cro-track-record/").status_code == 200
