"""How the tenancy-scoped reads scale: selectors and the pages/endpoints built on them.

Builds a small and a large world through the services in a database of its own
(``trialhub_bench`` on the server of ``DATABASE_URL``, dropped at the end), then times each read
for three personas (a CRO project manager engaged on every study, a sponsor lead, the
coordinator of a site that takes part in every study) and counts its SQL queries. The query
count of a read must not grow with the data (STYLE.md); the table marks each read CONSTANT or
GROWS. Beside the table: the per-object guardian check STYLE.md warns against for list pages,
against the foreign-key filter ``studies_for_user`` uses.

Run with ``make bench``, or directly with DATABASE_URL/REDIS_URL set:
``python bench/tenancy_lists.py``. BENCH_RUNS / BENCH_WARMUPS / BENCH_BUDGET_SECONDS change the
repetitions: 30 timed runs after 3 warm-ups, but a slow read stops after 10 once its runs add
up to 3 s.
"""

from __future__ import annotations

import datetime
import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

from _common import bench_environment

BENCH_DATABASE = "trialhub_bench"
RUNS = int(os.environ.get("BENCH_RUNS", "30"))
WARMUPS = int(os.environ.get("BENCH_WARMUPS", "3"))
# A slow read stops after MIN_RUNS runs once its timed runs add up to BENCH_BUDGET_SECONDS, so
# the whole script stays under five minutes on a 2-core machine.
MIN_RUNS = min(RUNS, 10)
BUDGET_MS = 1000 * float(os.environ.get("BENCH_BUDGET_SECONDS", "3"))


# --- a database of our own ------------------------------------------------------------------


def empty_tables() -> None:
    """Truncate every table but the migration record, content types and permissions."""
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection

    keep = {"django_migrations", "django_content_type", "auth_permission"}
    tables = sorted(set(connection.introspection.django_table_names(only_existing=True)) - keep)
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE {} RESTART IDENTITY CASCADE".format(", ".join(f'"{t}"' for t in tables))
        )
    ContentType.objects.clear_cache()


# --- the worlds -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Size:
    name: str
    sponsors: int
    studies: int
    sites_per_study: int  # the hub site plus this many minus one others
    other_sites: int
    cras: int


SMALL = Size("small", sponsors=3, studies=5, sites_per_study=8, other_sites=12, cras=6)
LARGE = Size("large", sponsors=10, studies=60, sites_per_study=20, other_sites=150, cras=40)


def build_world(size: Size) -> SimpleNamespace:
    """Sponsors with a lead, a viewer and an admin each; a global CRO engaged on every study
    (its ``pm`` is CRO project manager on all of them) and a regional one on every third; a hub
    site in every study plus others round-robin; per study-site a coordinator, a PI, a current
    CRA and one to three ended CRAs (turnover history). Every write goes through a service."""
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from sites.models import StudySiteStatus
    from sites.services import site_create, study_site_create
    from trialhub.models import OrganizationKind, StudyRole
    from trialhub.services import (
        engagement_create,
        member_create,
        organization_create,
        role_assignment_create,
        role_assignment_end,
        study_create,
    )

    today = timezone.localdate()
    days = datetime.timedelta
    password_hash = make_password("bench")
    w = SimpleNamespace(size=size, assignments=0, ended=0)

    def person(organization, username: str, **extra):
        return member_create(
            organization=organization,
            username=username,
            password=None,
            password_hash=password_hash,
            first_name=username.split("_")[0].title(),
            last_name=username,
            **extra,
        )

    def org(kind: str, name: str, country: str = "DE", time_zone: str = "Europe/Berlin"):
        return organization_create(kind=kind, name=name, country=country, time_zone=time_zone)

    sponsors = []
    for index in range(size.sponsors):
        sponsor = org(OrganizationKind.SPONSOR, f"Sponsor {index:02}")
        sponsor.admin = person(sponsor, f"sp{index:02}_admin", is_org_admin=True)
        sponsor.lead = person(sponsor, f"sp{index:02}_lead")
        sponsor.viewer = person(sponsor, f"sp{index:02}_viewer")
        sponsors.append(sponsor)
    global_cro = org(OrganizationKind.CRO, "Global CRO", "GB", "Europe/London")
    w.cro_pm = person(global_cro, "cro_pm")
    cras = [person(global_cro, f"cra_{index:02}") for index in range(size.cras)]
    regional_cro = org(OrganizationKind.CRO, "Regional CRO", "FR", "Europe/Paris")
    regional_pm = person(regional_cro, "regional_pm")

    countries = [("DE", "Europe/Berlin"), ("FR", "Europe/Paris"), ("ES", "Europe/Madrid")]
    sites = []
    for index in range(size.other_sites + 1):
        country, time_zone = countries[index % len(countries)]
        name = "Hub Site" if index == 0 else f"Site {index:03}"
        site_organization = org(OrganizationKind.SITE, name, country, time_zone)
        site = site_create(
            organization=site_organization,
            name=name,
            institution=f"{name} University Hospital",
            country=country,
            time_zone=time_zone,
        )
        site.coordinator = person(site_organization, f"coord_{index:03}")
        site.investigator = person(site_organization, f"pi_{index:03}")
        sites.append(site)
    w.site_coordinator = sites[0].coordinator

    assign = role_assignment_create
    study_site_index = 0
    w.studies = []
    for index in range(size.studies):
        sponsor = sponsors[index % size.sponsors]
        actor = sponsor.admin
        study = study_create(
            sponsor=sponsor,
            code=f"S{sponsor.name[-2:]}-{index:03}",
            title=f"Study {index:03}",
            phase="3",
            therapeutic_area="Oncology",
            enrolment_target=40 * size.sites_per_study,
            planned_start=today - days(900),
            planned_end=today + days(400),
            status="enrolling",
            actor=actor,
        )
        w.studies.append(study)
        engagement_create(study=study, cro=global_cro, actor=actor)
        study_level = [
            (sponsor.lead, StudyRole.SPONSOR_LEAD),
            (sponsor.viewer, StudyRole.SPONSOR_VIEWER),
            (w.cro_pm, StudyRole.CRO_PM),
        ]
        if index % 3 == 0:
            engagement_create(study=study, cro=regional_cro, actor=actor)
            study_level.append((regional_pm, StudyRole.CRO_PM))
        for user, role in study_level:
            assign(actor=actor, user=user, role=role, study=study, start_date=today - days(800))
            w.assignments += 1

        others = size.sites_per_study - 1
        chosen = [sites[0]] + [
            sites[1 + (index * others + offset) % size.other_sites] for offset in range(others)
        ]
        for site in chosen:
            closed = study_site_index % 10 == 9
            study_site = study_site_create(
                study=study,
                site=site,
                enrolment_target=40,
                status=StudySiteStatus.CLOSED if closed else StudySiteStatus.ENROLLING,
                selected_on=today - days(800),
                activated_on=today - days(700),
                first_patient_in_on=today - days(650),
                closed_on=today - days(30) if closed else None,
            )
            start = today - days(800)
            for user, role in (
                (site.coordinator, StudyRole.SITE_COORDINATOR),
                (site.investigator, StudyRole.PRINCIPAL_INVESTIGATOR),
            ):
                assign(actor=actor, user=user, role=role, study_site=study_site, start_date=start)
            # CRA turnover: 1-3 ended CRAs of 120 days each, then the current one.
            history = 1 + study_site_index % 3
            current_start = today - days(10 * (study_site_index % 12))
            for turn in range(history, -1, -1):
                cra = cras[(study_site_index * 4 + turn) % size.cras]
                begins = current_start - days(120 * turn)
                assignment = assign(
                    actor=actor,
                    user=cra,
                    role=StudyRole.CRA,
                    study_site=study_site,
                    start_date=begins,
                )
                if turn:
                    role_assignment_end(
                        assignment=assignment,
                        actor=actor,
                        reason="CRA rotated to another region",
                        on=begins + days(120),
                    )
                    w.ended += 1
            w.assignments += 3 + history
            study_site_index += 1
    w.study_sites = study_site_index
    w.sponsor_lead = sponsors[0].lead
    w.detail_study = w.studies[0]  # sponsor 00's first study: every persona sees it
    w.users = len(sponsors) * 3 + 2 + size.cras + 2 * len(sites)
    return w


# --- measuring ------------------------------------------------------------------------------


@dataclass
class Figure:
    rows: int
    queries: int
    median_ms: float
    p95_ms: float
    runs: int


def measure(read: Callable[[], int]) -> Figure:
    """``read`` does the work and returns its row count. Queries are counted on one run after
    the warm-ups; times are wall clock over RUNS further runs (no query capture), or fewer, at
    least MIN_RUNS, once they add up to BUDGET_MS."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(WARMUPS):
        read()
    with CaptureQueriesContext(connection) as captured:
        rows = read()
    # Count now: every request of the timed runs below clears the connection's query log.
    queries = len(captured.captured_queries)
    timings: list[float] = []
    while len(timings) < RUNS and (len(timings) < MIN_RUNS or sum(timings) < BUDGET_MS):
        started = time.perf_counter()
        read()
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    p95 = timings[max(0, math.ceil(0.95 * len(timings)) - 1)]  # nearest rank
    return Figure(rows, queries, statistics.median(timings), p95, len(timings))


def _get(client, path: str, rows: Callable[[object], int]) -> Callable[[], int]:
    def read() -> int:
        response = client.get(path, HTTP_ACCEPT="application/json, text/html")
        if response.status_code != 200:
            raise AssertionError(f"GET {path} answered {response.status_code}")
        return rows(response)

    return read


def personas(w: SimpleNamespace) -> dict:
    return {"cro_pm": w.cro_pm, "sponsor_lead": w.sponsor_lead, "site_coord": w.site_coordinator}


PEER_WAYS: dict[str, Callable] = {}  # filled by peer_reads_for (imports need django.setup())


def reads_for(w: SimpleNamespace) -> list[tuple[str, str, Callable[[], int]]]:
    """(read, persona, callable) for every read measured."""
    from django.test import Client

    from sites.selectors import study_sites_for_user
    from trialhub.selectors import role_assignments_for_user, studies_for_user, users_for_user

    study = w.detail_study
    reads = []
    for label, selector in (
        ("studies_for_user", studies_for_user),
        ("study_sites_for_user", study_sites_for_user),
        ("role_assignments_for_user().active()", lambda u: role_assignments_for_user(u).active()),
        ("users_for_user", users_for_user),
    ):
        for persona, user in personas(w).items():
            reads.append((label, persona, lambda s=selector, u=user: len(list(s(u)))))

    def api_count(response) -> int:
        return response.json()["count"]

    def page_rows(count: int) -> Callable[[object], int]:
        return lambda response: count

    for persona, user in personas(w).items():
        client = Client()
        client.force_login(user)
        endpoints = [
            ("GET /api/v1/studies/", "/api/v1/studies/", api_count),
            (
                "GET /api/v1/role-assignments/?active=true",
                "/api/v1/role-assignments/?active=true",
                api_count,
            ),
            ("GET /api/v1/users/", "/api/v1/users/", api_count),
        ]
        # Pages: rows is the length of the page's main list before pagination (25 a page),
        # counted once here so that it adds no query to the measured request.
        dashboard_list = (
            study_sites_for_user(user) if persona == "site_coord" else studies_for_user(user)
        )
        sites_of_study = study_sites_for_user(user, study).count()
        endpoints.append(("GET / (dashboard)", "/", page_rows(dashboard_list.count())))
        endpoints.append(("GET /studies/<id>/", f"/studies/{study.id}/", page_rows(sites_of_study)))
        if persona != "site_coord":  # a coordinator does not assign roles here (403)
            endpoints.append(
                (
                    "GET /studies/<id>/assignments/",
                    f"/studies/{study.id}/assignments/",
                    page_rows(sites_of_study),
                )
            )
        for label, path, rows in endpoints:
            reads.append((label, persona, _get(client, path, rows)))
    return reads


def peer_reads_for(w: SimpleNamespace) -> list[tuple[str, str, Callable[[], int]]]:
    """The visible-studies list three ways: our foreign-key filter; guardian's per-object check
    over every study (what ``user.has_perm(perm, study)`` does per row, no prefetch); and, for
    reference, guardian with ``prefetch_perms`` (one checker, permissions loaded up front).
    All three must find the same studies for each persona (checked before measuring)."""
    from guardian.core import ObjectPermissionChecker

    from trialhub.models import Study
    from trialhub.selectors import studies_for_user

    def foreign_key(user) -> list:
        return list(studies_for_user(user))

    def per_object(user) -> list:
        return [
            study
            for study in Study.objects.select_related("sponsor")
            if ObjectPermissionChecker(user).has_perm("trialhub.view_study", study)
        ]

    def prefetched(user) -> list:
        studies = list(Study.objects.select_related("sponsor"))
        checker = ObjectPermissionChecker(user)
        checker.prefetch_perms(studies)
        return [study for study in studies if checker.has_perm("trialhub.view_study", study)]

    PEER_WAYS.update({"fk": foreign_key, "per_object": per_object, "prefetch": prefetched})
    for persona, user in personas(w).items():
        ids = {way: {study.id for study in read(user)} for way, read in PEER_WAYS.items()}
        if not ids["fk"] == ids["per_object"] == ids["prefetch"]:
            raise AssertionError(f"{persona}: the three ways disagree on the visible studies")
    reads = []
    for persona, user in personas(w).items():
        for label, read in PEER_WAYS.items():
            reads.append((label, persona, lambda r=read, u=user: len(r(u))))
    return reads


def run_size(size: Size) -> tuple[dict, dict]:
    from django.db import connection, transaction

    empty_tables()
    started = time.perf_counter()
    with transaction.atomic():  # one commit for the whole world; each service is a savepoint
        world = build_world(size)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(
        f"[{size.name}] built in {time.perf_counter() - started:.1f} s: "
        f"{size.sponsors} sponsors, {len(world.studies)} studies, {world.study_sites} "
        f"study-sites, {world.assignments} role assignments ({world.ended} ended), "
        f"{world.users} users",
        flush=True,
    )
    started = time.perf_counter()
    figures = {(label, persona): measure(read) for label, persona, read in reads_for(world)}
    peers = {(label, persona): measure(read) for label, persona, read in peer_reads_for(world)}
    print(f"[{size.name}] measured in {time.perf_counter() - started:.1f} s", flush=True)
    return figures, peers


# --- output ---------------------------------------------------------------------------------


def print_table(results: dict[str, dict], title: str) -> None:
    sizes = list(results)
    keys = list(results[sizes[0]])
    header = f"| {'path / selector':<42} | {'persona':<12} | {'size':<5} | {'rows':>5} | "
    header += f"{'queries':>7} | {'median ms':>9} | {'p95 ms':>8} | {'runs':>4} | queries vs rows |"
    print(f"\n{title}\n")
    print(header)
    print("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")
    for label, persona in keys:
        counts = {results[size][(label, persona)].queries for size in sizes}
        marker = "CONSTANT" if len(counts) == 1 else "GROWS"
        for size in sizes:
            figure = results[size][(label, persona)]
            line = (
                f"| {label:<42} | {persona:<12} | {size:<5} | {figure.rows:>5} | "
                f"{figure.queries:>7} | {figure.median_ms:>9.1f} | {figure.p95_ms:>8.1f} | "
                f"{figure.runs:>4} | {marker:<15} |"
            )
            print(line)


def print_peers(results: dict[str, dict]) -> None:
    """One line per persona and size: the three ways side by side (queries, median/p95 ms)."""
    ways = {"fk": "FK filter", "per_object": "guardian per object", "prefetch": "guardian+prefetch"}
    print("\nVisible studies: foreign-key filter vs per-object guardian checks over all studies\n")
    header = f"| {'persona':<12} | {'size':<5} | {'rows':>4} | {'all studies':>11} |"
    header += "".join(f" {title:<29} |" for title in ways.values())
    print(header)
    print("|" + "|".join("-" * len(cell) for cell in header.split("|")[1:-1]) + "|")
    for persona in ("cro_pm", "sponsor_lead", "site_coord"):
        for size, figures in results.items():
            total = {"small": SMALL.studies, "large": LARGE.studies}[size]
            line = (
                f"| {persona:<12} | {size:<5} | {figures[('fk', persona)].rows:>4} | {total:>11} |"
            )
            for way in ways:
                figure = figures[(way, persona)]
                cell = f"{figure.queries:>3} q, {figure.median_ms:6.1f} / {figure.p95_ms:6.1f} ms"
                line += f" {cell:<29} |"
            print(line)
    growth = []
    for way, title in ways.items():
        counts = {figures[(way, persona)].queries for figures in results.values()}
        growth.append(f"{title} {'CONSTANT' if len(counts) == 1 else 'GROWS'}")
    print("\nQueries vs rows: " + ", ".join(growth))


def main() -> None:
    # The common bench setup: own database, migrated, DEBUG off, dropped at the end.
    with bench_environment("tenancy", database=BENCH_DATABASE):
        print(f"{WARMUPS} warm-ups, {RUNS} timed runs per read", flush=True)
        figures, peers = {}, {}
        for size in (SMALL, LARGE):
            figures[size.name], peers[size.name] = run_size(size)
        print_table(figures, "Tenancy-scoped reads (queries must not grow with rows)")
        print_peers(peers)


if __name__ == "__main__":
    main()
