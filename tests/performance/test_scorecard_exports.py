"""CSV exports of the scorecard tables other than the study scorecard: a study's CRO
scorecard, a sponsor's CRO track record and a study-site's monthly history. Hand-computed
values, tenancy (404 outside reach, a CRO's own row, a site's own study-sites only, never a
site name or a comment in the CRO files), login, and query counts at two sizes."""

from __future__ import annotations

import csv
import datetime
import io

import pytest
from django.utils import timezone

from performance.kpis import KPI_SLUGS
from sites.services import study_site_create
from tests.factories import site_org
from tests.performance.cro_world import build_cro_world
from tests.performance.test_scorecard_pages import (
    PERIOD,
    SITE_ONE,
    SITE_TWO,
    previous_month,
    snap,
)
from trialhub.models import RoleAssignment, Study, StudyRole

pytestmark = pytest.mark.django_db

CRO_HEADER = [
    "cro", "study_sites", "cra_turnover", "cra_turnover_n", "messages_per_site_week",
    "messages_per_site_week_n", "key_ack_hours", "key_ack_hours_n", "activation_days",
    "activation_days_n", "first_patient_days", "first_patient_days_n", "feedback_n",
    "feedback_communication_clarity", "feedback_support", "feedback_cra_responsiveness",
]  # fmt: skip
HISTORY_HEADER = ["month", "score", "rank", "ranked"] + [
    f"{slug}{suffix}" for slug in KPI_SLUGS for suffix in ("", "_n", "_rag")
]


def read(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


def read_dicts(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def cro_csv(study) -> str:
    return f"/studies/{study.id}/cro-scorecard.csv"


TRACK_CSV = "/cro-track-record.csv"


def history_csv(study_site) -> str:
    return f"/study-sites/{study_site.id}/scorecard.csv"


# --- the CRO scorecard and track record -------------------------------------------------------


@pytest.fixture
def cro_world(world):
    """Study B: the shared CRO monitors Site One (two CRAs this year: turnover 1 of 1), the
    B-only CRO Site Three. Site One was selected 59 days before activation and enrolled its
    first patient 10 days after it. Three survey answers about the shared CRO (shown), one
    about the B-only CRO (hidden). One milestone notice from the shared CRO reaches Site One
    (1 message / (1 study-site × 12 weeks) = 0.08), not acknowledged."""
    return build_cro_world(
        world,
        shared_answers=[
            (5, 4, 3, "Great CRA at Site One"),
            (4, 4, 4, ""),
            (3, 5, 5, ""),
        ],
        b_only_answers=[(2, 2, 2, "Slow replies")],
    )


# Study B, by CRO name. Feedback means of the shared CRO: clarity (5+4+3)/3 = 4.0, support
# (4+4+5)/3 = 4.3, CRA responsiveness (3+4+5)/3 = 4.0; the B-only CRO's one answer is hidden.
B_ONLY_ROW = ["B-only CRO", "1", "0.0", "1", "0.0", "1", "", "0", "", "0", "", "0", "1", "", "", ""]
SHARED_ROW = [
    "Shared CRO", "1", "1.0", "1", "0.08", "1", "", "0", "59.0", "1", "10.0", "1", "3",
    "4.0", "4.3", "4.0",
]  # fmt: skip


def test_cro_scorecard_csv_for_the_sponsor(cro_world, client_as):
    w = cro_world
    response = client_as(w.sponsor_lead_b).get(cro_csv(w.study_b))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    filename = f"B-001-cro-scorecard-{timezone.localdate():%Y-%m-%d}.csv"
    assert response["Content-Disposition"] == f'attachment; filename="{filename}"'
    assert read(response) == [CRO_HEADER, B_ONLY_ROW, SHARED_ROW]
    text = response.content.decode()
    assert "Site" not in text and "Slow replies" not in text and "answer_" not in text


def test_cro_scorecard_page_links_its_csv(cro_world, client_as):
    page = client_as(cro_world.sponsor_lead_b).get(
        f"/studies/{cro_world.study_b.id}/cro-scorecard/"
    )
    html = page.content.decode()
    assert f'class="button button--ghost" href="{cro_csv(cro_world.study_b)}"' in html
    assert "Export CSV" in html


@pytest.mark.parametrize(("who", "row"), [("cro_pm", SHARED_ROW), ("cro_b_pm", B_ONLY_ROW)])
def test_a_cro_user_gets_only_its_own_row(cro_world, client_as, who, row):
    response = client_as(getattr(cro_world, who)).get(cro_csv(cro_world.study_b))
    assert response.status_code == 200
    assert read(response) == [CRO_HEADER, row]
    text = response.content.decode()
    assert "Site" not in text and "Great CRA" not in text and "Slow replies" not in text


@pytest.mark.parametrize("who", ["sponsor_lead_a", "site_coord_1", "site_coord_3", "no_org_user"])
def test_cro_scorecard_csv_outside_reach_is_404(cro_world, client_as, who):
    assert client_as(getattr(cro_world, who)).get(cro_csv(cro_world.study_b)).status_code == 404


def test_track_record_csv_for_the_sponsor(cro_world, client_as):
    response = client_as(cro_world.sponsor_lead_b).get(TRACK_CSV)
    assert response.status_code == 200
    filename = f"cro-track-record-{timezone.localdate():%Y-%m-%d}.csv"
    assert response["Content-Disposition"] == f'attachment; filename="{filename}"'
    # Sponsor B has one study: its track record is study B's scorecard.
    assert read(response) == [CRO_HEADER, B_ONLY_ROW, SHARED_ROW]
    assert "Site" not in response.content.decode()
    page = client_as(cro_world.sponsor_lead_b).get("/cro-track-record/").content.decode()
    assert f'class="button button--ghost" href="{TRACK_CSV}"' in page


def test_another_sponsors_track_record_holds_only_its_own_studies(cro_world, client_as):
    # Sponsor A engages only the shared CRO, whose CRA monitors Site One on A-001 (one CRA:
    # no turnover); sponsor B's survey answers and milestones are not A's record.
    response = client_as(cro_world.sponsor_lead_a).get(TRACK_CSV)
    assert response.status_code == 200
    assert read(response) == [
        CRO_HEADER,
        ["Shared CRO", "1", "0.0", "1", "0.0", "1", "", "0", "", "0", "", "0", "0", "", "", ""],
    ]


@pytest.mark.parametrize("who", ["cro_pm", "site_coord_1", "no_org_user"])
def test_track_record_csv_is_for_sponsors_only(cro_world, client_as, who):
    assert client_as(getattr(cro_world, who)).get(TRACK_CSV).status_code == 404


@pytest.mark.parametrize("extra_sites", [0, 8])
def test_cro_csv_queries_do_not_grow_with_sites(
    cro_world, client_as, django_assert_max_num_queries, extra_sites
):
    for index in range(extra_sites):
        _, site = site_org(f"Extra {index}", "PL", "Europe/Warsaw")
        study_site = study_site_create(study=cro_world.study_b, site=site, enrolment_target=5)
        RoleAssignment.objects.create(
            user=cro_world.cra, role=StudyRole.CRA, study=cro_world.study_b,
            study_site=study_site, start_date=timezone.localdate(),
        )  # fmt: skip
    client = client_as(cro_world.sponsor_lead_b)
    with django_assert_max_num_queries(14):
        rows = read_dicts(client.get(cro_csv(cro_world.study_b)))
    assert [row["study_sites"] for row in rows] == ["1", str(1 + extra_sites)]
    with django_assert_max_num_queries(14):
        assert len(read_dicts(client.get(TRACK_CSV))) == 2


# --- a study-site's monthly history -----------------------------------------------------------


@pytest.fixture
def scored(world):
    """study_a with its planned period over and both sites' numbers for ``PERIOD`` (see
    ``test_scorecard_pages``): Site One scores 100.0 (rank 1), Site Two 23.6 (rank 2)."""
    Study.objects.filter(pk=world.study_a.pk).update(
        planned_start=datetime.date(2020, 1, 1), planned_end=datetime.date(2021, 1, 1)
    )
    snap(world.ss_a1, **SITE_ONE)
    snap(world.ss_a2, **SITE_TWO)
    return world


def test_history_csv_columns_and_values(scored, client_as):
    response = client_as(scored.sponsor_lead_a).get(history_csv(scored.ss_a1))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    filename = f"A-001-study-site-{scored.ss_a1.id}-scorecard-{PERIOD:%Y-%m}.csv"
    assert response["Content-Disposition"] == f'attachment; filename="{filename}"'
    lines = read(response)
    assert lines[0] == HISTORY_HEADER
    rows = read_dicts(response)
    # The page's 12 months, newest first like the page.
    assert len(rows) == 12 and rows[0]["month"] == f"{PERIOD:%Y-%m}"
    assert rows[1]["month"] == f"{previous_month(PERIOD):%Y-%m}"
    newest = rows[0]
    assert (newest["score"], newest["rank"], newest["ranked"]) == ("100.0", "1", "2")
    # 4 failures of 20 screened = 20%, green; 18 enrolled of a target of 20 = 90%, green.
    assert (newest["screen_failure_rate"], newest["screen_failure_rate_n"]) == ("0.2", "20")
    assert newest["screen_failure_rate_rag"] == "green"
    assert (newest["enrolment_vs_target"], newest["enrolment_vs_target_rag"]) == ("0.9", "green")
    # 5 queries per 100 CRF pages.
    assert (newest["query_rate"], newest["query_rate_n"]) == ("5.0", "100")
    # No numbers before PERIOD: no score, no rank, no KPI value, nobody ranked.
    older = rows[1]
    assert (older["score"], older["rank"], older["ranked"]) == ("", "", "0")
    assert (older["screen_failure_rate"], older["screen_failure_rate_rag"]) == ("", "")
    second = read_dicts(client_as(scored.sponsor_lead_a).get(history_csv(scored.ss_a2)))[0]
    assert (second["score"], second["rank"], second["ranked"]) == ("23.6", "2", "2")
    assert (second["screen_failure_rate"], second["screen_failure_rate_rag"]) == ("0.4", "amber")


def test_history_csv_follows_the_months_shown(scored, client_as):
    snap(scored.ss_a1, period=previous_month(PERIOD), **SITE_TWO)
    client = client_as(scored.site_coord_1)
    rows = read_dicts(client.get(history_csv(scored.ss_a1), {"months": "6"}))
    assert len(rows) == 6
    # Cumulative: the two months together — screen failures 16/50 = 32%, amber.
    assert (rows[0]["screen_failure_rate"], rows[0]["screen_failure_rate_n"]) == ("0.32", "50")
    assert rows[0]["screen_failure_rate_rag"] == "amber"
    assert (rows[1]["screen_failure_rate"], rows[1]["ranked"]) == ("0.4", "1")
    assert len(read_dicts(client.get(history_csv(scored.ss_a1), {"months": "24"}))) == 24
    assert len(read_dicts(client.get(history_csv(scored.ss_a1), {"months": "999"}))) == 12
    page = client.get(f"/study-sites/{scored.ss_a1.id}/scorecard/", {"months": "24"})
    html = page.content.decode()
    assert f'class="button button--ghost" href="{history_csv(scored.ss_a1)}?months=24"' in html


def test_a_site_user_exports_only_its_own_study_sites(scored, client_as):
    client = client_as(scored.site_coord_1)
    response = client.get(history_csv(scored.ss_a1))
    assert response.status_code == 200 and len(read_dicts(response)) == 12
    assert "Site Two" not in response.content.decode()
    assert client.get(history_csv(scored.ss_b1)).status_code == 200, "Site One on study B"
    assert client.get(history_csv(scored.ss_a2)).status_code == 404
    assert client.get(history_csv(scored.ss_b3)).status_code == 404


@pytest.mark.parametrize("who", ["sponsor_lead_b", "cro_b_pm", "site_coord_2", "no_org_user"])
def test_history_csv_outside_reach_is_404(scored, client_as, who):
    assert client_as(getattr(scored, who)).get(history_csv(scored.ss_a1)).status_code == 404


def test_anonymous_is_sent_to_log_in(scored, client_as):
    for url in (cro_csv(scored.study_b), TRACK_CSV, history_csv(scored.ss_a1)):
        response = client_as(None).get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url


@pytest.mark.parametrize("extra", [0, 6])
def test_history_csv_queries_do_not_grow_with_sites_or_months(
    scored, client_as, django_assert_max_num_queries, extra
):
    for index in range(extra):
        _, site = site_org(f"Extra {index}", "NL", "Europe/Amsterdam")
        study_site = study_site_create(study=scored.study_a, site=site, enrolment_target=10)
        snap(study_site, **SITE_TWO)
        snap(study_site, period=previous_month(PERIOD), **SITE_ONE)
    client = client_as(scored.sponsor_lead_a)
    with django_assert_max_num_queries(12):
        rows = read_dicts(client.get(history_csv(scored.ss_a1)))
    assert rows[0]["ranked"] == str(2 + extra)
    with django_assert_max_num_queries(12):
        assert len(read_dicts(client.get(history_csv(scored.ss_a1), {"months": "36"}))) == 36


def test_formula_like_text_is_defused_in_every_export():
    from performance.exports import csv_row

    assert csv_row(['=HYPERLINK("x")', "+1", "-cmd", "@SUM(A1)", "Charité", None, -3, 0.5]) == [
        '\'=HYPERLINK("x")',
        "'+1",
        "'-cmd",
        "'@SUM(A1)",
        "Charité",
        "",
        -3,
        0.5,
    ]
