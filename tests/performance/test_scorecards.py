"""Scorecards (``performance.scorecards``, its selectors and services) against hand-computed
figures: RAG, points, composite, rank, trend, settings, recognitions and tenancy."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils import timezone

from comms.models import Message
from performance.kpis import (
    KpiValue,
    study_kpis,
    study_kpis_series,
    study_kpis_series_with_totals,
    study_totals,
)
from performance.models import COUNT_FIELDS, MetricSnapshot, Recognition, ScorecardConfig
from performance.scorecards import (
    DEFAULT_KPI_SETTINGS,
    ScorecardSettings,
    composite,
    effective_settings,
    points,
    rag,
    ranks,
    study_scorecard,
)
from performance.selectors.scorecards import scorecard_for_user, site_history_for_user
from performance.services.scorecards import (
    recognitions_announce,
    recognitions_award,
    recognitions_award_due,
    scorecard_config_update,
)
from tests.performance.test_kpis import acknowledged, key_message_to
from trialhub.models import RoleAssignment, StudyRole

pytestmark = pytest.mark.django_db
UTC = datetime.UTC
JAN, FEB, MAR = (datetime.date(2026, month, 1) for month in (1, 2, 3))
TODAY = datetime.date(2026, 4, 15)
EVT, LAG, SFR = (
    DEFAULT_KPI_SETTINGS[slug]
    for slug in ("enrolment_vs_target", "data_entry_lag_days", "screen_failure_rate")
)
# Only these count in the scorecard tests: weights 1, 1 and 2.
THREE_KPIS = {
    slug: {"enabled": slug in {"screen_failure_rate", "query_rate", "data_entry_lag_days"}}
    for slug in DEFAULT_KPI_SETTINGS
}


def snapshot(study_site, period: datetime.date, **values) -> MetricSnapshot:
    numbers = dict.fromkeys(COUNT_FIELDS, 0)
    numbers.update(values)
    return MetricSnapshot.objects.create(study_site=study_site, period=period, **numbers)


def kpis(**values) -> dict[str, KpiValue]:
    return {slug: KpiValue(values.get(slug), 10) for slug in DEFAULT_KPI_SETTINGS}


def test_rag_of_a_higher_is_better_kpi():
    assert [rag(v, EVT) for v in (0.95, 0.9, 0.85, 0.8, 0.79, None)] == [
        "green",
        "green",
        "amber",
        "amber",
        "red",
        None,
    ]


def test_rag_of_a_lower_is_better_kpi():
    assert [rag(v, LAG) for v in (3, 5, 6, 7, 7.1)] == ["green", "green", "amber", "amber", "red"]


def test_points_run_from_red_to_green_and_are_clamped():
    assert points(0.85, EVT) == pytest.approx(50)
    assert points(1.2, EVT) == 100
    assert points(0.5, EVT) == 0
    assert points(6, LAG) == pytest.approx(50)
    assert points(3, LAG) == 100
    assert points(9, LAG) == 0
    assert points(None, LAG) is None


def test_composite_is_the_weighted_mean_of_kpis_with_data():
    settings = effective_settings(None)
    # points 80 (weight 3), 25 (weight 2), 50 (weight 1): 340 / 6
    values = kpis(enrolment_vs_target=0.88, data_entry_lag_days=6.5, screen_failure_rate=0.4)
    assert composite(values, settings) == 56.7


def test_composite_is_null_below_the_minimum_number_of_kpis():
    settings = effective_settings(None)
    assert composite(kpis(enrolment_vs_target=0.88, data_entry_lag_days=6.5), settings) is None
    fewer = ScorecardSettings(kpis=settings.kpis, minimum_kpis=2)
    assert composite(kpis(enrolment_vs_target=0.88, data_entry_lag_days=6.5), fewer) == 58.0


def test_a_kpi_not_counted_stays_out_of_the_composite():
    config = ScorecardConfig(kpis={"screen_failure_rate": {"enabled": False}}, minimum_kpis=2)
    values = kpis(enrolment_vs_target=0.88, data_entry_lag_days=6.5, screen_failure_rate=0.0)
    assert composite(values, effective_settings(config)) == 58.0


def test_ranks_share_places_on_ties_and_skip_unscored():
    assert ranks({1: 50.0, 2: 70.0, 3: 50.0, 4: None, 5: 20.0}) == {
        1: 2,
        2: 1,
        3: 2,
        4: None,
        5: 4,
    }


@pytest.fixture
def scored(world):
    """ss_a1: Jan sfr 4/10, query rate 10, lag 6; Feb adds 10 screened, 100 pages, no lag.
    ss_a2: Jan sfr 4/20, query rate 5, lag 4. Three KPIs count (see THREE_KPIS)."""
    scorecard_config_update(
        study=world.study_a, actor=world.sponsor_lead_a, kpis=THREE_KPIS, minimum_kpis=2
    )
    a1, a2 = world.ss_a1, world.ss_a2
    snapshot(a1, JAN, screened=10, screen_failures=4, enrolled=6, crf_pages=100,
             queries_opened=10, data_entry_lag_days=6)  # fmt: skip
    snapshot(a1, FEB, screened=10, crf_pages=100)
    snapshot(a2, JAN, screened=20, screen_failures=4, enrolled=8, crf_pages=200,
             queries_opened=10, data_entry_lag_days=4)  # fmt: skip
    return world


def test_scorecard_scores_and_ranks_sites_from_hand_computed_points(scored):
    card = study_scorecard(study=scored.study_a, period=JAN)
    by_site = {row.study_site_id: row for row in card.rows}
    # ss_a1: sfr 0.4 → 50, query rate 10 → 71.43, lag 6 → 50 (weight 2): 321.43 / 4
    assert by_site[scored.ss_a1.id].score == 55.4
    assert by_site[scored.ss_a2.id].score == 100.0
    assert [row.study_site_id for row in card.rows] == [scored.ss_a2.id, scored.ss_a1.id]
    assert by_site[scored.ss_a1.id].rank == 2
    cell = by_site[scored.ss_a1.id].kpis["screen_failure_rate"]
    assert (cell.value, cell.n, cell.rag, cell.counted) == (0.4, 10, "amber", True)
    assert by_site[scored.ss_a1.id].kpis["enrolment_rate"].counted is False


def test_scorecard_is_cumulative_and_trends_month_by_month(scored):
    card = study_scorecard(study=scored.study_a, period=FEB, trend_months=3)
    row = next(row for row in card.rows if row.study_site_id == scored.ss_a1.id)
    # Feb: sfr 4/20 → 100, query rate 10/200 → 100, lag still 6 (Feb has none) → 50
    assert row.score == 75.0
    assert row.trend == [(datetime.date(2025, 12, 1), None), (JAN, 55.4), (FEB, 75.0)]


def test_the_trend_pass_gives_the_same_kpis_as_one_month_at_a_time(scored, world):
    RoleAssignment.objects.filter(study_site=world.ss_a1, role=StudyRole.CRA).update(
        start_date=datetime.date(2025, 6, 1)
    )
    # Acknowledgements in January (odd count: 3), February (even: 4 in all) and at March's end.
    acks = [(JAN, 9, 5.5), (JAN, 12, 2.25), (JAN, 20, 30), (FEB, 3, 7.125), (MAR, 31, 1)]
    for month, day, hours in acks:
        delivered = datetime.datetime.combine(month.replace(day=day), datetime.time(8), UTC)
        acknowledged(key_message_to(world, world.ss_a1), delivered, hours)
    acknowledged(key_message_to(world, world.ss_a2), datetime.datetime(2026, 2, 2, tzinfo=UTC), 3)
    series = study_kpis_series(study=world.study_a, periods=[JAN, FEB, MAR])
    for month in (JAN, FEB, MAR):
        assert series[month] == study_kpis(study=world.study_a, period=month), month
    assert series[FEB][world.ss_a1.id]["key_ack_hours"] == KpiValue(6.3125, 4)
    _, totals = study_kpis_series_with_totals(study=world.study_a, periods=[JAN, FEB])
    assert totals == study_totals(study=world.study_a, period=FEB)
    assert totals["key_ack_hours"] == KpiValue(5.5, 5)


def test_study_totals_are_attached_on_request(scored):
    card = study_scorecard(study=scored.study_a, period=JAN, with_totals=True)
    # screen failures 8 of 30 screened, study-wide (ratio of sums)
    assert card.totals["screen_failure_rate"].value == round(8 / 30, 4)
    assert card.totals["screen_failure_rate"].n == 30


def test_scorecard_response_has_the_documented_shape(scored):
    payload = study_scorecard(study=scored.study_a, period=JAN).as_api()
    assert payload["study"] == scored.study_a.id and payload["period"] == "2026-01"
    site = payload["sites"][0]
    assert set(site) >= {"study_site", "site", "site_name", "score", "rank", "kpis"}
    assert set(site["kpis"]) == set(DEFAULT_KPI_SETTINGS)
    assert set(site["kpis"]["query_rate"]) >= {"value", "rag"}


def test_a_site_user_gets_only_its_own_row_with_its_real_rank(scored):
    card = scorecard_for_user(
        scored.site_coord_1, scored.study_a.id, period=JAN, today=TODAY, with_totals=True
    )
    assert [row.study_site_id for row in card.rows] == [scored.ss_a1.id]
    assert card.rows[0].rank == 2
    assert card.totals is None, "study totals are built from other sites' numbers"


def test_cro_people_see_every_row_and_other_sponsors_get_404(scored):
    card = scorecard_for_user(scored.cro_pm, scored.study_a.id, period=JAN, today=TODAY)
    assert len(card.rows) == 2
    for outsider in (scored.sponsor_lead_b, scored.site_coord_3, scored.cro_b_pm, None):
        with pytest.raises(Http404):
            scorecard_for_user(outsider, scored.study_a.id, today=TODAY)


def test_scorecard_defaults_to_the_latest_month_with_snapshots(scored):
    assert scorecard_for_user(scored.sponsor_lead_a, scored.study_a.id, today=TODAY).period == FEB


def test_site_history_spans_the_sites_studies_the_viewer_can_see(scored):
    snapshot(scored.ss_b1, MAR, screened=12, screen_failures=3, crf_pages=80)
    own = site_history_for_user(scored.site_coord_1, scored.site_1, today=TODAY)
    assert {entry["study"].code for entry in own} == {"A-001", "B-001"}
    sponsor_view = site_history_for_user(scored.sponsor_lead_a, scored.site_1, today=TODAY)
    assert [entry["study"].code for entry in sponsor_view] == ["A-001"]
    entry = sponsor_view[0]
    assert entry["period"] == FEB and entry["row"].score == 75.0
    assert [score for _, score in entry["row"].trend][-2:] == [55.4, 75.0]


def test_settings_update_stores_only_changes_and_validates(world):
    config = scorecard_config_update(
        study=world.study_a,
        actor=world.sponsor_lead_a,
        kpis={"query_rate": {"weight": 3, "green": 8}, "sae_late": {"enabled": False}},
        minimum_kpis=4,
    )
    assert config.kpis == {"query_rate": {"weight": 3}, "sae_late": {"enabled": False}}
    settings = effective_settings(config)
    assert settings.kpis["query_rate"].weight == 3 and "sae_late" not in settings.counted
    bad = {
        "enrolment_vs_target": {"green": 0.7},  # higher is better: green must be above red
        "data_entry_lag_days": {"weight": 11},
        "nonsense": {"weight": 1},
    }
    with pytest.raises(ValidationError) as error:
        scorecard_config_update(
            study=world.study_a, actor=world.sponsor_lead_a, kpis=bad, minimum_kpis=0
        )
    assert set(error.value.message_dict) == {
        "enrolment_vs_target",
        "data_entry_lag_days",
        "nonsense",
        "minimum_kpis",
    }
    config.refresh_from_db()
    assert config.minimum_kpis == 4, "nothing is written when anything is invalid"


def test_only_the_sponsor_lead_changes_the_settings(world):
    for actor in (world.sponsor_viewer_a, world.cro_pm, world.sponsor_lead_b, world.site_coord_1):
        with pytest.raises(PermissionDenied):
            scorecard_config_update(study=world.study_a, actor=actor, kpis={}, minimum_kpis=3)


def test_settings_cannot_ask_for_more_kpis_than_count(world):
    with pytest.raises(ValidationError) as error:
        scorecard_config_update(
            study=world.study_a, actor=world.sponsor_lead_a, kpis=THREE_KPIS, minimum_kpis=4
        )
    assert "minimum_kpis" in error.value.message_dict


def test_top_quartile_is_recognised_and_announced_to_it_alone(scored):
    snapshot(scored.ss_a2, MAR, screened=5, crf_pages=50)
    recognitions = recognitions_award(study=scored.study_a, quarter=FEB)
    assert [(r.study_site_id, r.rank, r.sites_ranked) for r in recognitions] == [
        (scored.ss_a2.id, 1, 2)
    ]
    assert recognitions[0].quarter == JAN and float(recognitions[0].score) == 100.0
    # Re-running replaces unannounced recognitions rather than duplicating them.
    assert len(recognitions_award(study=scored.study_a, quarter=JAN)) == 1
    message = recognitions_announce(
        study=scored.study_a, quarter=JAN, actor=scored.sponsor_lead_a, now=timezone.now()
    )
    assert message.category == "recognition" and message.tier == "info"
    assert message.audience == {"study_sites": [scored.ss_a2.id]}
    assert Message.objects.filter(pk=message.pk).exists()
    assert Recognition.objects.get(study_site=scored.ss_a2).announced_at is not None
    with pytest.raises(ValidationError):
        recognitions_announce(study=scored.study_a, quarter=JAN, actor=scored.sponsor_lead_a)


def test_only_the_sponsor_lead_announces(scored):
    recognitions_award(study=scored.study_a, quarter=JAN)
    with pytest.raises(PermissionDenied):
        recognitions_announce(study=scored.study_a, quarter=JAN, actor=scored.cro_pm)


def test_sites_without_enough_data_are_not_recognised(world):
    snapshot(world.ss_a1, JAN, screened=2, crf_pages=10)
    assert recognitions_award(study=world.study_a, quarter=JAN) == []


def test_the_daily_task_awards_the_last_complete_quarter(scored):
    snapshot(scored.ss_a2, MAR, screened=5, crf_pages=50)
    assert recognitions_award_due(today=datetime.date(2026, 4, 2)) == 1
    recognition = Recognition.objects.get()
    assert (recognition.study_site_id, recognition.quarter) == (scored.ss_a2.id, JAN)
    assert recognitions_award_due(today=datetime.date(2026, 4, 3)) == 1, "idempotent"
    assert recognitions_award_due(today=datetime.date(2026, 7, 1)) == 0, "no snapshot in Q2"


def test_the_site_dashboard_shows_its_announced_recognitions_only(scored, client_as):
    recognitions_award(study=scored.study_a, quarter=JAN)
    assert Recognition.objects.get().study_site_id == scored.ss_a2.id
    coordinator = client_as(scored.site_coord_2)
    assert "Top quartile" not in coordinator.get("/").content.decode(), "not announced yet"
    recognitions_announce(study=scored.study_a, quarter=JAN, actor=scored.sponsor_lead_a)
    page = coordinator.get("/").content.decode()
    assert "Top quartile, Q1 2026" in page and "A-001" in page
    for other in (scored.site_coord_1, scored.sponsor_lead_a, scored.cro_pm):
        assert "Top quartile" not in client_as(other).get("/").content.decode()
