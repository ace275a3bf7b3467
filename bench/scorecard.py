"""Scorecard: one study of 1,000 study-sites x 24 months of snapshots, the full scorecard (13
KPIs, RAG, composite, rank) by ``performance.scorecards.study_scorecard``, against a naive
Python loop over ORM objects computing the same numbers, in the same run. Targets (TrialHub
issue 5): <= 300 ms, and >= 10x faster than the naive loop.

Population (bulk-inserted, fixed seed, fixed dates so the figures do not depend on the day):
one sponsor, one study (planned 2024-09-01 to 2027-08-31), 1,000 site organisations, sites and
study-sites with varied milestones (some never activated, some activated or enrolling only
after the scored month, first patient missing or late), 24 monthly snapshots each (2024-11 to
2026-10, 24,000 rows; nothing screened before activation, about 10% of the months without a
data-entry lag, 5% "tiny" sites with too little data for the minimum samples), CRA
assignments with turnover (most sites one CRA, some two or three within the 12 months, some an
older one outside them, a few none), and 40 messages (24 key, 8 critical, 8 routine) to every
site's coordinator, in-app and by email, most key/critical in-app ones acknowledged after a
site-dependent delay (some sites never), so ``key_ack_hours`` has data to read.

Measured, with ``DEBUG = False``:

* fast path: ``study_scorecard(study=, period=2026-10)``, ``BENCH_RUNS`` timed runs (default
  30) after ``BENCH_WARMUPS`` warm-ups (default 3): median, p95 and min, queries of one run;
* the same with ``trend_months=12`` (the scorecard page's chart data), ``BENCH_TREND_RUNS``
  runs (default 9), informational;
* naive: for each ``StudySite`` its ``MetricSnapshot`` objects (``study_site.metric_snapshots
  .all()``), its key/critical in-app deliveries and its CRA assignments, one query each per
  site, every KPI computed in Python from the module docstring of ``performance.kpis``
  (written independently, none of its helpers), then points/composite/rank in Python (with
  ``performance.scorecards.rag``/``points``); and the same loop with ``prefetch_related``
  (four queries, all ORM objects). ``BENCH_NAIVE_RUNS`` runs each (default 3) after one
  warm-up. The speed-up is judged against each of the two.

The timed runs are interleaved in ``BENCH_NAIVE_RUNS`` rounds (a share of the fast runs, one
run of each naive loop, a share of the trend runs), so a busy machine weighs on both sides
alike. One more run of each path with the queries captured splits its time into SQL (Django's
query clock) and Python.

Before timing, the naive numbers are compared with ``study_scorecard``'s for every study-site
and KPI (value within 1e-6 after both round to 4 decimals, n, RAG; score and rank exactly) at
the scored month, 12 months earlier and the month before the first snapshot (no data); any
difference is listed and the script exits 1.

``BENCH_PROFILE=1`` adds a cProfile of one fast-path run and ``EXPLAIN ANALYZE`` of its
snapshot query. The database is ``benchscdb`` (``BENCH_SCORECARD_DATABASE``) on the server of
``DATABASE_URL``; it is kept between runs and the population is reused when the study
``BENCH-SC-1000`` of this fixture version is complete, else the database is dropped and built
again (about a minute). ``BENCH_SCORECARD_DROP=1`` drops it at the end. Redis db
``BENCH_REDIS_DB`` (default here 10) for the cache; nothing is queued.
``python bench/scorecard.py`` from the repository root (or ``make bench``).
"""

from __future__ import annotations

import contextlib
import cProfile
import datetime
import io
import os
import pstats
import random
import statistics
import sys
import time
from bisect import bisect_right
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

os.environ.setdefault("BENCH_REDIS_DB", "10")

from _common import (  # noqa: E402 - BENCH_REDIS_DB is read when _common is imported
    Row,
    bench_environment,
    load_average,
    median,
    percentile,
    print_table,
    verdict,
)

DATABASE = os.environ.get("BENCH_SCORECARD_DATABASE", "benchscdb")
STUDY_CODE = "BENCH-SC-1000"
FIXTURE_VERSION = "scorecard fixture v1"  # change when the population changes: forces a rebuild
SITES, MONTHS = 1000, 24
FIRST_MONTH = datetime.date(2024, 11, 1)
PERIOD = datetime.date(2026, 10, 1)  # the scored month: the last of the 24
PLANNED_START, PLANNED_END = datetime.date(2024, 9, 1), datetime.date(2027, 8, 31)
CRA_POOL = 200
RUNS = int(os.environ.get("BENCH_RUNS", "30"))
WARMUPS = int(os.environ.get("BENCH_WARMUPS", "3"))
NAIVE_RUNS = int(os.environ.get("BENCH_NAIVE_RUNS", "3"))
TREND_RUNS = int(os.environ.get("BENCH_TREND_RUNS", "9"))
TARGET_MS, TARGET_RATIO = 300.0, 10.0
TOLERANCE = 1e-6
SEED = 20261126


# --- the database ---------------------------------------------------------------------------


def _server_connection(dbname: str):
    import psycopg2
    from _common import _database_server_url

    parts = urlsplit(_database_server_url())
    return psycopg2.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=parts.username,
        password=parts.password,
        dbname=dbname,
        **dict(parse_qsl(parts.query)),
    )


def _population_complete() -> bool | None:
    """True: the database holds this fixture's complete population; False: it exists without
    it; None: no database."""
    import psycopg2

    connection = _server_connection("postgres")
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE])
            if cursor.fetchone() is None:
                return None
    finally:
        connection.close()
    connection = _server_connection(DATABASE)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT (SELECT count(*) FROM performance_metricsnapshot m"
                "        JOIN sites_studysite s ON s.id = m.study_site_id"
                "        WHERE s.study_id = study.id)"
                " FROM trialhub_study study WHERE code = %s AND title = %s",
                [STUDY_CODE, FIXTURE_VERSION],
            )
            row = cursor.fetchone()
            return row is not None and row[0] == SITES * MONTHS
    except psycopg2.Error:
        return False
    finally:
        connection.close()


@contextlib.contextmanager
def scorecard_environment():
    """Django on ``benchscdb``: reused when its population is complete, else (re)created;
    migrated either way and kept (``BENCH_SCORECARD_DROP=1`` drops it at the end)."""
    complete = _population_complete()
    keep = os.environ.get("BENCH_SCORECARD_DROP") != "1"
    with bench_environment("scorecard", database=DATABASE, recreate=not complete, keep=keep):
        yield bool(complete)


# --- the population -------------------------------------------------------------------------


def _month(index: int) -> datetime.date:
    months = FIRST_MONTH.year * 12 + FIRST_MONTH.month - 1 + index
    return datetime.date(months // 12, months % 12 + 1, 1)


def _snapshot_values(rng: random.Random, site: dict, month: datetime.date, opened_so_far: int):
    """One month's realistic counts for a site; nothing happens before its activation."""
    from performance.models import COUNT_FIELDS

    activated = site["activated_on"]
    live = activated is not None and month >= activated.replace(day=1)
    if not live:
        return dict.fromkeys(COUNT_FIELDS, 0) | {"data_entry_lag_days": None}
    tiny, pace, quality = site["tiny"], site["pace"], site["quality"]
    screened = rng.randint(0, 1) if tiny else max(0, round(rng.gauss(pace * 1.6, 1.2)))
    screen_failures = sum(rng.random() < 0.15 + 0.3 * (1 - quality) for _ in range(screened))
    enrolled = screened - screen_failures
    discontinued = sum(rng.random() < 0.04 + 0.12 * (1 - quality) for _ in range(enrolled))
    crf_pages = rng.randint(0, 6) if tiny else rng.randint(15, 40) * (1 + enrolled)
    queries_opened = round(crf_pages * rng.uniform(0.03, 0.20 - 0.1 * quality))
    open_queries = opened_so_far + queries_opened
    queries_resolved = min(open_queries, round(queries_opened * rng.uniform(0.6, 1.1)))
    resolution = sum(rng.randint(1, 6 + int(20 * (1 - quality))) for _ in range(queries_resolved))
    no_lag = rng.random() < (0.7 if tiny else 0.1) or crf_pages == 0
    lag = None if no_lag else Decimal(f"{rng.uniform(0.5, 4 + 8 * (1 - quality)):.1f}")
    return {
        "screened": screened,
        "screen_failures": screen_failures,
        "enrolled": enrolled,
        "discontinued": discontinued,
        "crf_pages": crf_pages,
        "queries_opened": queries_opened,
        "queries_resolved": queries_resolved,
        "query_resolution_days": resolution,
        "data_entry_lag_days": lag,
        "deviations_major": int(rng.random() < 0.08 + 0.2 * (1 - quality)),
        "deviations_minor": rng.randint(0, 3),
        "sae_late": int(rng.random() < 0.02 + 0.04 * (1 - quality)),
        "monitoring_visits": int(rng.random() < 0.4),
    }


def build() -> None:
    """The whole population in one transaction (about a minute)."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from comms.models import (
        ACK_WINDOW,
        Category,
        Channel,
        Delivery,
        DeliveryKind,
        DeliveryState,
        Message,
        MessageStatus,
        Tier,
    )
    from performance.models import MetricSnapshot
    from sites.models import Site, StudySite, StudySiteStatus
    from trialhub.models import (
        Organization,
        OrganizationKind,
        RoleAssignment,
        Study,
        StudyRole,
    )

    User = get_user_model()
    rng = random.Random(SEED)
    utc = datetime.UTC
    with transaction.atomic():
        sponsor = Organization.objects.create(
            kind=OrganizationKind.SPONSOR, name="Scorecard Bench Sponsor", country="DE"
        )
        sender = User.objects.create(username="sc_sponsor_lead", password="!")
        study = Study.objects.create(
            sponsor=sponsor,
            code=STUDY_CODE,
            title=FIXTURE_VERSION,
            phase="3",
            therapeutic_area="Oncology",
            status="enrolling",
            enrolment_target=20 * SITES,
            planned_start=PLANNED_START,
            planned_end=PLANNED_END,
        )
        organizations = Organization.objects.bulk_create(
            Organization(
                kind=OrganizationKind.SITE,
                name=f"SC Site {index:04}",
                country=("DE", "FR", "ES", "GB", "US")[index % 5],
            )
            for index in range(SITES)
        )
        sites = Site.objects.bulk_create(
            Site(
                organization=organization,
                name=organization.name,
                institution=f"{organization.name} Hospital",
                country=organization.country,
            )
            for organization in organizations
        )
        profiles, study_sites = [], []
        period_end = datetime.date(2026, 11, 1)
        for site in sites:
            selected = datetime.date(2024, 6, 1) + datetime.timedelta(days=rng.randint(0, 300))
            draw = rng.random()
            if draw < 0.06:  # still in start-up
                activated = None
            elif draw < 0.09:  # activated after the scored month
                activated = period_end + datetime.timedelta(days=rng.randint(0, 40))
            else:
                activated = selected + datetime.timedelta(days=rng.randint(35, 220))
            first_patient = None
            if activated is not None and rng.random() < 0.9:
                first_patient = activated + datetime.timedelta(days=rng.randint(4, 150))
            if activated is None:
                status = StudySiteStatus.STARTUP
            elif first_patient is not None and first_patient < period_end:
                status = StudySiteStatus.ENROLLING
            else:
                status = StudySiteStatus.ACTIVATED
            profiles.append(
                {
                    "activated_on": activated,
                    "tiny": rng.random() < 0.05,
                    "pace": rng.uniform(0.2, 2.0),
                    "quality": rng.random(),
                    "responsive": 0.0 if rng.random() < 0.04 else rng.uniform(0.5, 0.98),
                    "ack_hours": rng.uniform(2, 80),
                }
            )
            study_sites.append(
                StudySite(
                    study=study,
                    site=site,
                    site_number=f"{site.id}",
                    status=status,
                    enrolment_target=rng.randint(4, 40),
                    selected_on=selected,
                    activated_on=activated,
                    first_patient_in_on=first_patient,
                )
            )
        study_sites = StudySite.objects.bulk_create(study_sites)

        snapshots = []
        for study_site, profile in zip(study_sites, profiles, strict=True):
            opened = 0
            for index in range(MONTHS):
                values = _snapshot_values(rng, profile, _month(index), opened)
                opened += values["queries_opened"] - values["queries_resolved"]
                snapshots.append(
                    MetricSnapshot(study_site=study_site, period=_month(index), **values)
                )
        MetricSnapshot.objects.bulk_create(snapshots, batch_size=4000)

        coordinators = User.objects.bulk_create(
            User(username=f"sc_coord_{index:04}", password="!") for index in range(SITES)
        )
        cras = User.objects.bulk_create(
            User(username=f"sc_cra_{index:03}", password="!") for index in range(CRA_POOL)
        )
        assignments = [
            RoleAssignment(
                user=coordinator,
                role=StudyRole.SITE_COORDINATOR,
                study=study,
                study_site=study_site,
                start_date=study_site.selected_on,
            )
            for coordinator, study_site in zip(coordinators, study_sites, strict=True)
        ]
        for study_site in study_sites:
            draw = rng.random()
            people = rng.sample(cras, 3)
            if draw < 0.03:  # no CRA
                continue
            if draw < 0.08:  # three within the 12 months: two changes
                spans = [
                    (study_site.selected_on, datetime.date(2026, 1, 15)),
                    (datetime.date(2026, 1, 15), datetime.date(2026, 6, 1)),
                    (datetime.date(2026, 6, 1), None),
                ]
            elif draw < 0.20:  # two within the 12 months
                change = datetime.date(2025, 11, 2) + datetime.timedelta(days=rng.randint(0, 340))
                spans = [(study_site.selected_on, change), (change, None)]
            elif draw < 0.26:  # an older one, ended before the 12 months
                change = datetime.date(2025, 3, 1) + datetime.timedelta(days=rng.randint(0, 200))
                spans = [(study_site.selected_on, change), (change, None)]
            else:
                spans = [(study_site.selected_on, None)]
            assignments.extend(
                RoleAssignment(
                    user=person,
                    role=StudyRole.CRA,
                    study=study,
                    study_site=study_site,
                    start_date=start,
                    end_date=end,
                )
                for person, (start, end) in zip(people, spans, strict=False)
            )
        RoleAssignment.objects.bulk_create(assignments, batch_size=5000)

        kinds = (
            [(Tier.KEY, Category.PROTOCOL_AMENDMENT)] * 24
            + [(Tier.CRITICAL, Category.SAFETY)] * 8
            + [(Tier.ROUTINE, Category.VISIT_REMINDER)] * 8
        )
        messages = []
        for number, (tier, category) in enumerate(kinds):
            month = _month(rng.randint(0, MONTHS - 1))
            sent = datetime.datetime(
                month.year, month.month, rng.randint(1, 28), rng.randint(6, 18), tzinfo=utc
            )
            ack = tier in (Tier.KEY, Tier.CRITICAL)
            messages.append(
                Message(
                    study=study,
                    category=category,
                    tier=tier,
                    subject=f"{category} {number}",
                    body="Bench message.",
                    sender=sender,
                    sender_organization=sponsor,
                    audience={"all_sites": True},
                    requires_ack=ack,
                    ack_due_at=sent + ACK_WINDOW[tier] if ack else None,
                    status=MessageStatus.SENT,
                    created_at=sent,
                    submitted_at=sent,
                    sent_at=sent,
                    recipients_count=SITES,
                )
            )
        messages = Message.objects.bulk_create(messages)
        deliveries = []
        for message in messages:
            ack = message.requires_ack
            for coordinator, study_site, profile in zip(
                coordinators, study_sites, profiles, strict=True
            ):
                delivered = message.sent_at + datetime.timedelta(minutes=rng.randint(0, 30))
                common = {
                    "kind": DeliveryKind.MESSAGE,
                    "message": message,
                    "recipient": coordinator,
                    "study_site": study_site,
                    "due_at": message.sent_at,
                    "tier": message.tier,
                    "ack_due_at": message.ack_due_at,
                    "delivered_at": delivered,
                }
                acknowledged = None
                if ack and rng.random() < profile["responsive"]:
                    minutes = rng.lognormvariate(0, 0.8) * profile["ack_hours"] * 60
                    acknowledged = delivered + datetime.timedelta(minutes=max(1, round(minutes)))
                if acknowledged is not None:
                    state, read = DeliveryState.ACKNOWLEDGED, acknowledged
                elif rng.random() < 0.7:
                    state = DeliveryState.READ
                    read = delivered + datetime.timedelta(minutes=rng.randint(5, 3000))
                else:
                    state, read = DeliveryState.DELIVERED, None
                deliveries.append(
                    Delivery(
                        **common,
                        channel=Channel.IN_APP,
                        state=state,
                        read_at=read,
                        acknowledged_at=acknowledged,
                    )
                )
                if ack:
                    deliveries.append(
                        Delivery(**common, channel=Channel.EMAIL, state=DeliveryState.DELIVERED)
                    )
        Delivery.objects.bulk_create(deliveries, batch_size=5000)
    from _common import analyze

    analyze()


# --- the naive loop -------------------------------------------------------------------------


def _naive_kpis(study, study_site, snapshots, deliveries, assignments, end, minimum) -> dict:
    """The 13 KPIs of one study-site from its ORM objects, straight from the definitions."""
    from comms.models import ACK_TIERS, Channel, DeliveryKind

    def judged(numerator, denominator, n, slug):
        if denominator == 0 or n < minimum[slug]:
            return (None, n)
        return (round(numerator / denominator, 4), n)

    months = [snapshot for snapshot in snapshots if snapshot.period < end]
    screened = sum(s.screened for s in months)
    screen_failures = sum(s.screen_failures for s in months)
    enrolled = sum(s.enrolled for s in months)
    discontinued = sum(s.discontinued for s in months)
    crf_pages = sum(s.crf_pages for s in months)
    queries_opened = sum(s.queries_opened for s in months)
    queries_resolved = sum(s.queries_resolved for s in months)
    resolution_days = sum(s.query_resolution_days for s in months)
    deviations_major = sum(s.deviations_major for s in months)
    sae_late = sum(s.sae_late for s in months)
    lagged = [s for s in months if s.data_entry_lag_days is not None]
    lag_pages = sum(s.crf_pages for s in lagged)
    lag_weighted = sum(float(s.data_entry_lag_days) * s.crf_pages for s in lagged)

    kpis = {}
    # enrolment vs target: the study's planned period elapsed at the period's end
    total_days = (study.planned_end - study.planned_start).days
    elapsed = min(max((end - study.planned_start).days / total_days, 0.0), 1.0)
    expected = study_site.enrolment_target * elapsed
    kpis["enrolment_vs_target"] = judged(enrolled, expected, enrolled, "enrolment_vs_target")
    activated = study_site.activated_on
    if activated is not None and activated < end:
        last_day = end - datetime.timedelta(days=1)
        active_months = (last_day.year - activated.year) * 12 + last_day.month - activated.month + 1
        kpis["enrolment_rate"] = judged(enrolled, active_months, active_months, "enrolment_rate")
    else:
        kpis["enrolment_rate"] = judged(0, 0, 0, "enrolment_rate")
    kpis["screen_failure_rate"] = judged(screen_failures, screened, screened, "screen_failure_rate")
    kpis["early_discontinuation_rate"] = judged(
        discontinued, enrolled, enrolled, "early_discontinuation_rate"
    )
    selected, first_patient = study_site.selected_on, study_site.first_patient_in_on
    if activated is not None and activated < end and selected is not None:
        kpis["activation_cycle_days"] = judged(
            (activated - selected).days, 1, 1, "activation_cycle_days"
        )
    else:
        kpis["activation_cycle_days"] = (None, 0)
    if (
        activated is not None
        and activated < end
        and first_patient is not None
        and first_patient < end
    ):
        kpis["days_to_first_patient"] = judged(
            (first_patient - activated).days, 1, 1, "days_to_first_patient"
        )
    else:
        kpis["days_to_first_patient"] = (None, 0)
    kpis["data_entry_lag_days"] = judged(lag_weighted, lag_pages, lag_pages, "data_entry_lag_days")
    kpis["query_rate"] = judged(queries_opened * 100, crf_pages, crf_pages, "query_rate")
    kpis["query_resolution_days"] = judged(
        resolution_days, queries_resolved, queries_resolved, "query_resolution_days"
    )
    kpis["deviation_rate"] = judged(deviations_major, enrolled, enrolled, "deviation_rate")
    kpis["sae_late"] = judged(sae_late, 1, len(months), "sae_late")
    if not months:  # no snapshot yet: every snapshot KPI "not enough data", n kept
        for slug in (
            "enrolment_vs_target",
            "enrolment_rate",
            "screen_failure_rate",
            "early_discontinuation_rate",
            "data_entry_lag_days",
            "query_rate",
            "query_resolution_days",
            "deviation_rate",
            "sae_late",
        ):
            kpis[slug] = (None, kpis[slug][1])

    end_at = datetime.datetime.combine(end, datetime.time(), tzinfo=datetime.UTC)
    hours = [
        (d.acknowledged_at - d.delivered_at).total_seconds() / 3600
        for d in deliveries
        if d.kind == DeliveryKind.MESSAGE
        and d.channel == Channel.IN_APP
        and d.tier in ACK_TIERS
        and d.delivered_at is not None
        and d.acknowledged_at is not None
        and d.acknowledged_at < end_at
    ]
    if hours:
        kpis["key_ack_hours"] = judged(statistics.median(hours), 1, len(hours), "key_ack_hours")
    else:
        kpis["key_ack_hours"] = (None, 0)

    window_start = datetime.date(end.year - 1, end.month, end.day)
    cras = {
        a.user_id
        for a in assignments
        if a.start_date < end and (a.end_date is None or a.end_date > window_start)
    }
    kpis["cra_changes_12m"] = judged(len(cras), 1, len(cras), "cra_changes_12m")
    return kpis


def naive_scorecard(study, period: datetime.date, *, prefetch: bool) -> dict[int, dict]:
    """``{study_site_id: {"score", "rank", "kpis": {slug: (value, n, rag)}}}`` the obvious way:
    every study-site's ORM objects, each KPI in Python, then composite and rank."""
    from django.db.models import Prefetch

    from comms.models import ACK_TIERS, Channel, Delivery, DeliveryKind
    from performance.scorecards import effective_settings, points, rag
    from sites.models import StudySite
    from trialhub.models import RoleAssignment, StudyRole

    settings = effective_settings(None)
    minimum = settings.minimum_samples
    end = datetime.date(period.year + period.month // 12, period.month % 12 + 1, 1)
    key_deliveries = Delivery.objects.filter(
        kind=DeliveryKind.MESSAGE, channel=Channel.IN_APP, tier__in=ACK_TIERS
    )
    cra_assignments = RoleAssignment.objects.filter(role=StudyRole.CRA)
    study_sites = StudySite.objects.filter(study=study).select_related("site").order_by("id")
    if prefetch:
        study_sites = study_sites.prefetch_related(
            "metric_snapshots",
            Prefetch("deliveries", queryset=key_deliveries, to_attr="key_deliveries"),
            Prefetch("role_assignments", queryset=cra_assignments, to_attr="cra_assignments"),
        )
    result = {}
    for study_site in study_sites:
        if prefetch:
            deliveries, assignments = study_site.key_deliveries, study_site.cra_assignments
        else:
            deliveries = key_deliveries.filter(study_site=study_site)
            assignments = cra_assignments.filter(study_site=study_site)
        kpis = _naive_kpis(
            study,
            study_site,
            list(study_site.metric_snapshots.all()),
            list(deliveries),
            list(assignments),
            end,
            minimum,
        )
        scored = [
            (settings.kpis[slug].weight, points(kpis[slug][0], settings.kpis[slug]))
            for slug in settings.counted
            if kpis[slug][0] is not None
        ]
        score = None
        if len(scored) >= settings.minimum_kpis:
            weights = sum(weight for weight, _ in scored)
            score = round(sum(weight * value for weight, value in scored) / weights, 1)
        result[study_site.id] = {
            "score": score,
            "kpis": {
                slug: (value, n, rag(value, settings.kpis[slug]))
                for slug, (value, n) in kpis.items()
            },
        }
    scores = sorted(row["score"] for row in result.values() if row["score"] is not None)
    for row in result.values():  # competition rank: 1 + how many scored higher
        score = row["score"]
        row["rank"] = None if score is None else 1 + len(scores) - bisect_right(scores, score)
    return result


def differences(fast, naive: dict) -> list[str]:
    """Every study-site and KPI where ``study_scorecard`` and the naive loop disagree."""
    found = []
    if len(fast.rows) != len(naive):
        found.append(f"rows: fast {len(fast.rows)}, naive {len(naive)}")
    for row in fast.rows:
        other = naive.get(row.study_site_id)
        if other is None:
            found.append(f"study-site {row.study_site_id}: missing in naive")
            continue
        if row.score != other["score"] or row.rank != other["rank"]:
            found.append(
                f"study-site {row.study_site_id}: score/rank fast {row.score}/{row.rank}, "
                f"naive {other['score']}/{other['rank']}"
            )
        for slug, cell in row.kpis.items():
            value, n, status = other["kpis"][slug]
            same_value = (cell.value is None) == (value is None) and (
                value is None or abs(cell.value - value) <= TOLERANCE
            )
            if not same_value or cell.n != n or cell.rag != status:
                found.append(
                    f"study-site {row.study_site_id} {slug}: fast ({cell.value}, n={cell.n}, "
                    f"{cell.rag}), naive ({value}, n={n}, {status})"
                )
    return found


# --- the measurements -----------------------------------------------------------------------


def timed(function, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def queries_of(function) -> tuple[int, float, float]:
    """One run with the queries captured: (queries, ms in SQL by Django's clock, ms in all)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        function()
        total = (time.perf_counter() - started) * 1000
    sql = sum(float(query["time"]) for query in captured.captured_queries) * 1000
    return len(captured.captured_queries), sql, total


def profile(study) -> None:
    from django.db import connection

    from performance.scorecards import study_scorecard

    profiler = cProfile.Profile()
    profiler.enable()
    study_scorecard(study=study, period=PERIOD)
    profiler.disable()
    output = io.StringIO()
    pstats.Stats(profiler, stream=output).sort_stats("cumulative").print_stats(25)
    print("cProfile of one study_scorecard run (top 25, cumulative):")
    print(output.getvalue())
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        study_scorecard(study=study, period=PERIOD)
    for query in sorted(captured.captured_queries, key=lambda q: -float(q["time"]))[:2]:
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {query['sql']}")
            print(f"EXPLAIN ANALYZE of a {float(query['time']) * 1000:.0f} ms query:")
            print(" ".join(query["sql"].split())[:160] + " ...")
            print("\n".join(line for (line,) in cursor.fetchall()))


def main() -> int:
    with scorecard_environment() as reused:
        from django.db.models import Count

        from performance.models import MetricSnapshot
        from performance.scorecards import study_scorecard
        from trialhub.models import Study

        started = time.perf_counter()
        if reused:
            print(f"population of {STUDY_CODE} reused ({FIXTURE_VERSION})", flush=True)
        else:
            build()
            print(f"population built in {time.perf_counter() - started:.1f} s", flush=True)
        study = Study.objects.get(code=STUDY_CODE)
        snapshot_rows = MetricSnapshot.objects.filter(study_site__study=study).count()
        study_site_count = study.study_sites.count()
        months = MetricSnapshot.objects.filter(study_site__study=study).aggregate(
            months=Count("period", distinct=True)
        )["months"]

        # Correctness first: the scored month, a year earlier, and before any snapshot.
        checked = []
        for period in (PERIOD, datetime.date(2025, 10, 1), datetime.date(2024, 10, 1)):
            fast = study_scorecard(study=study, period=period)
            for prefetch in (False, True):
                found = differences(fast, naive_scorecard(study, period, prefetch=prefetch))
                if found:
                    variant = "prefetch" if prefetch else "per site"
                    print(f"MISMATCH at {period:%Y-%m} (naive {variant}): {len(found)}")
                    print("\n".join(found[:40]))
                    return 1
            scored = sum(row.score is not None for row in fast.rows)
            empty = sum(cell.value is None for row in fast.rows for cell in row.kpis.values())
            checked.append(f"{period:%Y-%m} ({scored} scored, {empty} KPI cells without data)")
        print(
            "equal for every study-site and KPI (value, n, RAG, score, rank) at "
            + ", ".join(checked),
            flush=True,
        )

        def fast_path():
            return study_scorecard(study=study, period=PERIOD)

        def trend_path():
            return study_scorecard(study=study, period=PERIOD, trend_months=12)

        # Interleaved rounds, so that the load of the machine weighs on both sides alike.
        timed(fast_path, WARMUPS)
        timed(lambda: naive_scorecard(study, PERIOD, prefetch=False), 1)
        timed(lambda: naive_scorecard(study, PERIOD, prefetch=True), 1)
        fast_ms, trend_ms, naive_ms, prefetch_ms = [], [], [], []
        rounds = max(1, NAIVE_RUNS)
        for number in range(rounds):
            share = RUNS // rounds + (number < RUNS % rounds)
            fast_ms += timed(fast_path, share)
            naive_ms += timed(lambda: naive_scorecard(study, PERIOD, prefetch=False), 1)
            prefetch_ms += timed(lambda: naive_scorecard(study, PERIOD, prefetch=True), 1)
            trend_ms += timed(trend_path, max(1, TREND_RUNS // rounds))
        # After the timed runs (warm): one more run of each with its queries captured.
        fast_queries, fast_sql, fast_all = queries_of(fast_path)
        trend_queries, trend_sql, trend_all = queries_of(trend_path)
        naive_queries = queries_of(lambda: naive_scorecard(study, PERIOD, prefetch=False))[0]
        prefetch_queries = queries_of(lambda: naive_scorecard(study, PERIOD, prefetch=True))[0]
        fast_median, fast_p95 = median(fast_ms), percentile(fast_ms, 0.95)
        print(
            f"\n{snapshot_rows} snapshot rows, {study_site_count} study-sites, {months} months; "
            f"period {PERIOD:%Y-%m}; {RUNS} fast runs after {WARMUPS} warm-ups, "
            f"{NAIVE_RUNS} naive runs each after 1 warm-up, {len(trend_ms)} trend runs, "
            f"interleaved in {rounds} rounds; load average {load_average()}"
        )
        per_site, prefetched = median(naive_ms) / fast_median, median(prefetch_ms) / fast_median
        rows = [
            Row(
                f"study_scorecard ({fast_queries} queries) median",
                f"{fast_median:.1f} ms",
                "",
                "",
                f"<= {TARGET_MS:.0f} ms",
                verdict(fast_median <= TARGET_MS),
            ),
            Row(
                "study_scorecard p95 / min",
                f"{fast_p95:.1f} / {min(fast_ms):.1f} ms",
                "",
                "",
                f"<= {TARGET_MS:.0f} ms",
                verdict(fast_p95 <= TARGET_MS),
            ),
            Row(
                f"vs naive per site ({naive_queries} queries), median",
                f"{fast_median:.1f} ms",
                f"{median(naive_ms):.0f} ms",
                f"{per_site:.1f}x",
                f">= {TARGET_RATIO:.0f}x",
                verdict(per_site >= TARGET_RATIO),
            ),
            Row(
                f"vs naive prefetch ({prefetch_queries} queries), median",
                f"{fast_median:.1f} ms",
                f"{median(prefetch_ms):.0f} ms",
                f"{prefetched:.1f}x",
                f">= {TARGET_RATIO:.0f}x",
                verdict(prefetched >= TARGET_RATIO),
            ),
            Row(
                f"trend_months=12 ({trend_queries} queries) median / p95 / min",
                f"{median(trend_ms):.0f} / {percentile(trend_ms, 0.95):.0f} / "
                f"{min(trend_ms):.0f} ms",
                "",
                "",
                "",
                "",
            ),
        ]
        print_table(f"Scorecard of {study_site_count} study-sites x {months} months", rows, "naive")
        print(
            f"one run with the queries captured: study_scorecard {fast_all:.0f} ms, of which "
            f"{fast_sql:.0f} ms in its {fast_queries} queries; trend_months=12 {trend_all:.0f} ms, "
            f"of which {trend_sql:.0f} ms in its {trend_queries} queries (the rest is Python)"
        )
        if os.environ.get("BENCH_PROFILE") == "1" or fast_median > TARGET_MS:
            profile(study)
    return 0


if __name__ == "__main__":
    sys.exit(main())
