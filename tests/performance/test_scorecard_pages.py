"""Scorecard pages: the study scorecard (table, filters, sort, charts), its CSV, settings and
recognitions; a study-site's history; a site's scorecards across studies. Hand-computed
numbers, tenancy (404 outside reach, 403 for in-reach people who may not act), query counts
that do not grow with the number of sites."""

from __future__ import annotations

import csv
import datetime
import io

import pytest
from django.utils import timezone

from comms.models import Delivery, Message
from performance.models import MetricSnapshot, Recognition, ScorecardConfig
from performance.services.scorecards import quarter_label, quarter_start
from sites.services import study_site_create
from tests.factories import site_org
from trialhub.models import Study

pytestmark = pytest.mark.django_db

# Hand-computed from the snapshots below (study period fully elapsed: elapsed fraction 1).
# Site One (target 20): enrolment 18/20 = 90% green; screen failures 4/20 = 20% green;
# discontinued 1/18; query rate 5 per 100 pages; resolution 20/5 = 4.0 days; lag 3.0 days;
# major deviations 1/18; no late SAE: every counted KPI green, composite 100.0.
SITE_ONE = dict(
    screened=20, screen_failures=4, enrolled=18, discontinued=1, crf_pages=100,
    queries_opened=5, queries_resolved=5, query_resolution_days=20,
    data_entry_lag_days="3.0", deviations_major=1, sae_late=0,
)  # fmt: skip
# Site Two (target 15): enrolment 12/15 = 80% amber (0 points); screen failures 12/30 = 40%
# amber (50); discontinued 3/12 = 25% red (0); query rate 40/200 = 20 red (0); resolution
# 100/10 = 10.0 days amber (4/7 × 100); lag 6.0 amber (50); deviations 6/12 red (0); one late
# SAE amber (50). Composite = (3·0 + 50 + 0 + 2·50 + 0 + 57.142857 + 2·0 + 2·50) / 13 = 23.6.
SITE_TWO = dict(
    screened=30, screen_failures=12, enrolled=12, discontinued=3, crf_pages=200,
    queries_opened=40, queries_resolved=10, query_resolution_days=100,
    data_entry_lag_days="6.0", deviations_major=6, sae_late=1,
)  # fmt: skip


def previous_month(day: datetime.date) -> datetime.date:
    return (day.replace(day=1) - datetime.timedelta(days=1)).replace(day=1)


TODAY = timezone.localdate()
PERIOD = previous_month(TODAY)
LAST_QUARTER = quarter_start(previous_month(quarter_start(TODAY)))
LAST_QUARTER_END_MONTH = datetime.date(LAST_QUARTER.year, LAST_QUARTER.month + 2, 1)


def snap(study_site, period=PERIOD, **values) -> MetricSnapshot:
    numbers = dict(deviations_minor=0, monitoring_visits=0, **(values or SITE_ONE))
    return MetricSnapshot.objects.create(study_site=study_site, period=period, **numbers)


@pytest.fixture
def scored(world):
    """study_a with its planned period over (elapsed fraction 1) and both sites' numbers."""
    Study.objects.filter(pk=world.study_a.pk).update(
        planned_start=datetime.date(2020, 1, 1), planned_end=datetime.date(2021, 1, 1)
    )
    snap(world.ss_a1, **SITE_ONE)
    snap(world.ss_a2, **SITE_TWO)
    return world


def page(study) -> str:
    return f"/studies/{study.id}/scorecard/"


def csv_url(study) -> str:
    return f"/studies/{study.id}/scorecard.csv"


def settings_url(study) -> str:
    return f"/studies/{study.id}/scorecard/settings/"


def read_csv(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.content.decode())))


# --- the study scorecard ----------------------------------------------------------------------


def test_owner_sees_hand_checked_numbers_rag_and_totals(scored, client_as):
    response = client_as(scored.sponsor_lead_a).get(page(scored.study_a))
    assert response.status_code == 200
    rows = {row.site_name: row for row in response.context["rows"]}
    one, two = rows["Site One"], rows["Site Two"]
    assert (one.score, one.rank, two.score, two.rank) == (100.0, 1, 23.6, 2)
    assert one.kpis["screen_failure_rate"].value == 0.2
    assert one.kpis["screen_failure_rate"].n == 20
    assert one.kpis["screen_failure_rate"].rag == "green"
    assert two.kpis["screen_failure_rate"].value == 0.4
    assert two.kpis["screen_failure_rate"].rag == "amber"
    assert two.kpis["query_rate"].value == 20.0
    assert two.kpis["query_rate"].rag == "red"
    assert two.kpis["query_resolution_days"].value == 10.0
    assert two.kpis["enrolment_vs_target"].value == 0.8
    assert two.kpis["key_ack_hours"].value is None
    html = response.content.decode()
    assert "100.0" in html and "23.6" in html
    assert "20%" in html and "40%" in html and "n=30" in html
    assert "10.0" in html  # days with one decimal
    assert "rag--green" in html and "rag--amber" in html and "rag--red" in html
    assert "not enough data" in html
    # Totals: ratios of sums — screen failures 16/50 = 32% amber; query rate 45/300 = 15.
    totals = response.context["totals"]
    assert totals["screen_failure_rate"].value == 0.32
    assert totals["screen_failure_rate"].rag == "amber"
    assert totals["query_rate"].value == 15.0
    assert "Study total" in html and "32%" in html
    # Charts for the sponsor: data as json_script, drawn by the vendored Chart.js.
    assert 'id="scorecard-trend-data"' in html and 'id="scorecard-distribution-data"' in html
    assert "chart-4.6.1.umd.min.js" in html and "scorecard-charts.js" in html
    trend = response.context["charts"]["trend"]
    assert len(trend["labels"]) == 12 and trend["labels"][-1] == f"{PERIOD:%Y-%m}"
    assert response.context["ranked"] == 2
    assert f"/study-sites/{scored.ss_a1.id}/scorecard/" in html
    assert f"/studies/{scored.study_a.id}/scorecard/settings/" in html
    assert f'name="period" value="{PERIOD:%Y-%m}"' in html  # the month shown is the one chosen


def test_distribution_chart_follows_the_chosen_kpi(scored, client_as):
    response = client_as(scored.cro_pm).get(page(scored.study_a), {"kpi": "query_rate"})
    distribution = response.context["charts"]["distribution"]
    assert distribution["labels"] == ["Site One", "Site Two"]
    assert distribution["values"] == [5.0, 20.0]
    assert distribution["rags"] == ["green", "red"]
    assert "lowest 5, median 12.5, highest 20" in response.context["charts"]["distribution_summary"]
    fraction = client_as(scored.cro_pm).get(page(scored.study_a), {"kpi": "screen_failure_rate"})
    assert fraction.context["charts"]["distribution"]["values"] == [20.0, 40.0]


def test_site_user_sees_only_its_own_row_without_charts_or_totals(scored, client_as):
    response = client_as(scored.site_coord_1).get(page(scored.study_a))
    assert response.status_code == 200
    html = response.content.decode()
    assert [row.site_name for row in response.context["rows"]] == ["Site One"]
    assert "Site Two" not in html and "23.6" not in html and "40%" not in html
    assert "scorecard-trend-data" not in html and "scorecard-distribution-data" not in html
    assert "chart-4.6.1" not in html and "<canvas" not in html
    assert "Study total" not in html and response.context["totals"] is None
    assert "100.0" in html and "of 2" in html  # its real rank among all the study's sites
    assert not response.context["can_manage"]


def test_csv_columns_values_and_filename(scored, client_as):
    response = client_as(scored.sponsor_lead_a).get(csv_url(scored.study_a))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert (
        response["Content-Disposition"]
        == f'attachment; filename="A-001-scorecard-{PERIOD:%Y-%m}.csv"'
    )
    header = next(csv.reader(io.StringIO(response.content.decode())))
    assert header[:9] == [
        "rank", "study_site", "site", "country", "status", "score",
        "enrolment_vs_target", "enrolment_vs_target_n", "enrolment_vs_target_rag",
    ]  # fmt: skip
    assert len(header) == 6 + 13 * 3 and header[-1] == "cra_changes_12m_rag"
    rows = read_csv(response)
    assert [r["site"] for r in rows] == ["Site One", "Site Two"]
    one, two = rows
    assert (one["rank"], one["study_site"], one["country"], one["status"], one["score"]) == (
        "1",
        str(scored.ss_a1.id),
        "DE",
        "enrolling",
        "100.0",
    )
    assert (two["screen_failure_rate"], two["screen_failure_rate_n"]) == ("0.4", "30")
    assert two["screen_failure_rate_rag"] == "amber"
    assert (two["key_ack_hours"], two["key_ack_hours_rag"]) == ("", "")


def test_site_user_csv_has_only_its_row(scored, client_as):
    rows = read_csv(client_as(scored.site_coord_1).get(csv_url(scored.study_a)))
    assert [r["site"] for r in rows] == ["Site One"]
    assert rows[0]["rank"] == "1"


def test_sort_by_kpi_and_none_last(scored, client_as):
    client = client_as(scored.sponsor_lead_a)
    by_rate = client.get(page(scored.study_a), {"sort": "query_rate", "dir": "desc"})
    assert [r.site_name for r in by_rate.context["rows"]] == ["Site Two", "Site One"]
    by_score = client.get(page(scored.study_a), {"sort": "score", "dir": "asc"})
    assert [r.site_name for r in by_score.context["rows"]] == ["Site Two", "Site One"]
    # A third site without numbers: no score, last whichever the direction.
    _, site_4 = site_org("Site Four", "IT", "Europe/Rome")
    study_site_create(study=scored.study_a, site=site_4, enrolment_target=5)
    for direction in ("asc", "desc"):
        rows = client.get(page(scored.study_a), {"sort": "score", "dir": direction}).context["rows"]
        assert rows[-1].site_name == "Site Four"
    html = client.get(page(scored.study_a), {"sort": "site", "dir": "asc"}).content.decode()
    assert 'aria-sort="ascending"' in html
    csv_rows = read_csv(client.get(csv_url(scored.study_a), {"sort": "site", "dir": "desc"}))
    assert [r["site"] for r in csv_rows] == ["Site Two", "Site One", "Site Four"]


def test_filter_by_country_and_status(scored, client_as):
    client = client_as(scored.sponsor_lead_a)
    french = client.get(page(scored.study_a), {"country": "FR"})
    assert [r.site_name for r in french.context["rows"]] == ["Site Two"]
    assert french.context["rows"][0].rank == 2  # ranks stay those among all sites
    closed = client.get(page(scored.study_a), {"status": "closed"})
    assert closed.context["rows"] == []
    assert "No sites match these filters" in closed.content.decode()
    assert [
        r["site"] for r in read_csv(client.get(csv_url(scored.study_a), {"country": "FR"}))
    ] == ["Site Two"]


def test_period_picker_and_bad_period(scored, client_as):
    client = client_as(scored.sponsor_lead_a)
    earlier = previous_month(PERIOD)
    before = client.get(page(scored.study_a), {"period": f"{earlier:%Y-%m}"})
    assert before.context["card"].period == earlier
    assert all(row.score is None for row in before.context["rows"])  # no snapshot yet
    for bad in ("2026-13", "soon", "9999-01"):
        response = client.get(page(scored.study_a), {"period": bad})
        assert response.status_code == 200
        assert response.context["card"].period == PERIOD
        assert response.context["form"].errors["period"]
    bad_csv = client.get(csv_url(scored.study_a), {"period": "nope"})
    assert bad_csv.status_code == 200 and f"{PERIOD:%Y-%m}" in bad_csv["Content-Disposition"]


def test_not_counted_kpi_is_marked_in_the_header(scored, client_as):
    client = client_as(scored.sponsor_lead_a)
    before = client.get(page(scored.study_a)).content.decode()
    assert 'class="cell-sub not-counted"' not in before  # every KPI counts by default
    ScorecardConfig.objects.create(study=scored.study_a, kpis={"query_rate": {"enabled": False}})
    response = client.get(page(scored.study_a))
    html = response.content.decode()
    assert html.count('class="cell-sub not-counted"') == 1
    headers = {header["key"]: header for header in response.context["headers"]}
    assert not headers["query_rate"]["counted"] and headers["deviation_rate"]["counted"]
    assert response.context["rows"][0].kpis["query_rate"].counted is False


# --- tenancy ----------------------------------------------------------------------------------


def every_url(world) -> list[str]:
    return [
        page(world.study_a),
        csv_url(world.study_a),
        settings_url(world.study_a),
        f"/study-sites/{world.ss_a2.id}/scorecard/",
        f"/sites/{world.site_2.id}/scorecards/",
    ]


def test_another_sponsor_gets_404_everywhere(scored, client_as):
    client = client_as(scored.sponsor_lead_b)
    for url in every_url(scored):
        assert client.get(url).status_code == 404, url
    assert client.post(settings_url(scored.study_a), {"reset": "1"}).status_code == 404
    award = f"/studies/{scored.study_a.id}/scorecard/recognitions/award/"
    announce = f"/studies/{scored.study_a.id}/scorecard/recognitions/announce/"
    assert client.post(award, {"quarter": f"{LAST_QUARTER:%Y-%m-%d}"}).status_code == 404
    assert client.post(announce, {"quarter": f"{LAST_QUARTER:%Y-%m-%d}"}).status_code == 404
    assert not ScorecardConfig.objects.exists()


def test_site_user_gets_404_for_other_sites_pages(scored, client_as):
    client = client_as(scored.site_coord_1)
    assert client.get(f"/study-sites/{scored.ss_a2.id}/scorecard/").status_code == 404
    assert client.get(f"/sites/{scored.site_2.id}/scorecards/").status_code == 404
    assert client.get(page(scored.study_a)).status_code == 200
    assert client_as(scored.site_coord_3).get(page(scored.study_a)).status_code == 404


def test_my_site_scorecards_is_404_for_sponsor_people(scored, client_as):
    assert client_as(scored.sponsor_lead_a).get("/my-site/scorecards/").status_code == 404


def test_anonymous_is_sent_to_log_in(scored, client_as):
    urls = [*every_url(scored), "/my-site/scorecards/"]
    for url in urls:
        response = client_as().get(url)
        assert response.status_code == 302 and response["Location"].startswith(
            "/accounts/login/"
        ), url


# --- settings ---------------------------------------------------------------------------------


def settings_post(**changes) -> dict:
    from performance.scorecards import DEFAULT_KPI_SETTINGS

    data = {"minimum_kpis": "3"}
    for slug, setting in DEFAULT_KPI_SETTINGS.items():
        if setting.enabled:
            data[f"{slug}-enabled"] = "on"
        data[f"{slug}-weight"] = str(setting.weight)
        data[f"{slug}-green"] = str(setting.green)
        data[f"{slug}-red"] = str(setting.red)
        data[f"{slug}-minimum_samples"] = str(setting.minimum_samples)
    data.update(changes)
    for name, value in list(data.items()):
        if value is None:
            del data[name]
    return data


def test_settings_page_documents_defaults_for_everyone(scored, client_as):
    for user in (scored.site_coord_1, scored.sponsor_viewer_a, scored.cro_pm):
        response = client_as(user).get(settings_url(scored.study_a))
        assert response.status_code == 200
        html = response.content.decode()
        assert "Amber below 90% of the pro-rata target" in html
        assert "Composite score" in html and "RAG status" in html
        assert "Save settings" not in html and response.context["form"] is None
    lead = client_as(scored.sponsor_lead_a).get(settings_url(scored.study_a)).content.decode()
    assert "Save settings" in lead and "Reset to defaults" in lead


def test_sponsor_lead_changes_settings(scored, client_as):
    client = client_as(scored.sponsor_lead_a)
    data = settings_post(
        **{"query_rate-enabled": None, "sae_late-weight": "4", "minimum_kpis": "4"}
    )
    response = client.post(settings_url(scored.study_a), data)
    assert response.status_code == 302 and response["Location"] == settings_url(scored.study_a)
    config = ScorecardConfig.objects.get(study=scored.study_a)
    assert config.kpis == {"query_rate": {"enabled": False}, "sae_late": {"weight": 4}}
    assert config.minimum_kpis == 4 and config.updated_by == scored.sponsor_lead_a
    html = client.get(page(scored.study_a)).content.decode()
    assert "not in score" in html
    # Reset to defaults.
    assert client.post(settings_url(scored.study_a), {"reset": "1"}).status_code == 302
    config.refresh_from_db()
    assert config.kpis == {} and config.minimum_kpis == 3


def test_invalid_threshold_shows_the_row_error_and_writes_nothing(scored, client_as):
    client = client_as(scored.sponsor_lead_a)
    data = settings_post(**{"enrolment_rate-green": "0.2", "enrolment_rate-red": "0.5"})
    response = client.post(settings_url(scored.study_a), data)
    assert response.status_code == 400
    rows = {row["slug"]: row for row in response.context["rows"]}
    assert any(
        "green threshold must be above the red one" in e for e in rows["enrolment_rate"]["errors"]
    )
    assert rows["query_rate"]["errors"] == []
    html = response.content.decode()
    assert "green threshold must be above the red one" in html
    assert not ScorecardConfig.objects.exists()
    not_a_number = client.post(
        settings_url(scored.study_a), settings_post(**{"query_rate-red": "x"})
    )
    assert not_a_number.status_code == 400
    rows = {row["slug"]: row for row in not_a_number.context["rows"]}
    assert rows["query_rate"]["errors"]
    assert not ScorecardConfig.objects.exists()


def test_sponsor_viewer_may_not_change_settings(scored, client_as):
    client = client_as(scored.sponsor_viewer_a)
    assert client.post(settings_url(scored.study_a), settings_post()).status_code == 403
    assert client.post(settings_url(scored.study_a), {"reset": "1"}).status_code == 403
    assert not ScorecardConfig.objects.exists()


# --- recognitions -----------------------------------------------------------------------------


def test_award_and_announce_through_the_page(scored, client_as):
    if LAST_QUARTER_END_MONTH != PERIOD:
        snap(scored.ss_a1, period=LAST_QUARTER_END_MONTH, **SITE_ONE)
        snap(scored.ss_a2, period=LAST_QUARTER_END_MONTH, **SITE_TWO)
    client = client_as(scored.sponsor_lead_a)
    html = client.get(page(scored.study_a)).content.decode()
    assert "Award recognitions" in html and quarter_label(LAST_QUARTER) in html
    award = f"/studies/{scored.study_a.id}/scorecard/recognitions/award/"
    response = client.post(award, {"quarter": f"{LAST_QUARTER:%Y-%m-%d}"}, follow=True)
    assert response.status_code == 200
    recognition = Recognition.objects.get()
    assert recognition.study_site == scored.ss_a1 and recognition.rank == 1
    assert recognition.sites_ranked == 2 and recognition.announced_at is None
    html = response.content.decode()
    assert "top quartile" in html and "Not announced" in html
    # A site sees no recognition before it is announced.
    site_html = client_as(scored.site_coord_1).get(page(scored.study_a)).content.decode()
    assert "No recognitions yet" in site_html
    announce = f"/studies/{scored.study_a.id}/scorecard/recognitions/announce/"
    response = client.post(announce, {"quarter": f"{LAST_QUARTER:%Y-%m-%d}"}, follow=True)
    assert response.status_code == 200
    message = Message.objects.get(category="recognition")
    assert message.audience == {"study_sites": [scored.ss_a1.id]}
    assert message.status == "sent"
    reached = set(Delivery.objects.filter(message=message).values_list("study_site_id", flat=True))
    assert reached == {scored.ss_a1.id}  # Site Two never learns who was recognised
    recipients = set(Delivery.objects.filter(message=message).values_list("recipient", flat=True))
    assert scored.site_coord_2.id not in recipients and scored.site_coord_1.id in recipients
    assert "announced to the recognised sites" in response.content.decode()
    recognition.refresh_from_db()
    assert recognition.announcement == message and recognition.announced_at is not None
    # Announcing again: nothing left, an error message, no new message.
    again = client.post(announce, {"quarter": f"{LAST_QUARTER:%Y-%m-%d}"}, follow=True)
    assert "no recognition left to announce" in again.content.decode()
    assert Message.objects.filter(category="recognition").count() == 1
    # The recognised site sees it, on the study page and on its own scorecards; Site Two not.
    assert (
        "Top quartile" in client_as(scored.site_coord_1).get(page(scored.study_a)).content.decode()
    )
    mine = client_as(scored.site_coord_1).get("/my-site/scorecards/").content.decode()
    assert f"{quarter_label(LAST_QUARTER)}</strong>, study A-001" in mine
    two = client_as(scored.site_coord_2).get(page(scored.study_a)).content.decode()
    assert "No recognitions yet" in two and "Site One" not in two


def test_viewer_may_not_award_or_announce(scored, client_as):
    if LAST_QUARTER_END_MONTH != PERIOD:
        snap(scored.ss_a1, period=LAST_QUARTER_END_MONTH, **SITE_ONE)
    client = client_as(scored.sponsor_viewer_a)
    award = f"/studies/{scored.study_a.id}/scorecard/recognitions/award/"
    announce = f"/studies/{scored.study_a.id}/scorecard/recognitions/announce/"
    assert client.post(award, {"quarter": f"{LAST_QUARTER:%Y-%m-%d}"}).status_code == 403
    assert client.post(announce, {"quarter": f"{LAST_QUARTER:%Y-%m-%d}"}).status_code == 403
    assert not Recognition.objects.exists()
    assert "Award recognitions" not in client.get(page(scored.study_a)).content.decode()


def test_award_rejects_a_quarter_not_ended(scored, client_as):
    client = client_as(scored.sponsor_lead_a)
    award = f"/studies/{scored.study_a.id}/scorecard/recognitions/award/"
    response = client.post(award, {"quarter": f"{quarter_start(TODAY):%Y-%m-%d}"}, follow=True)
    assert "Choose a quarter that has ended" in response.content.decode()
    assert not Recognition.objects.exists()


# --- a study-site's history and a site's scorecards ------------------------------------------


def test_study_site_history(scored, client_as):
    snap(scored.ss_a1, period=previous_month(PERIOD), **SITE_TWO)
    response = client_as(scored.site_coord_1).get(f"/study-sites/{scored.ss_a1.id}/scorecard/")
    assert response.status_code == 200
    history = response.context["history"]
    assert len(history) == 12 and history[0]["month"] == PERIOD
    newest, previous = history[0], history[1]
    # Cumulative: the two months together — screen failures 16/50 = 32%, amber.
    assert newest["kpis"]["screen_failure_rate"].value == 0.32
    assert newest["kpis"]["screen_failure_rate"].rag == "amber"
    assert (newest["rank"], newest["ranked"]) == (1, 2)
    assert previous["kpis"]["screen_failure_rate"].value == 0.4 and previous["ranked"] == 1
    html = response.content.decode()
    assert "site-trend-data" in html and "Rank 1 of 2" in html
    assert '<option value="12" selected>' in html
    assert "Site Two" not in html
    longer = client_as(scored.site_coord_1).get(
        f"/study-sites/{scored.ss_a1.id}/scorecard/", {"months": "24"}
    )
    assert len(longer.context["history"]) == 24
    bad = client_as(scored.site_coord_1).get(
        f"/study-sites/{scored.ss_a1.id}/scorecard/", {"months": "999"}
    )
    assert bad.status_code == 200 and len(bad.context["history"]) == 12


def test_my_site_scorecards_span_sponsors(scored, client_as):
    snap(scored.ss_b1, **SITE_ONE)
    response = client_as(scored.site_coord_1).get("/my-site/scorecards/")
    assert response.status_code == 200
    studies = {entry["study"].code: entry for entry in response.context["history"]}
    assert set(studies) == {"A-001", "B-001"}
    assert studies["A-001"]["row"].score == 100.0 and studies["A-001"]["ranked"] == 2
    html = response.content.decode()
    assert "Sponsor A" in html and "Sponsor B" in html and "rank 1 of 2" in html
    assert "Site Two" not in html


def test_site_history_shows_only_the_viewers_studies(scored, client_as):
    response = client_as(scored.sponsor_lead_a).get(f"/sites/{scored.site_1.id}/scorecards/")
    assert response.status_code == 200
    assert [entry["study"].code for entry in response.context["history"]] == ["A-001"]
    assert "B-001" not in response.content.decode()


# --- query counts -----------------------------------------------------------------------------


def add_sites(world, count: int) -> None:
    for index in range(count):
        _, site = site_org(f"Extra {index}", "NL", "Europe/Amsterdam")
        study_site = study_site_create(study=world.study_a, site=site, enrolment_target=10)
        snap(study_site, **SITE_TWO)
        snap(study_site, period=previous_month(PERIOD), **SITE_ONE)


# The same bound at 2 and 8 study-sites: the KPI engine reads a few aggregated rows.
PAGE_BOUND = 20
CSV_BOUND = 15
STUDY_SITE_BOUND = 12
SITE_HISTORY_BOUND = 19  # one study of the site in the sponsor's reach
MY_SITE_BOUND = 30  # Site One is on two studies: the count grows with studies, not sites


@pytest.mark.parametrize("extra", [0, 6])
def test_query_counts_do_not_grow_with_sites(
    scored, client_as, django_assert_max_num_queries, extra
):
    add_sites(scored, extra)
    snap(scored.ss_b1, **SITE_ONE)
    lead = client_as(scored.sponsor_lead_a)
    lead.get(page(scored.study_a))  # warm the session
    with django_assert_max_num_queries(PAGE_BOUND):
        response = lead.get(page(scored.study_a))
    assert len(response.context["rows"]) == 2 + extra
    with django_assert_max_num_queries(CSV_BOUND):
        assert len(read_csv(lead.get(csv_url(scored.study_a)))) == 2 + extra
    with django_assert_max_num_queries(STUDY_SITE_BOUND):
        assert lead.get(f"/study-sites/{scored.ss_a1.id}/scorecard/").status_code == 200
    site = client_as(scored.site_coord_1)
    with django_assert_max_num_queries(PAGE_BOUND):
        assert site.get(page(scored.study_a)).status_code == 200
    with django_assert_max_num_queries(MY_SITE_BOUND):
        assert site.get("/my-site/scorecards/").status_code == 200
    with django_assert_max_num_queries(SITE_HISTORY_BOUND):
        assert lead.get(f"/sites/{scored.site_1.id}/scorecards/").status_code == 200


def test_unknown_filters_fall_back_without_failing(scored, client_as):
    client = client_as(scored.sponsor_lead_a)
    params = {"sort": "colour", "dir": "sideways", "kpi": "mood", "country": "XX", "status": "x"}
    response = client.get(page(scored.study_a), params)
    assert response.status_code == 200
    assert [row.site_name for row in response.context["rows"]] == ["Site One", "Site Two"]
    assert response.context["chosen_kpi"] == "enrolment_vs_target"
    assert set(response.context["form"].errors) == {"sort", "dir", "kpi", "country", "status"}
    assert client.get(csv_url(scored.study_a), params).status_code == 200


def test_minimum_kpis_error_is_shown_on_its_field(scored, client_as):
    client = client_as(scored.sponsor_lead_a)
    response = client.post(settings_url(scored.study_a), settings_post(minimum_kpis="14"))
    assert response.status_code == 400
    assert "only 13 KPIs count" in response.context["form"].errors["minimum_kpis"][0]
    assert not ScorecardConfig.objects.exists()
