"""Scorecard API (``performance.api_scorecards``) and the CRO scorecard (``performance.cro``):
documented shapes, hand-computed CRO figures, tenancy (404 outside reach, a site's own row
only, survey answers anonymous to the CRO) and query counts at two sizes."""

from __future__ import annotations

import datetime

import pytest

from comms.models import Delivery, DeliveryKind
from performance.kpis import KPI_SLUGS
from performance.models import COUNT_FIELDS, MetricSnapshot
from sites.services import study_site_create
from tests.factories import site_org
from tests.performance.cro_world import build_cro_world
from trialhub.models import RoleAssignment, StudyRole

pytestmark = pytest.mark.django_db
SEP, OCT = datetime.date(2026, 9, 1), datetime.date(2026, 10, 1)


def snapshot(study_site, period: datetime.date, **values) -> MetricSnapshot:
    numbers = dict.fromkeys(COUNT_FIELDS, 0)
    numbers.update(values)
    return MetricSnapshot.objects.create(study_site=study_site, period=period, **numbers)


def scorecard_url(study) -> str:
    return f"/api/v1/studies/{study.id}/scorecard/"


@pytest.fixture
def metrics(world):
    for study_site, failures in ((world.ss_a1, 2), (world.ss_a2, 6), (world.ss_b1, 1)):
        snapshot(study_site, SEP, screened=12, screen_failures=failures, enrolled=4,
                 crf_pages=120, queries_opened=6, data_entry_lag_days=4)  # fmt: skip
    snapshot(world.ss_a1, OCT, screened=8, enrolled=2, crf_pages=60, queries_opened=3)
    return world


def test_scorecard_has_the_documented_shape_and_defaults_to_the_latest_period(metrics, api_as):
    response = api_as(metrics.sponsor_lead_a).get(scorecard_url(metrics.study_a))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["study"] == metrics.study_a.id and body["period"] == "2026-10"
    assert {site["study_site"] for site in body["sites"]} == {metrics.ss_a1.id, metrics.ss_a2.id}
    site = next(site for site in body["sites"] if site["study_site"] == metrics.ss_a1.id)
    assert site["site"] == metrics.site_1.id and site["site_name"] == "Site One"
    assert set(site["kpis"]) == set(KPI_SLUGS)
    # Cumulative to October: 2 failures of 20 screened; 9 queries per 180 pages × 100.
    assert site["kpis"]["screen_failure_rate"] == {"value": 0.1, "n": 20, "rag": "green"}
    assert site["kpis"]["query_rate"] == {"value": 5.0, "n": 180, "rag": "green"}
    assert site["kpis"]["key_ack_hours"] == {"value": None, "n": 0, "rag": None}


def test_scorecard_for_an_earlier_period(metrics, api_as):
    body = api_as(metrics.cro_pm).get(scorecard_url(metrics.study_a), {"period": "2026-09"}).json()
    site = next(site for site in body["sites"] if site["study_site"] == metrics.ss_a2.id)
    assert body["period"] == "2026-09"
    assert site["kpis"]["screen_failure_rate"] == {"value": 0.5, "n": 12, "rag": "amber"}


@pytest.mark.parametrize("period", ["2026-13", "26-10", "october", "2026-1"])
def test_a_malformed_period_is_a_field_error(metrics, api_as, period):
    response = api_as(metrics.sponsor_lead_a).get(
        scorecard_url(metrics.study_a), {"period": period}
    )
    assert response.status_code == 400 and "period" in response.json()


def test_a_site_user_gets_only_its_own_row(metrics, api_as):
    body = api_as(metrics.site_coord_1).get(scorecard_url(metrics.study_a)).json()
    assert [site["study_site"] for site in body["sites"]] == [metrics.ss_a1.id]
    assert "Site Two" not in str(body)


@pytest.mark.parametrize("who", ["sponsor_lead_b", "cro_b_pm", "site_coord_3", "no_org_user"])
def test_scorecard_of_another_tenants_study_is_404(metrics, api_as, who):
    response = api_as(getattr(metrics, who)).get(scorecard_url(metrics.study_a))
    assert response.status_code == 404


def test_anonymous_callers_are_refused(metrics, api_as):
    for url in (
        scorecard_url(metrics.study_a),
        f"/api/v1/studies/{metrics.study_a.id}/cro-scorecard/",
        f"/api/v1/sites/{metrics.site_1.id}/history/",
    ):
        assert api_as(None).get(url).status_code in (401, 403), url


def grow(world, count: int) -> None:
    for index in range(count):
        _, site = site_org(f"Extra {index}", "PL", "Europe/Warsaw")
        study_site = study_site_create(study=world.study_a, site=site, enrolment_target=10)
        snapshot(study_site, SEP, screened=10, screen_failures=3, crf_pages=50)
        RoleAssignment.objects.create(
            user=world.cra, role=StudyRole.CRA, study=world.study_a, study_site=study_site,
            start_date=SEP,
        )  # fmt: skip


@pytest.mark.parametrize("extra_sites", [0, 10])
def test_scorecard_queries_do_not_grow_with_sites(
    metrics, api_as, django_assert_max_num_queries, extra_sites
):
    grow(metrics, extra_sites)
    client = api_as(metrics.sponsor_lead_a)
    with django_assert_max_num_queries(14):
        body = client.get(scorecard_url(metrics.study_a)).json()
    assert len(body["sites"]) == 2 + extra_sites
    with django_assert_max_num_queries(14):
        assert client.get(f"/api/v1/studies/{metrics.study_a.id}/cro-scorecard/").status_code == 200


def test_site_history_spans_studies_and_sponsors_for_the_site(metrics, api_as):
    body = api_as(metrics.site_coord_1).get(f"/api/v1/sites/{metrics.site_1.id}/history/").json()
    assert body["site"] == metrics.site_1.id
    assert {entry["study_code"] for entry in body["studies"]} == {"A-001", "B-001"}
    entry = next(entry for entry in body["studies"] if entry["study_code"] == "A-001")
    assert entry["period"] == "2026-10" and len(entry["trend"]) == 12
    assert entry["trend"][-1]["period"] == "2026-10"
    assert entry["kpis"]["screen_failure_rate"]["value"] == 0.1


def test_a_sponsor_sees_only_its_own_studies_in_a_sites_history(metrics, api_as):
    body = api_as(metrics.sponsor_lead_b).get(f"/api/v1/sites/{metrics.site_1.id}/history/").json()
    assert [entry["study_code"] for entry in body["studies"]] == ["B-001"]


@pytest.mark.parametrize("who", ["site_coord_2", "sponsor_lead_b", "no_org_user"])
def test_history_of_a_site_out_of_reach_is_404(metrics, api_as, who):
    # Site Two works only on sponsor A's study: sponsor B and Site Two's neighbours can't see it.
    site = metrics.site_1 if who == "site_coord_2" else metrics.site_2
    url = f"/api/v1/sites/{site.id}/history/"
    assert api_as(getattr(metrics, who)).get(url).status_code == 404


def test_history_months_are_bounded(metrics, api_as):
    url = f"/api/v1/sites/{metrics.site_1.id}/history/"
    assert api_as(metrics.site_coord_1).get(url, {"months": 0}).status_code == 400


# --- the CRO scorecard ------------------------------------------------------------------------


@pytest.fixture
def cro_world(world):
    """Study B: the shared CRO monitors Site One (two CRAs this year: a change), the B-only
    CRO Site Three. Site One was selected 59 days before activation and enrolled 10 days
    after it. Four survey answers about the shared CRO, one about the B-only CRO."""
    return build_cro_world(
        world,
        shared_answers=[
            (5, 4, 3, "Great CRA at Site One"),
            (4, 4, 4, ""),
            (3, 5, 5, ""),
            (4, 3, 4, ""),
        ],
        b_only_answers=[(2, 2, 2, "Slow replies")],
    )


def cro_entry(body: dict, cro) -> dict:
    return next(entry for entry in body["cros"] if entry["cro"]["id"] == cro.id)


def test_cro_scorecard_figures_for_the_sponsor(cro_world, api_as):
    w = cro_world
    response = api_as(w.sponsor_lead_b).get(f"/api/v1/studies/{w.study_b.id}/cro-scorecard/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert [entry["cro"]["name"] for entry in body["cros"]] == ["B-only CRO", "Shared CRO"]
    shared, b_only = cro_entry(body, w.cro), cro_entry(body, w.cro_b)
    assert shared["study_sites"] == 1 and shared["cra_turnover"] == {"value": 1.0, "n": 1}
    assert b_only["cra_turnover"] == {"value": 0.0, "n": 1}
    assert shared["activation_days"] == {"value": 59.0, "n": 1}
    assert shared["first_patient_days"] == {"value": 10.0, "n": 1}
    assert b_only["activation_days"] == {"value": None, "n": 0}
    in_app = Delivery.objects.filter(
        message__study=w.study_b, kind=DeliveryKind.MESSAGE, channel="in_app"
    )
    assert in_app.exists(), "the reminder reached Site One"
    assert shared["messages_per_site_week"] == {"value": round(1 / 12, 2), "n": 1}
    assert b_only["messages_per_site_week"] == {"value": 0.0, "n": 1}
    # (5+4+3+4)/4 = 4.0, (4+4+5+3)/4 = 4.0, (3+4+5+4)/4 = 4.0
    assert shared["feedback"] == {
        "n": 4,
        "hidden": False,
        "means": {"communication_clarity": 4.0, "support": 4.0, "cra_responsiveness": 4.0},
    }
    assert b_only["feedback"]["n"] == 1 and b_only["feedback"]["hidden"] is True
    assert set(b_only["feedback"]["means"].values()) == {None}


def test_a_cro_sees_only_its_own_row_and_no_site_names(cro_world, api_as):
    w = cro_world
    body = api_as(w.cro_b_pm).get(f"/api/v1/studies/{w.study_b.id}/cro-scorecard/").json()
    assert [entry["cro"]["id"] for entry in body["cros"]] == [w.cro_b.id]
    assert "Site" not in str(body) and "Slow replies" not in str(body)


@pytest.mark.parametrize("who", ["site_coord_1", "sponsor_lead_a", "no_org_user"])
def test_cro_scorecard_is_404_outside_sponsor_and_cro_reach(cro_world, api_as, who):
    url = f"/api/v1/studies/{cro_world.study_b.id}/cro-scorecard/"
    assert api_as(getattr(cro_world, who)).get(url).status_code == 404
