"""The KPI engine (``performance.kpis``): every formula against hand-computed figures.

Study A is given a 300-day planned period from 2025-01-01 (so 0.3 of it has elapsed at the
end of March 2025) and monthly snapshots for its two study-sites; figures below are worked
out by hand from those rows.
"""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from comms.models import Channel, Delivery, DeliveryKind, DeliveryState
from comms.services import message_deliver, message_draft_create, message_send
from performance.kpis import KPI_SLUGS, KpiValue, study_kpis, study_totals
from performance.models import COUNT_FIELDS, MetricSnapshot
from sites.models import StudySite
from sites.services import study_site_create
from tests.factories import member, site_org
from trialhub.models import RoleAssignment, Study, StudyRole

pytestmark = pytest.mark.django_db
JAN, FEB, MAR, APR = (datetime.date(2025, month, 1) for month in (1, 2, 3, 4))
HOUR = datetime.timedelta(hours=1)


def snapshot(study_site, period: datetime.date, **values) -> MetricSnapshot:
    numbers = dict.fromkeys(COUNT_FIELDS, 0)
    numbers.update(values)
    return MetricSnapshot.objects.create(study_site=study_site, period=period, **numbers)


@pytest.fixture
def kpi_world(world):
    Study.objects.filter(pk=world.study_a.pk).update(
        planned_start=datetime.date(2025, 1, 1), planned_end=datetime.date(2025, 10, 28)
    )
    world.study_a.refresh_from_db()
    StudySite.objects.filter(pk=world.ss_a1.pk).update(
        selected_on=datetime.date(2024, 10, 1),
        activated_on=datetime.date(2025, 1, 15),
        first_patient_in_on=datetime.date(2025, 2, 10),
    )
    StudySite.objects.filter(pk=world.ss_a2.pk).update(selected_on=datetime.date(2024, 11, 1))
    a1, a2 = world.ss_a1, world.ss_a2
    snapshot(
        a1,
        JAN,
        screened=6,
        screen_failures=2,
        enrolled=2,
        crf_pages=40,
        queries_opened=4,
        queries_resolved=2,
        query_resolution_days=6,
        data_entry_lag_days=2,
        deviations_major=1,
    )
    snapshot(
        a1,
        FEB,
        screened=6,
        screen_failures=1,
        enrolled=3,
        discontinued=1,
        crf_pages=60,
        queries_opened=5,
        queries_resolved=4,
        query_resolution_days=10,
        data_entry_lag_days=4,
        sae_late=1,
    )
    snapshot(
        a1,
        APR,
        screened=8,
        screen_failures=4,
        enrolled=2,
        crf_pages=100,
        queries_opened=1,
        data_entry_lag_days=1,
    )
    snapshot(
        a2,
        JAN,
        screened=4,
        screen_failures=3,
        enrolled=1,
        discontinued=1,
        crf_pages=10,
        queries_opened=5,
        queries_resolved=1,
        query_resolution_days=3,
    )
    return world


def values(kpis: dict[str, KpiValue]) -> dict[str, float | None]:
    return {slug: kpi.value for slug, kpi in kpis.items()}


def test_every_formula_for_a_site_cumulative_to_march(kpi_world):
    w = kpi_world
    kpis = study_kpis(study=w.study_a, period=MAR)

    assert set(kpis) == {w.ss_a1.id, w.ss_a2.id}
    a1 = kpis[w.ss_a1.id]
    assert list(a1) == list(KPI_SLUGS)
    assert a1["enrolment_vs_target"] == KpiValue(round(5 / (20 * 0.3), 4), 5)  # 0.8333
    assert a1["enrolment_rate"] == KpiValue(round(5 / 3, 4), 3)  # Jan, Feb, Mar
    assert a1["screen_failure_rate"] == KpiValue(0.25, 12)
    assert a1["early_discontinuation_rate"] == KpiValue(0.2, 5)
    assert a1["activation_cycle_days"] == KpiValue(106.0, 1)  # 1 Oct 2024 → 15 Jan 2025
    assert a1["days_to_first_patient"] == KpiValue(26.0, 1)  # 15 Jan → 10 Feb
    # Weighted by CRF pages: (2 × 40 + 4 × 60) / 100, not the plain mean (2 + 4) / 2 = 3.
    assert a1["data_entry_lag_days"] == KpiValue(3.2, 100)
    assert a1["query_rate"] == KpiValue(9.0, 100)  # 9 queries per 100 pages
    assert a1["query_resolution_days"] == KpiValue(round(16 / 6, 4), 6)
    assert a1["deviation_rate"] == KpiValue(0.2, 5)
    assert a1["sae_late"] == KpiValue(1.0, 2)
    assert a1["key_ack_hours"] == KpiValue(None, 0)


def test_too_little_data_is_null_never_zero(kpi_world):
    w = kpi_world
    a2 = study_kpis(study=w.study_a, period=MAR)[w.ss_a2.id]

    assert a2["screen_failure_rate"] == KpiValue(None, 4), "4 screened is below the default 10"
    assert a2["early_discontinuation_rate"] == KpiValue(None, 1), "1 enrolled is below 5"
    assert a2["data_entry_lag_days"] == KpiValue(None, 0), "no month has a median"
    assert a2["enrolment_rate"] == KpiValue(None, 0), "not activated"
    assert a2["activation_cycle_days"].value is None
    assert a2["days_to_first_patient"].value is None
    assert a2["query_rate"] == KpiValue(50.0, 10)

    lowered = study_kpis(
        study=w.study_a,
        period=MAR,
        minimum_samples={"screen_failure_rate": 4, "early_discontinuation_rate": 1},
    )[w.ss_a2.id]
    assert lowered["screen_failure_rate"] == KpiValue(0.75, 4)
    assert lowered["early_discontinuation_rate"] == KpiValue(1.0, 1)

    raised = study_kpis(study=w.study_a, period=MAR, minimum_samples={"query_rate": 11})
    assert raised[w.ss_a2.id]["query_rate"] == KpiValue(None, 10)


def test_a_site_without_snapshots_has_no_zero_rates(kpi_world):
    w = kpi_world
    MetricSnapshot.objects.filter(study_site=w.ss_a2).delete()
    a2 = study_kpis(study=w.study_a, period=MAR)[w.ss_a2.id]

    for slug in ("enrolment_vs_target", "screen_failure_rate", "query_rate", "sae_late"):
        assert a2[slug].value is None, slug


def test_periods_are_cumulative_and_ignore_later_months(kpi_world):
    w = kpi_world
    january = study_kpis(study=w.study_a, period=JAN)[w.ss_a1.id]
    assert january["screen_failure_rate"] == KpiValue(None, 6), "later months must not count"
    assert january["data_entry_lag_days"] == KpiValue(2.0, 40)
    assert january["activation_cycle_days"] == KpiValue(106.0, 1)
    assert january["days_to_first_patient"].value is None, "first patient in is in February"
    assert january["enrolment_vs_target"] == KpiValue(round(2 / (20 * 31 / 300), 4), 2)
    lowered = study_kpis(study=w.study_a, period=JAN, minimum_samples={"screen_failure_rate": 5})
    assert lowered[w.ss_a1.id]["screen_failure_rate"] == KpiValue(round(2 / 6, 4), 6)

    # A day inside the month means the month.
    assert study_kpis(study=w.study_a, period=datetime.date(2025, 3, 20)) == study_kpis(
        study=w.study_a, period=MAR
    )

    april = study_kpis(study=w.study_a, period=APR)[w.ss_a1.id]
    assert april["screen_failure_rate"] == KpiValue(0.35, 20)  # (2 + 1 + 4) / (6 + 6 + 8)
    assert april["data_entry_lag_days"] == KpiValue(2.1, 200)  # (2 × 40 + 4 × 60 + 1 × 100) / 200
    assert april["enrolment_rate"] == KpiValue(round(7 / 4, 4), 4)
    assert april["sae_late"] == KpiValue(1.0, 3)


def test_study_totals_are_ratios_of_sums_not_means_of_ratios(kpi_world):
    w = kpi_world
    totals = study_totals(study=w.study_a, period=MAR, minimum_samples={"screen_failure_rate": 1})
    per_site = study_kpis(study=w.study_a, period=MAR, minimum_samples={"screen_failure_rate": 1})
    site_rates = [per_site[ss.id]["screen_failure_rate"].value for ss in (w.ss_a1, w.ss_a2)]

    assert totals["screen_failure_rate"] == KpiValue(0.375, 16)  # (3 + 3) / (12 + 4)
    assert sum(site_rates) / 2 == 0.5, "the mean of ratios differs"
    assert totals["early_discontinuation_rate"] == KpiValue(round(2 / 6, 4), 6)
    assert totals["enrolment_vs_target"] == KpiValue(round(6 / (35 * 0.3), 4), 6)
    assert totals["enrolment_rate"] == KpiValue(round(5 / 3, 4), 3), "activated sites only"
    assert totals["query_rate"] == KpiValue(round(14 / 110 * 100, 4), 110)
    assert totals["query_resolution_days"] == KpiValue(round(19 / 7, 4), 7)
    assert totals["data_entry_lag_days"] == KpiValue(3.2, 100)
    assert totals["deviation_rate"] == KpiValue(round(1 / 6, 4), 6)
    assert totals["sae_late"] == KpiValue(1.0, 3)
    assert totals["activation_cycle_days"] == KpiValue(106.0, 1)


def key_message_to(world, study_site):
    actor = world.sponsor_lead_a
    draft = message_draft_create(
        actor=actor,
        study=world.study_a,
        category="protocol_amendment",
        subject="Amendment 2",
        body="Please acknowledge amendment 2.",
        audience={"study_sites": [study_site.id], "roles": ["site_coordinator"]},
    )
    now = timezone.now()
    message = message_send(message=draft, actor=actor, now=now)
    message_deliver(message_id=message.id, now=now)
    return message


def acknowledged(message, delivered_at: datetime.datetime, hours: float) -> None:
    updated = Delivery.objects.filter(
        message=message, channel=Channel.IN_APP, kind=DeliveryKind.MESSAGE
    ).update(
        state=DeliveryState.ACKNOWLEDGED,
        delivered_at=delivered_at,
        acknowledged_at=delivered_at + hours * HOUR,
    )
    assert updated == 1


def test_key_ack_hours_is_the_median_of_acknowledgements_before_the_period_end(kpi_world):
    w = kpi_world
    march = datetime.datetime(2025, 3, 10, 9, 0, tzinfo=datetime.UTC)
    acknowledged(key_message_to(w, w.ss_a1), march, 5)
    acknowledged(key_message_to(w, w.ss_a1), march, 9)
    acknowledged(key_message_to(w, w.ss_a1), datetime.datetime(2025, 4, 2, tzinfo=datetime.UTC), 20)
    key_message_to(w, w.ss_a2)  # delivered, never acknowledged

    in_march = study_kpis(study=w.study_a, period=MAR)
    assert in_march[w.ss_a1.id]["key_ack_hours"] == KpiValue(7.0, 2)
    assert in_march[w.ss_a2.id]["key_ack_hours"] == KpiValue(None, 0)
    assert study_kpis(study=w.study_a, period=APR)[w.ss_a1.id]["key_ack_hours"] == KpiValue(9.0, 3)
    assert study_totals(study=w.study_a, period=APR)["key_ack_hours"] == KpiValue(9.0, 3)


def test_cra_changes_count_distinct_cras_of_the_last_twelve_months(world):
    today = timezone.localdate()
    former = member(world.cro, "former_cra")
    history = [
        (world.cra_2, today - datetime.timedelta(days=200), today - datetime.timedelta(days=100)),
        (former, today - datetime.timedelta(days=500), today - datetime.timedelta(days=400)),
        (world.cra, today - datetime.timedelta(days=300), today - datetime.timedelta(days=250)),
    ]
    for user, start, end in history:
        RoleAssignment.objects.create(
            user=user,
            role=StudyRole.CRA,
            study=world.study_a,
            study_site=world.ss_a1,
            start_date=start,
            end_date=end,
        )

    kpis = study_kpis(study=world.study_a, period=today)
    assert kpis[world.ss_a1.id]["cra_changes_12m"] == KpiValue(2.0, 2), "cra and cra_2"
    assert kpis[world.ss_a2.id]["cra_changes_12m"] == KpiValue(0.0, 0)
    assert study_totals(study=world.study_a, period=today)["cra_changes_12m"] == KpiValue(1.0, 2)
    long_ago = today - datetime.timedelta(days=600)
    assert study_kpis(study=world.study_a, period=long_ago)[world.ss_a1.id]["cra_changes_12m"] == (
        KpiValue(0.0, 0)
    )


def grow(world, count: int) -> None:
    today = timezone.localdate()
    for index in range(count):
        _, site = site_org(f"Extra {index}", "DE", "Europe/Berlin")
        study_site = study_site_create(study=world.study_a, site=site, enrolment_target=10)
        for period in (JAN, FEB, MAR):
            snapshot(
                study_site,
                period,
                screened=10,
                screen_failures=2,
                enrolled=3,
                crf_pages=20,
                data_entry_lag_days=3,
            )
        RoleAssignment.objects.create(
            user=world.cra,
            role=StudyRole.CRA,
            study=world.study_a,
            study_site=study_site,
            start_date=today,
        )


@pytest.mark.parametrize("extra_sites", [0, 12])
def test_query_count_does_not_grow_with_sites(
    kpi_world, django_assert_max_num_queries, extra_sites
):
    grow(kpi_world, extra_sites)
    with django_assert_max_num_queries(5):
        kpis = study_kpis(study=kpi_world.study_a, period=MAR)
    with django_assert_max_num_queries(5):
        study_totals(study=kpi_world.study_a, period=MAR)
    assert len(kpis) == 2 + extra_sites
