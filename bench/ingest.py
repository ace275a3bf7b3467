"""Metrics ingest: 100,000 snapshot rows through the CSV service and the API bulk path, against
PostgreSQL's COPY of the same rows, in the same run. Target: >= 20,000 rows/s.

Population: one sponsor, one study, 5,000 study-sites (bulk-inserted by
``_common.build_population``, no site people) and 20 months each (the 20 months before the
current one) = 100,000 snapshots. Values are realistic and valid (screen failures within
screened, discontinued within enrolled, queries resolved never ahead of queries opened
cumulatively, a data-entry lag with one decimal or none), from a fixed seed; a second set
(another seed) is the "changed" upload, so updates rewrite every row.

Paths, each timed from text in memory to the commit, the table truncated before each insert:

* CSV service: the CSV text (the upload template's columns, with ``site_name``) parsed by
  ``performance.forms.metric_rows_from_csv`` (the upload page's parser), then
  ``metric_snapshots_upsert`` in ``transaction.atomic`` (as the page's confirm step). First
  insert; the same file again (every row unchanged: validated, nothing written); the changed
  file (every row updated). The file is 6.1 MiB: the upload page itself takes at most 5 MB
  (``MAX_UPLOAD_BYTES``), about 80,000 rows, so this is the service path the page calls.
* API: ``POST /api/v1/metrics/`` through ``django.test.Client`` with an API token (the
  integration's way; session auth would be the same path), JSON lists as the bodies (built
  before the clock starts), every response checked. The view sets no maximum list size, but
  Django refuses a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (2.5 MiB by default; 100,000 rows
  are 27.7 MiB of compact JSON) with a 400, so the rows go in as few requests as fit, whole
  study-sites each (12 requests of at most 9,040 rows); 100 requests of 1,000 rows as well.
* COPY: ``COPY … FROM STDIN (FORMAT csv)`` of the same rows into a temporary copy of the table
  (``LIKE performance_metricsnapshot INCLUDING DEFAULTS INCLUDING IDENTITY``: no indexes, no
  checks, no WAL) — the ratio's reference; COPY into the real, empty table (its indexes,
  checks and foreign keys); and the upsert floor: COPY into a temporary staging table, then
  one ``INSERT … SELECT … ON CONFLICT (study_site_id, period) DO UPDATE`` into the real table
  (empty: inserts; full: updates).

After each path the table is checked: 100,000 rows, 300 random rows equal to the values sent,
written by the uploader. ``BENCH_PROFILE=1`` adds cProfile runs of the CSV insert and the API
update afterwards (top functions). ``BENCH_KEEP_DATABASE=1`` keeps the database.

The database is ``benchingestdb`` (``BENCH_INGEST_DATABASE``) on the server of
``DATABASE_URL``: created, migrated and dropped again at the end, also on failure; the cache
and Celery use Redis db ``BENCH_REDIS_DB`` (11). ``python bench/ingest.py`` from the
repository root (or ``make bench``).
"""

from __future__ import annotations

import cProfile
import csv
import datetime
import io
import json
import os
import pstats
import random
import time
from decimal import Decimal

from _common import (
    bench_environment,
    build_population,
    load_average,
)

DATABASE = os.environ.get("BENCH_INGEST_DATABASE", "benchingestdb")
SITES, MONTHS = 5000, 20
ROWS = SITES * MONTHS
CHUNK = 1000  # rows per request of the chunked API run (50 study-sites x 20 months)
TARGET = 20_000  # rows/s
SPOT_CHECKS = 300
TABLE = "performance_metricsnapshot"
LIKE = f"LIKE {TABLE} INCLUDING DEFAULTS INCLUDING IDENTITY"  # columns, no indexes or checks


# --- the database ---------------------------------------------------------------------------


def execute(sql: str, params=None) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def truncate() -> None:
    execute(f"TRUNCATE {TABLE}")
    execute(f"VACUUM ANALYZE {TABLE}")


# --- the rows -------------------------------------------------------------------------------


def periods(today: datetime.date) -> list[datetime.date]:
    """The ``MONTHS`` months before the current one, oldest first."""
    month = today.replace(day=1)
    result = []
    for _ in range(MONTHS):
        month = (month - datetime.timedelta(days=1)).replace(day=1)
        result.append(month)
    return result[::-1]


def snapshot_values(study_site_ids: list[int], months: list[datetime.date], seed: int) -> list:
    """One valid row dict per study-site and month (service keys; ``period`` a date, the lag a
    ``Decimal`` or ``None``), deterministic for the seed."""
    rng = random.Random(seed)
    rows = []
    for study_site_id in study_site_ids:
        opened_total = resolved_total = 0
        for period in months:
            screened = rng.randint(0, 12)
            screen_failures = rng.randint(0, screened)
            enrolled = rng.randint(0, screened - screen_failures)
            queries_opened = rng.randint(0, 60)
            opened_total += queries_opened
            queries_resolved = rng.randint(0, opened_total - resolved_total)
            resolved_total += queries_resolved
            lag = None if rng.random() < 0.05 else Decimal(rng.randint(0, 300)) / 10
            rows.append(
                {
                    "study_site": study_site_id,
                    "period": period,
                    "screened": screened,
                    "screen_failures": screen_failures,
                    "enrolled": enrolled,
                    "discontinued": rng.randint(0, enrolled),
                    "crf_pages": rng.randint(0, 400),
                    "queries_opened": queries_opened,
                    "queries_resolved": queries_resolved,
                    "query_resolution_days": queries_resolved * rng.randint(1, 15),
                    "data_entry_lag_days": lag,
                    "deviations_major": rng.randint(0, 2),
                    "deviations_minor": rng.randint(0, 8),
                    "sae_late": rng.randint(0, 1),
                    "monitoring_visits": rng.randint(0, 2),
                }
            )
    return rows


def csv_text(rows: list[dict], site_names: dict[int, str]) -> str:
    """The upload template's file: its columns (``site_name`` included), a blank lag for none."""
    from performance.forms import CSV_COLUMNS
    from performance.models import VALUE_FIELDS

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        values = ["" if row[field] is None else row[field] for field in VALUE_FIELDS]
        writer.writerow(
            [row["study_site"], site_names[row["study_site"]], f"{row['period']:%Y-%m}", *values]
        )
    return out.getvalue()


def json_item(row: dict) -> str:
    """One row as the API's JSON (``period`` as YYYY-MM, the lag a number or null)."""
    lag = row["data_entry_lag_days"]
    return json.dumps(
        {
            **row,
            "period": f"{row['period']:%Y-%m}",
            "data_entry_lag_days": None if lag is None else float(lag),
        },
        separators=(",", ":"),
    )


def json_bodies(rows: list[dict], limit: int) -> list[str]:
    """The rows as JSON lists of whole study-sites (``MONTHS`` rows each, in order), each
    request as large as fits in ``limit`` bytes (Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE``)."""
    bodies, items, size = [], [], 2
    for start in range(0, len(rows), MONTHS):
        site = ",".join(json_item(row) for row in rows[start : start + MONTHS])
        if items and size + len(site) + 1 > limit:
            bodies.append("[" + ",".join(items) + "]")
            items, size = [], 2
        items.append(site)
        size += len(site) + 1
    bodies.append("[" + ",".join(items) + "]")
    return bodies


COPY_COLUMNS = None  # set in main: study_site_id, period, the values, timestamps, updated_by_id


def copy_text(rows: list[dict], now: datetime.datetime, user_id: int) -> str:
    """The rows as COPY's CSV: empty unquoted field = NULL."""
    from performance.models import VALUE_FIELDS

    out = io.StringIO()
    writer = csv.writer(out)
    stamp = now.isoformat()
    for row in rows:
        values = ["" if row[field] is None else row[field] for field in VALUE_FIELDS]
        writer.writerow(
            [row["study_site"], row["period"].isoformat(), *values, stamp, stamp, user_id]
        )
    return out.getvalue()


# --- the paths ------------------------------------------------------------------------------


def csv_path(lead, text: str):
    from django.db import transaction

    from performance.forms import metric_rows_from_csv
    from performance.services import metric_snapshots_upsert

    started = time.perf_counter()
    rows, _lines = metric_rows_from_csv(text)
    with transaction.atomic():
        result = metric_snapshots_upsert(actor=lead, rows=rows)
    return time.perf_counter() - started, result


def api_path(client, bodies: list[str]):
    started = time.perf_counter()
    answers = []
    for body in bodies:
        response = client.post("/api/v1/metrics/", data=body, content_type="application/json")
        if response.status_code not in (200, 201):
            raise AssertionError(f"POST answered {response.status_code}: {response.content[:500]}")
        answers.append(response.json())
    elapsed = time.perf_counter() - started
    totals = {key: sum(answer[key] for answer in answers) for key in answers[0]}
    return elapsed, totals


def copy_into(table: str, text: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.copy_expert(
            f"COPY {table} ({', '.join(COPY_COLUMNS)}) FROM STDIN WITH (FORMAT csv)",
            io.StringIO(text),
        )


def copy_scratch(text: str) -> float:
    """COPY into a temporary copy of the table (no indexes, no constraints but NOT NULL)."""
    execute("DROP TABLE IF EXISTS bench_scratch")
    execute(f"CREATE TEMP TABLE bench_scratch ({LIKE})")
    started = time.perf_counter()
    copy_into("bench_scratch", text)
    elapsed = time.perf_counter() - started
    execute("DROP TABLE bench_scratch")
    return elapsed


def copy_real(text: str) -> float:
    """COPY into the real (empty) table: its indexes, checks and foreign keys."""
    started = time.perf_counter()
    copy_into(TABLE, text)
    return time.perf_counter() - started


def copy_upsert(text: str) -> float:
    """The upsert floor: COPY into a staging table, one INSERT … ON CONFLICT DO UPDATE."""
    from django.db import transaction

    from performance.models import VALUE_FIELDS

    assignments = ", ".join(
        f"{column} = EXCLUDED.{column}" for column in (*VALUE_FIELDS, "updated_at", "updated_by_id")
    )
    columns = ", ".join(COPY_COLUMNS)
    started = time.perf_counter()
    with transaction.atomic():
        execute(f"CREATE TEMP TABLE bench_staging ({LIKE}) ON COMMIT DROP")
        copy_into("bench_staging", text)
        execute(
            f"INSERT INTO {TABLE} ({columns}) SELECT {columns} FROM bench_staging "
            f"ON CONFLICT (study_site_id, period) DO UPDATE SET {assignments}"
        )
    return time.perf_counter() - started


# --- checks and the table -------------------------------------------------------------------


def check(rows: list[dict], lead, label: str) -> None:
    """100,000 rows stored, and ``SPOT_CHECKS`` random ones equal to what was sent."""
    from performance.models import VALUE_FIELDS, MetricSnapshot

    count = MetricSnapshot.objects.count()
    if count != ROWS:
        raise AssertionError(f"{label}: {count} snapshots stored, expected {ROWS}")
    sample = random.Random(label).sample(rows, SPOT_CHECKS)
    stored = {
        (snapshot.study_site_id, snapshot.period): snapshot
        for snapshot in MetricSnapshot.objects.filter(
            study_site_id__in={row["study_site"] for row in sample}
        )
    }
    for row in sample:
        snapshot = stored[(row["study_site"], row["period"])]
        for field in VALUE_FIELDS:
            if getattr(snapshot, field) != row[field]:
                raise AssertionError(
                    f"{label}: {snapshot} {field} = {getattr(snapshot, field)!r}, "
                    f"sent {row[field]!r}"
                )
        if snapshot.updated_by_id != lead.id:
            raise AssertionError(f"{label}: {snapshot} updated by {snapshot.updated_by_id}")


def profile(title: str, function) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    function()
    profiler.disable()
    print(f"\nProfile: {title}\n", flush=True)
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(30)
    stats.sort_stats("tottime").print_stats(20)


def print_figures(title: str, lines: list[tuple], copy_rate: float) -> None:
    header = ("path", "rows", "seconds", "rows/s", "vs COPY", "target", "result")
    cells = [header]
    for label, rows, seconds, targeted in lines:
        rate = rows / seconds
        cells.append(
            (
                label,
                f"{rows:,}",
                f"{seconds:.2f}",
                f"{rate:,.0f}",
                f"{rate / copy_rate:.3f}x",
                f">= {TARGET:,}/s" if targeted else "",
                ("PASS" if rate >= TARGET else "MISS") if targeted else "",
            )
        )
    widths = [max(len(line[column]) for line in cells) for column in range(len(header))]
    print(f"\n{title}\n")
    for number, line in enumerate(cells):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |")
        if number == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    print(flush=True)


# --- the run --------------------------------------------------------------------------------


def main() -> None:
    global COPY_COLUMNS
    with bench_environment("ingest", database=DATABASE):
        from _common import analyze
        from django.conf import settings
        from django.test import Client
        from django.utils import timezone
        from rest_framework.authtoken.models import Token

        from performance.models import VALUE_FIELDS

        COPY_COLUMNS = (
            "study_site_id",
            "period",
            *VALUE_FIELDS,
            "created_at",
            "updated_at",
            "updated_by_id",
        )
        started = time.perf_counter()
        population = build_population(sites=SITES, coordinators=0, investigators=0)
        lead = population.lead
        study_sites = sorted(population.study_sites, key=lambda study_site: study_site.id)
        site_names = {study_site.id: study_site.site.name for study_site in study_sites}
        ids = [study_site.id for study_site in study_sites]
        months = periods(timezone.localdate())
        first = snapshot_values(ids, months, seed=2026)
        changed = snapshot_values(ids, months, seed=2027)
        texts = {name: csv_text(rows, site_names) for name, rows in (("A", first), ("B", changed))}
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        bodies = {name: json_bodies(rows, limit) for name, rows in (("A", first), ("B", changed))}
        chunks = [
            "[" + ",".join(json_item(row) for row in first[start : start + CHUNK]) + "]"
            for start in range(0, ROWS, CHUNK)
        ]
        largest = max(body.count('"study_site"') for body in bodies["A"])
        now = timezone.now()
        copies = {
            name: copy_text(rows, now, lead.id) for name, rows in (("A", first), ("B", changed))
        }
        client = Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=lead).key}")
        analyze()
        print(
            f"built in {time.perf_counter() - started:.1f} s: {SITES:,} study-sites x {MONTHS} "
            f"months ({months[0]:%Y-%m} to {months[-1]:%Y-%m}) = {ROWS:,} rows; CSV file "
            f"{len(texts['A'].encode()) / 1024**2:.1f} MiB, JSON body "
            f"{sum(map(len, bodies['A'])) / 1024**2:.1f} MiB in {len(bodies['A'])} requests "
            f"of at most {largest:,} rows (DATA_UPLOAD_MAX_MEMORY_SIZE {limit:,} bytes), "
            "COPY text "
            f"{len(copies['A'].encode()) / 1024**2:.1f} MiB",
            flush=True,
        )
        # Warm the path (imports, connections, first-query plans) on a small upload.
        csv_path(lead, csv_text(first[:MONTHS], site_names))
        api_path(client, json_bodies(first[:MONTHS], limit))
        truncate()

        lines: list[tuple] = []

        def record(label: str, seconds: float, note: object = "", targeted: bool = True):
            lines.append((label, ROWS, seconds, targeted))
            print(
                f"{label}: {seconds:.2f} s, {ROWS / seconds:,.0f} rows/s {note} "
                f"(load average {load_average()})",
                flush=True,
            )

        # 1. CSV service.
        seconds, result = csv_path(lead, texts["A"])
        assert result.created == ROWS, result
        record("CSV service: insert", seconds, result)
        check(first, lead, "CSV insert")
        seconds, result = csv_path(lead, texts["A"])
        assert result.unchanged == ROWS, result
        record("CSV service: same file again (unchanged)", seconds, result)
        seconds, result = csv_path(lead, texts["B"])
        assert result.updated + result.unchanged == ROWS and result.created == 0, result
        record("CSV service: changed file (updates)", seconds, result)
        check(changed, lead, "CSV update")

        # 2. API bulk path.
        truncate()
        requests = f"{len(bodies['A'])} requests of <= {largest:,}"
        seconds, totals = api_path(client, bodies["A"])
        assert totals["created"] == ROWS, totals
        record(f"API: insert, {requests}", seconds, totals)
        check(first, lead, "API insert")
        seconds, totals = api_path(client, bodies["A"])
        assert totals["unchanged"] == ROWS, totals
        record("API: same rows again (unchanged)", seconds, totals)
        seconds, totals = api_path(client, bodies["B"])
        assert totals["updated"] + totals["unchanged"] == ROWS, totals
        record("API: changed rows (updates)", seconds, totals)
        check(changed, lead, "API update")
        truncate()
        seconds, totals = api_path(client, chunks)
        assert totals["created"] == ROWS, totals
        record(f"API: insert, {len(chunks)} requests of {CHUNK:,}", seconds, totals)
        check(first, lead, "API chunked insert")

        # 3. COPY.
        truncate()
        copy_seconds = copy_scratch(copies["A"])
        record("COPY into a temp copy of the table", copy_seconds, targeted=False)
        record("COPY into the real empty table", copy_real(copies["A"]), targeted=False)
        check(first, lead, "COPY real")
        truncate()
        record("COPY + INSERT … ON CONFLICT: insert", copy_upsert(copies["A"]), targeted=False)
        check(first, lead, "COPY upsert insert")
        record("COPY + INSERT … ON CONFLICT: update", copy_upsert(copies["B"]), targeted=False)
        check(changed, lead, "COPY upsert update")
        print(f"checked after every path: {ROWS:,} rows, {SPOT_CHECKS} random rows as sent")

        print_figures(
            f"Metrics ingest, {ROWS:,} snapshot rows ({datetime.date.today()}, "
            f"{os.cpu_count()} CPUs, load average {load_average()})",
            lines,
            ROWS / copy_seconds,
        )

        if os.environ.get("BENCH_PROFILE") == "1":
            truncate()
            profile("CSV service, insert", lambda: csv_path(lead, texts["A"]))
            profile("API, changed list (updates)", lambda: api_path(client, bodies["B"]))


if __name__ == "__main__":
    main()
