"""The demo's performance data (PRODUCT.md "Demo data" and "Performance"): twelve months of
metric snapshots, Sponsor B's scorecard settings, the last quarter's recognitions (announced
by the sponsor leads early this quarter), a closed site-feedback survey and a few best-practice
notes — all through the ``performance`` services.

The story, per study (profiles below; the numbers follow from them and the milestones):

- SPA-ONC-301: Charité (``site_coord``) is the strong site and Lyon (``site_coord_2``) a
  good one — both recognised; Heidelberg, Vall d'Hebron (EGFR screen failures) and the
  closed Gliwice are average, Gustave Roussy average with its query backlog; 12 de Octubre
  struggles. Warsaw is still in start-up: no numbers.
- SPA-CAR-202: Munich is strong, 12 de Octubre good, Lyon average; Warsaw struggles (three
  CRAs in a year) and Pitié-Salpêtrière, activated months ago, has screened but randomised
  no one. La Fe and Kraków are not activated: no numbers.
- SPB-NEU-201 (Sponsor B's own scorecard settings): Kraków is ahead of target and Charité
  (``site_coord``) strong — both recognised; Hamburg good, Pitié average, Vall d'Hebron
  struggles; Bordeaux's feed began two months ago with almost nothing screened, too little
  data for a score. La Fe is in start-up.

The snapshots are uploaded by the lead CRO's project manager (as an EDC/CTMS feed would)
with ``metric_snapshots_upsert``, which leaves equal rows untouched; every month is a
calendar month of the twelve ending with the last complete one (no month still counting).
Enrolment is zero before a site's first patient and after its last; a site sends nothing
before its activation month nor after its closing month. Randomness is seeded per study-site:
every load tells the same story for the same day. The settings, recognitions and survey are
each made once (skipped when they exist), so a second run changes nothing.
"""

from __future__ import annotations

import datetime
import random
from dataclasses import dataclass, replace

from django.contrib.auth import get_user_model
from django.utils import timezone

from comms.models import Channel, Delivery, DeliveryKind, DeliveryState
from comms.services import digest_emails_deliver, digests_build
from performance.kpis import elapsed_fraction
from performance.models import COUNT_FIELDS, PracticeNote, Recognition, ScorecardConfig, Survey
from performance.services.metrics import metric_snapshots_upsert
from performance.services.practices import practice_note_create, practice_note_publish
from performance.services.scorecards import (
    quarter_start,
    recognitions_announce,
    recognitions_award,
    scorecard_config_update,
)
from performance.services.surveys import survey_close, survey_open, survey_response_submit
from sites.models import StudySite
from trialhub.management.commands import _demo_data as demo
from trialhub.models import Study

User = get_user_model()
ONC, CAR, NEU = demo.ONC, demo.CAR, demo.NEU
MONTHS = 12
UPLOADER = "cro_pm"  # Meridian's project manager runs the metrics feed on all three studies


@dataclass(frozen=True)
class Profile:
    """How a study-site performs; each number is what its KPI should read at the end."""

    pace: float  # enrolled ÷ the pro-rata target (enrolment_vs_target)
    screen_failure: float  # share of the screened failing screening
    discontinued: float  # share of the enrolled leaving early
    lag: float  # median days from visit to data entry
    query_rate: float  # queries per 100 CRF pages
    resolved_share: float  # share of the open queries answered each month
    resolution_days: float  # mean days to answer a query
    deviations: float  # major protocol deviations per enrolled patient
    sae_late: int = 0  # serious adverse events reported past 24 h
    visit_every: int = 2  # months between monitoring visits


STRONG = Profile(1.25, 0.2, 0.04, 3.0, 5.0, 0.9, 4.0, 0.04)
GOOD = Profile(1.05, 0.28, 0.08, 4.4, 7.0, 0.85, 6.0, 0.08)
AVERAGE = Profile(0.87, 0.36, 0.12, 5.9, 11.0, 0.75, 9.5, 0.16)
STRUGGLING = Profile(0.6, 0.55, 0.22, 9.0, 18.0, 0.55, 16.0, 0.35, sae_late=1, visit_every=1)
SPARSE = None  # the feed began two months ago: see ``_sparse_rows``

# (study, site key) → profile; study-sites not listed (not activated) send nothing.
PROFILES: dict[tuple[str, str], Profile | None] = {
    (ONC, "charite"): STRONG,
    (ONC, "lyon"): GOOD,
    (ONC, "heidelberg"): AVERAGE,
    # The query backlog of the status updates: many queries, answered slowly.
    (ONC, "roussy"): replace(AVERAGE, query_rate=14.0, resolved_share=0.6, resolution_days=13.0),
    # EGFR testing turnaround: many screen failures at the Spanish sites.
    (ONC, "vhebron"): replace(AVERAGE, screen_failure=0.46),
    (ONC, "doce"): STRUGGLING,
    (ONC, "gliwice"): AVERAGE,
    (CAR, "munich"): STRONG,
    (CAR, "doce"): GOOD,
    (CAR, "lyon"): AVERAGE,
    (CAR, "warsaw"): STRUGGLING,
    (CAR, "pitie"): AVERAGE,  # activated, no first patient yet: screening only
    (NEU, "krakow"): replace(STRONG, pace=1.4),
    (NEU, "charite"): STRONG,
    (NEU, "hamburg"): AVERAGE,
    (NEU, "pitie"): AVERAGE,
    (NEU, "vhebron"): STRUGGLING,
    (NEU, "bordeaux"): SPARSE,
}

# Sponsor B's lead weighs enrolment more, leaves the query rate out (its CRO's data
# management reports queries differently), judges enrolment pace from the third patient and
# late SAE reports from three months of reports, and ranks a site on five measured KPIs.
NEU_SCORECARD = {
    "kpis": {
        "enrolment_vs_target": {"weight": 5, "minimum_samples": 3},
        "enrolment_rate": {"weight": 3},
        "query_rate": {"enabled": False},
        "sae_late": {"minimum_samples": 3},
    },
    "minimum_kpis": 5,
}

SURVEY_TITLE = "Working with the study team: site feedback"
# (username, clarity, support, CRA responsiveness, comment), answered on consecutive days.
SURVEY_ANSWERS = (
    (
        "piotr.zielinski",
        5,
        5,
        5,
        "Ciarán is always reachable and the IRT training was excellent.",
    ),
    (
        "site_coord",
        4,
        4,
        5,
        "Our CRA answers the same day. Too many stand-alone reminders, though: "
        "a daily digest would do.",
    ),
    (
        "sabine.kruger",
        4,
        3,
        4,
        "The protocol training was clear. Safety letters could say up front what we must do.",
    ),
    (
        "elodie.bernard",
        3,
        3,
        4,
        "Helpful monitor, but reminders about the same patient arrive several times a day.",
    ),
    (
        "marta.garcia",
        2,
        3,
        2,
        "Our CRA changed twice this year; every handover cost us weeks of explaining our "
        "pre-screening again.",
    ),
)


def seed_performance(*, now: datetime.datetime) -> None:
    """Load the demo's performance data up to ``now`` (see the module docstring)."""
    today = timezone.localdate(now)
    months = _months(today)
    _snapshots(months, now)
    _scorecard_config(today)
    quarter = _previous_quarter(today)
    # Each sponsor lead announced last quarter's recognitions this quarter, within the
    # message history's six weeks.
    early_in_quarter = _morning(quarter_start(today) + datetime.timedelta(days=2), 10)
    announced_at = min(max(early_in_quarter, now - datetime.timedelta(days=21)), now)
    for study in Study.objects.filter(code__in=(ONC, CAR, NEU)).order_by("code"):
        if not Recognition.objects.filter(study_site__study=study, quarter=quarter).exists():
            recognitions_award(study=study, quarter=quarter)
        pending = Recognition.objects.filter(
            study_site__study=study, quarter=quarter, announced_at__isnull=True
        )
        if pending.exists():
            lead = "sponsor_b" if study.code == NEU else "sponsor_a"
            recognitions_announce(
                study=study,
                quarter=quarter,
                actor=User.objects.get(username=lead),
                now=announced_at,
            )
    _survey(today)
    _practice_notes(today)
    _deliver_due_digests(now)


def _deliver_due_digests(now: datetime.datetime) -> None:
    """The announcements and newsletters above are info-tier digest lines: build the digests
    that fell due since (oldest first, as the sweep would have) and send their emails."""
    due_times = (
        Delivery.objects.filter(state=DeliveryState.PENDING, due_at__lte=now)
        .order_by("due_at")
        .values_list("due_at", flat=True)
        .distinct()
    )
    for at in list(due_times):
        digests_build(now=at)
        emails = Delivery.objects.filter(
            kind=DeliveryKind.DIGEST, channel=Channel.EMAIL, state=DeliveryState.PENDING
        ).values_list("digest_id", flat=True)
        digest_emails_deliver(digest_ids=list(emails), now=at)


PRACTICE_NOTES = (
    # (author, sponsor, title, body, therapeutic area, tags, published to)
    (
        "sponsor_a",
        "sponsor_a",
        "Pre-screen EGFR status before the screening visit",
        "Ask the pathology lab for the EGFR result of archived tissue as soon as a candidate is "
        "identified; sites that did so halved their screen failures on SPA-ONC-301.",
        "Oncology",
        ["screening", "pre-screening"],
        ["SPA-ONC-301"],
    ),
    (
        "cro_pm",
        "sponsor_a",
        "A 48-hour data-entry rule after each visit",
        "Block 30 minutes in the coordinator's calendar after every visit for EDC entry; the "
        "monitoring visit then reviews data instead of chasing it.",
        "",
        ["data-entry", "edc"],
        ["SPA-ONC-301", "SPA-CAR-202"],
    ),
    (
        "site_coord",
        "sponsor_b",
        "One CRA hand-over meeting with the whole site team",
        "When the CRA changes, hold one meeting with the outgoing and incoming CRA, the PI and "
        "the coordinators; it saved our site weeks of re-explaining local processes.",
        "",
        ["cra", "continuity"],
        [],
    ),
)


def _practice_notes(today: datetime.date) -> None:
    """Sponsor A's library has two published notes (its own and the CRO's); Charité, a
    recognised site, proposed one to Sponsor B that is waiting for publication."""
    if PracticeNote.objects.exists():
        return
    written = _morning(today - datetime.timedelta(days=30))
    for author, sponsor, title, body, area, tags, studies in PRACTICE_NOTES:
        note = practice_note_create(
            actor=User.objects.get(username=author),
            sponsor=User.objects.get(username=sponsor).membership.organization,
            title=title,
            body=body,
            therapeutic_area=area,
            tags=tags,
            now=written,
        )
        if studies:
            practice_note_publish(
                note=note,
                actor=User.objects.get(username=sponsor),
                studies=Study.objects.filter(code__in=studies),
                now=written + datetime.timedelta(days=1),
            )


def _months(today: datetime.date) -> list[datetime.date]:
    """The first days of the twelve calendar months before ``today``'s month."""
    index = today.year * 12 + today.month - 1
    return [
        datetime.date((index - back) // 12, (index - back) % 12 + 1, 1)
        for back in range(MONTHS, 0, -1)
    ]


def _month_of(day: datetime.date) -> datetime.date:
    return day.replace(day=1)


def _next_month(month: datetime.date) -> datetime.date:
    return (month + datetime.timedelta(days=32)).replace(day=1)


def _previous_quarter(today: datetime.date) -> datetime.date:
    current = quarter_start(today)
    return datetime.date(current.year - (current.month == 1), (current.month - 4) % 12 + 1, 1)


def _morning(day: datetime.date, hour: int = 9) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(hour), tzinfo=datetime.UTC)


def _snapshots(months: list[datetime.date], now: datetime.datetime) -> None:
    numbers = {
        (code, key): number for code, rows in demo.STUDY_SITES.items() for key, number, *_ in rows
    }
    study_sites = {
        (study_site.study.code, study_site.site_number): study_site
        for study_site in StudySite.objects.filter(study__code__in=(ONC, CAR, NEU)).select_related(
            "study"
        )
    }
    rows = []
    for (code, key), profile in PROFILES.items():
        study_site = study_sites[(code, numbers[(code, key)])]
        if study_site.activated_on is None:
            continue
        rng = random.Random(f"{code}/{study_site.site_number}")  # noqa: S311 - demo data
        if profile is SPARSE:
            rows += _sparse_rows(study_site, months)
        else:
            rows += _site_rows(study_site, profile, months, rng)
    metric_snapshots_upsert(actor=User.objects.get(username=UPLOADER), rows=rows, now=now)


def _spread(total: int, weights: list[float]) -> list[int]:
    """``total`` split in whole numbers in proportion to ``weights`` (largest remainders)."""
    if total <= 0 or not weights or sum(weights) <= 0:
        return [0] * len(weights)
    shares = [total * weight / sum(weights) for weight in weights]
    parts = [int(share) for share in shares]
    by_remainder = sorted(range(len(shares)), key=lambda i: (parts[i] - shares[i], i))
    for i in by_remainder[: total - sum(parts)]:
        parts[i] += 1
    return parts


def _site_rows(
    study_site: StudySite, profile: Profile, months: list[datetime.date], rng: random.Random
) -> list[dict]:
    first = max(months[0], _month_of(study_site.activated_on))
    last = months[-1]
    if study_site.closed_on is not None:
        last = min(last, _month_of(study_site.closed_on))
    site_months = [month for month in months if first <= month <= last]
    fpi, lpi = study_site.first_patient_in_on, study_site.last_patient_in_on
    enrolling = [
        month
        for month in site_months
        if fpi is not None and _month_of(fpi) <= month and (lpi is None or month <= _month_of(lpi))
    ]

    # Enrolment: the profile's pace against the pro-rata target when the site last enrolled,
    # a partial first month, at least one patient in the first patient's month.
    enrolled = [0] * len(site_months)
    if enrolling:
        fraction = elapsed_fraction(study_site.study, _next_month(enrolling[-1])) or 0
        total = max(1, round(study_site.enrolment_target * fraction * profile.pace))
        weights = [
            (0.5 if month == _month_of(fpi) else 1.0) * rng.uniform(0.7, 1.3) for month in enrolling
        ]
        start = site_months.index(enrolling[0])
        for offset, count in enumerate(_spread(total, weights)):
            enrolled[start + offset] = count
        if enrolling[0] == _month_of(fpi) and enrolled[start] == 0:
            enrolled[start] += 1
            enrolled[enrolled.index(max(enrolled))] -= 1

    # Early discontinuations: one a month from the end backwards, in months that enrolled.
    discontinued = [0] * len(site_months)
    leaving = round(sum(enrolled) * profile.discontinued)
    for i in reversed(range(len(site_months))):
        if leaving == 0:
            break
        if i > 0 and enrolled[i] > 0:
            discontinued[i], leaving = 1, leaving - 1

    failure_odds = profile.screen_failure / (1 - profile.screen_failure)
    on_study = []
    patients = 0
    for i in range(len(site_months)):
        on_study.append(patients)
        patients += enrolled[i] - discontinued[i]
    major = _spread(round(sum(enrolled) * profile.deviations), [float(p) for p in on_study])
    minor = _spread(round(sum(enrolled) * profile.deviations * 3), [float(p) for p in on_study])
    sae_late = [0] * len(site_months)
    if profile.sae_late and len(site_months) > 3:
        sae_late[-3] = profile.sae_late

    rows = []
    failures_so_far = enrolled_so_far = 0
    opened_so_far = resolved_so_far = 0
    for i, month in enumerate(site_months):
        if fpi is None or month < _month_of(fpi):
            # Screening before the first patient: most fail, one may still be in screening.
            screened = rng.randint(1, 3)
            failures = screened - (1 if screened > 1 else 0)
        else:
            enrolled_so_far += enrolled[i]
            due = round(enrolled_so_far * failure_odds) - failures_so_far
            failures = max(0, due + rng.choice((-1, 0, 0, 1)))
            screened = enrolled[i] + failures
        failures_so_far += failures
        pages = 6 * screened + 10 * enrolled[i] + 14 * on_study[i]
        opened = round(pages * profile.query_rate / 100 * rng.uniform(0.8, 1.2))
        opened_so_far += opened
        resolved = round((opened_so_far - resolved_so_far) * profile.resolved_share)
        resolved_so_far += resolved
        lag = None
        if pages:
            lag = f"{max(0.5, profile.lag + rng.uniform(-0.7, 0.7)):.1f}"
        rows.append(
            {
                "study_site": study_site.id,
                "period": f"{month:%Y-%m}",
                "screened": screened,
                "screen_failures": failures,
                "enrolled": enrolled[i],
                "discontinued": discontinued[i],
                "crf_pages": pages,
                "queries_opened": opened,
                "queries_resolved": resolved,
                "query_resolution_days": round(
                    resolved * profile.resolution_days * rng.uniform(0.85, 1.15)
                ),
                "data_entry_lag_days": lag,
                "deviations_major": major[i],
                "deviations_minor": minor[i],
                "sae_late": sae_late[i],
                "monitoring_visits": 1 if i % profile.visit_every == 0 else 0,
            }
        )
    return rows


def _sparse_rows(study_site: StudySite, months: list[datetime.date]) -> list[dict]:
    """Bordeaux: nobody screened in the feed's first month, two in the second (one failed,
    one still in screening), after the recovery plan's monitoring visit."""
    empty = dict.fromkeys(COUNT_FIELDS, 0)
    quiet = {**empty, "data_entry_lag_days": None}
    restart = {
        **empty,
        "screened": 2,
        "screen_failures": 1,
        "crf_pages": 12,
        "queries_opened": 1,
        "data_entry_lag_days": "6.0",
        "monitoring_visits": 1,
    }
    return [
        {"study_site": study_site.id, "period": f"{month:%Y-%m}", **values}
        for month, values in zip(months[-2:], (quiet, restart), strict=True)
    ]


def _scorecard_config(today: datetime.date) -> None:
    """Sponsor B's lead set the NEU scorecard when its sites began sending numbers; the
    Sponsor A studies keep the defaults."""
    study = Study.objects.get(code=NEU)
    if ScorecardConfig.objects.filter(study=study).exists():
        return
    scorecard_config_update(
        study=study,
        actor=User.objects.get(username="sponsor_b"),
        now=_morning(today - datetime.timedelta(days=150)),
        **NEU_SCORECARD,
    )


def _survey(today: datetime.date) -> None:
    """Sponsor B's lead asked the NEU sites how the study team works for them seven weeks
    ago, before the quarterly feedback session; five answered within two weeks and the
    survey was closed the day after its last day."""
    study = Study.objects.get(code=NEU)
    if Survey.objects.filter(study=study, title=SURVEY_TITLE).exists():
        return
    lead = User.objects.get(username="sponsor_b")
    opened_on = today - datetime.timedelta(days=49)
    survey = survey_open(
        study=study,
        actor=lead,
        title=SURVEY_TITLE,
        closes_on=opened_on + datetime.timedelta(days=14),
        now=_morning(opened_on),
    )
    for day, (username, clarity, support, responsiveness, comment) in enumerate(
        SURVEY_ANSWERS, start=1
    ):
        survey_response_submit(
            survey=survey,
            actor=User.objects.get(username=username),
            communication_clarity=clarity,
            support=support,
            cra_responsiveness=responsiveness,
            comment=comment,
            now=_morning(opened_on + datetime.timedelta(days=2 * day), hour=14),
        )
    survey_close(survey=survey, actor=lead, now=_morning(opened_on + datetime.timedelta(days=15)))
