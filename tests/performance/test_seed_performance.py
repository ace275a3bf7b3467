"""``manage.py seed_demo``'s performance data: twelve months of snapshots with strong,
average, struggling and too-little-data sites, Sponsor B's scorecard settings, the last
quarter's recognitions and a closed survey — and a second run that changes none of it."""

from __future__ import annotations

import datetime
import io

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import transaction
from django.db.models import Count, F, Max, Min, Sum
from django.utils import timezone

from performance.models import (
    MetricSnapshot,
    Recognition,
    ScorecardConfig,
    Survey,
    SurveyResponse,
)
from performance.scorecards import latest_period, study_scorecard
from performance.services.scorecards import quarter_start
from sites.models import StudySite
from trialhub.models import Study

ONC, CAR, NEU = "SPA-ONC-301", "SPA-CAR-202", "SPB-NEU-201"
CHARITE = "Charité Berlin"

pytestmark = pytest.mark.django_db


def _performance_rows() -> dict:
    """Every performance row as it is: counts and the values that could drift on a re-run."""
    models = apps.get_app_config("performance").get_models()
    return {
        "counts": {model._meta.label: model.objects.count() for model in models},
        "snapshots": list(
            MetricSnapshot.objects.order_by("id").values_list("id", "updated_at", "enrolled")
        ),
        "recognitions": list(
            Recognition.objects.order_by("id").values_list("id", "awarded_at", "score")
        ),
        "configs": list(ScorecardConfig.objects.values_list("id", "updated_at", "kpis")),
    }


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker):
    """Seed twice, once for the whole module, inside a transaction rolled back at the end."""
    with django_db_blocker.unblock(), transaction.atomic():
        call_command("seed_demo", stdout=io.StringIO())
        first = _performance_rows()
        call_command("seed_demo", stdout=io.StringIO())
        yield {"first": first, "second": _performance_rows(), "today": timezone.localdate()}
        transaction.set_rollback(True)


def _last_twelve_months(today: datetime.date) -> list[datetime.date]:
    index = today.year * 12 + today.month - 1
    return [
        datetime.date((index - back) // 12, (index - back) % 12 + 1, 1) for back in range(12, 0, -1)
    ]


def _study_site(code: str, site_name: str) -> StudySite:
    return StudySite.objects.get(study__code=code, site__name=site_name)


def _scores(code: str) -> dict[str, float | None]:
    study = Study.objects.get(code=code)
    card = study_scorecard(study=study, period=latest_period(study))
    return {row.site_name: row.score for row in card.rows}


def test_second_run_changes_no_performance_row(seeded):
    assert seeded["first"] == seeded["second"]
    assert seeded["first"]["counts"]["performance.MetricSnapshot"] > 100


def test_an_enrolling_site_has_the_twelve_complete_months_before_today(seeded):
    study_site = _study_site(ONC, CHARITE)
    periods = list(study_site.metric_snapshots.values_list("period", flat=True))
    assert periods == _last_twelve_months(seeded["today"])


def test_every_snapshot_is_a_past_month_within_the_sites_active_months(seeded):
    months = _last_twelve_months(seeded["today"])
    for study_site in StudySite.objects.annotate(
        first=Min("metric_snapshots__period"), last=Max("metric_snapshots__period")
    ):
        if study_site.activated_on is None:
            assert study_site.first is None, study_site
            continue
        if study_site.first is None:
            continue
        assert study_site.first >= max(months[0], study_site.activated_on.replace(day=1))
        assert study_site.last <= months[-1]
        if study_site.closed_on is not None:
            assert study_site.last <= study_site.closed_on.replace(day=1)


def test_nobody_is_enrolled_before_the_first_patient_or_after_the_last(seeded):
    for study_site in StudySite.objects.filter(metric_snapshots__isnull=False).distinct():
        snapshots = study_site.metric_snapshots.filter(enrolled__gt=0)
        if study_site.first_patient_in_on is None:
            assert not snapshots.exists(), study_site
            continue
        assert snapshots.aggregate(first=Min("period"))["first"] >= (
            study_site.first_patient_in_on.replace(day=1)
        )
        if study_site.last_patient_in_on is not None:
            assert snapshots.aggregate(last=Max("period"))["last"] <= (
                study_site.last_patient_in_on.replace(day=1)
            )


def test_counts_are_consistent_and_enrolment_stays_within_target(seeded):
    assert not MetricSnapshot.objects.filter(screen_failures__gt=F("screened")).exists()
    assert not MetricSnapshot.objects.filter(discontinued__gt=F("enrolled")).exists()
    for study_site in StudySite.objects.filter(metric_snapshots__isnull=False).distinct():
        opened = resolved = 0
        for month_opened, month_resolved in study_site.metric_snapshots.values_list(
            "queries_opened", "queries_resolved"
        ):
            opened, resolved = opened + month_opened, resolved + month_resolved
            assert resolved <= opened, study_site
        enrolled = study_site.metric_snapshots.aggregate(total=Sum("enrolled"))["total"]
        assert enrolled <= study_site.enrolment_target, study_site


@pytest.mark.parametrize("code", [ONC, CAR, NEU])
def test_each_study_scorecard_spreads_from_strong_to_struggling_with_an_unscored_site(seeded, code):
    scores = _scores(code)
    scored = [score for score in scores.values() if score is not None]
    assert max(scored) >= 70
    assert min(scored) <= 40
    assert None in scores.values()


def test_site_coords_charite_leads_both_sponsors_studies(seeded):
    for code in (ONC, NEU):
        scores = _scores(code)
        assert scores[CHARITE] == max(s for s in scores.values() if s is not None)


def test_bordeaux_has_too_little_data_for_a_score(seeded):
    study = Study.objects.get(code=NEU)
    card = study_scorecard(study=study, period=latest_period(study))
    bordeaux = next(row for row in card.rows if row.site_name.startswith("CHU de Bordeaux"))
    assert bordeaux.score is None and bordeaux.rank is None
    assert _study_site(NEU, bordeaux.site_name).metric_snapshots.count() == 2
    for slug in ("enrolment_vs_target", "screen_failure_rate", "query_resolution_days"):
        assert bordeaux.kpis[slug].value is None, slug


def test_sponsor_b_configured_its_scorecard_and_sponsor_a_keeps_the_defaults(seeded):
    config = ScorecardConfig.objects.get(study__code=NEU)
    assert config.updated_by.username == "sponsor_b"
    assert config.minimum_kpis == 5
    assert config.kpis["query_rate"] == {"enabled": False}
    assert config.kpis["enrolment_vs_target"]["weight"] == 5
    assert not ScorecardConfig.objects.filter(study__code__in=(ONC, CAR)).exists()


def test_last_quarter_recognised_site_coords_site(seeded):
    current = quarter_start(seeded["today"])
    quarter = (
        datetime.date(current.year - 1, 10, 1)
        if current.month == 1
        else datetime.date(current.year, current.month - 3, 1)
    )
    recognised = Recognition.objects.filter(quarter=quarter)
    assert set(recognised.values_list("study_site__study__code", flat=True)) == {ONC, CAR, NEU}
    charite = recognised.filter(
        study_site__site__organization__memberships__user__username="site_coord"
    )
    assert set(charite.values_list("study_site__study__code", flat=True)) == {ONC, NEU}
    assert charite.filter(rank=1).count() == 2


def test_sponsor_b_ran_a_closed_survey_answered_by_five_site_people(seeded):
    survey = Survey.objects.get(study__code=NEU)
    assert survey.opened_by.username == "sponsor_b"
    assert survey.closed_at is not None and survey.closed_at < timezone.now()
    answers = SurveyResponse.objects.filter(survey=survey)
    assert answers.count() == 5
    assert all(survey.opened_at < a.submitted_at < survey.closed_at for a in answers)
    assert answers.values("cro__name").annotate(n=Count("id")).count() == 2  # both CROs
    scores = set(answers.values_list("cra_responsiveness", flat=True))
    assert min(scores) <= 2 and max(scores) == 5
    assert answers.exclude(comment="").count() == 5


def test_recognitions_were_announced_to_the_recognised_sites_digests(seeded):
    from comms.models import Delivery, DeliveryKind, Message

    announcements = Message.objects.filter(dedup_key__startswith="recognition-")
    assert announcements.count() == 3, "one per study"
    assert not Recognition.objects.filter(announced_at__isnull=True).exists()
    charite_items = Delivery.objects.filter(
        message__in=announcements,
        recipient__username="site_coord",
        kind=DeliveryKind.MESSAGE,
        channel="in_app",
    )
    assert charite_items.count() == 2 and all(item.digest_id for item in charite_items), (
        "Charité hears of its two recognitions in its digests"
    )


def test_the_practice_library_has_published_and_proposed_notes(seeded):
    from comms.models import Message
    from performance.models import PracticeNote, PracticeStatus

    notes = PracticeNote.objects.order_by("title")
    assert notes.count() == 3
    assert notes.filter(status=PracticeStatus.PUBLISHED).count() == 2
    proposed = notes.get(status=PracticeStatus.PROPOSED)
    assert proposed.author.username == "site_coord"
    assert proposed.sponsor.name.startswith("Sponsor B")
    assert (
        Message.objects.filter(category="newsletter", subject__startswith="Best practice").count()
        == 3
    )
