"""The inbox at scale: ``GET /api/v1/inbox/`` over a table of a million deliveries.

Data (inserted with ``INSERT … SELECT generate_series``, a few seconds): 3 studies, 100 sites
with 5 coordinators and 5 investigators each; 20,000 sent messages over about two years
(a stand-alone pool of 6,000: 10% critical, 50% key, 40% routine "send now"; a digest pool
of 14,000: routine, half of them sharing 30 dedup keys, and info). Per person: stand-alone
messages in-app and by email, digests (in-app and email) with 4 lines each, escalations.

- the measured user: 3,000 stand-alone messages, 1,900 digests (7,600 lines), 100 escalations:
  **5,000 inbox items**, 17,600 delivery rows; of the key/critical ones 0.5% unread and 0.5%
  read but not acknowledged (pinned, with a tenth of the escalations unread), the rest
  acknowledged; a tenth of the routine ones unread;
- a small user for the query count: 40 stand-alone, 15 digests, 5 escalations (60 items);
- 820 others with 300 stand-alone messages and 100 digests each: 1,200 rows apiece.

In total just over 1,000,000 rows in ``comms_delivery``, then ``VACUUM ANALYZE``.

Measured in-process through ``django.test.Client`` with a session (``force_login``), as a
browser or the htmx page would call it, ``DEBUG = False``: page 1 of ``GET /api/v1/inbox/``
(PRODUCT.md's order, 50 items, digest lines included) against the peer, a bare DRF
``ListAPIView`` over the same table — ``Delivery.objects.filter(recipient=user).order_by("id")``,
a plain ``ModelSerializer``, the same page size and pagination (with its count). Requests
alternate between the two so both see the same load; 3 warm-ups, then BENCH_RUNS (60) each.
The query count of one request is taken for the 5,000-item user and the 60-item user: it must
be the same. BENCH_EXPLAIN=1 prints ``EXPLAIN ANALYZE`` of the inbox's queries.

``python bench/inbox.py`` from the repository root (or ``make bench``).
"""

from __future__ import annotations

import datetime
import os
import sys
import time
import types

from _common import (
    Row,
    analyze,
    bench_environment,
    build_population,
    copied_from_message,
    load_average,
    median,
    percentile,
    print_table,
    verdict,
)

RUNS = int(os.environ.get("BENCH_RUNS", "60"))
WARMUPS = int(os.environ.get("BENCH_WARMUPS", "3"))
EXPLAIN = os.environ.get("BENCH_EXPLAIN") == "1"
STANDALONE_POOL, DIGEST_POOL = 6_000, 14_000
OTHERS = 820
LINES_PER_DIGEST = 4
# (stand-alone messages, digests, escalations) per person
PROFILE_TARGET = (3_000, 1_900, 100)
PROFILE_SMALL = (40, 15, 5)
PROFILE_OTHER = (300, 100, 0)
TARGET_P95_MS, TARGET_RATIO = 50.0, 2.0
INBOX_PATH, BARE_PATH = "/api/v1/inbox/", "/bench/deliveries/"


# --- data -----------------------------------------------------------------------------------

MESSAGES_SQL = """
INSERT INTO comms_message (study_id, category, tier, subject, body, sender_id,
    sender_organization_id, audience, dedup_key, send_now, requires_ack, ack_due_at, status,
    created_at, submitted_at, sent_at, endorsement_requested, recipients_count)
SELECT studies.ids[1 + g %% array_length(studies.ids, 1)],
    kind.category, kind.tier,
    kind.category || ' ' || g, 'Bench message ' || g || ' for {site_name}.',
    %(sender)s, %(sender_organization)s, '{"all_sites": true}'::jsonb,
    CASE WHEN g >= %(pool)s AND kind.tier = 'routine' AND g %% 2 = 0
         THEN 'visit-' || (g %% 30) ELSE '' END,
    g < %(pool)s AND kind.tier = 'routine',
    kind.tier IN ('critical', 'key'),
    CASE WHEN kind.tier IN ('critical', 'key') THEN sent.at + interval '48 hours' END,
    'sent', sent.at, sent.at, sent.at, false, 1000
FROM generate_series(0, %(total)s - 1) AS g
CROSS JOIN (SELECT array_agg(id ORDER BY id) AS ids FROM trialhub_study) AS studies
CROSS JOIN LATERAL (SELECT %(now)s::timestamptz - (%(total)s - g) * interval '1 hour' AS at) AS sent
CROSS JOIN LATERAL (
    SELECT CASE WHEN g < %(pool)s THEN
                CASE WHEN g %% 10 = 0 THEN 'critical' WHEN g %% 10 < 6 THEN 'key'
                     ELSE 'routine' END
           ELSE CASE WHEN g %% 5 = 0 THEN 'info' ELSE 'routine' END END AS tier,
           CASE WHEN g < %(pool)s THEN
                CASE WHEN g %% 10 = 0 THEN 'safety' WHEN g %% 10 < 6 THEN 'protocol_amendment'
                     ELSE 'visit_reminder' END
           ELSE CASE WHEN g %% 5 = 0 THEN 'newsletter' ELSE 'query_reminder' END END AS category
) AS kind
"""

# Per person: their study-site on each study, and a salt so people get different messages.
SETUP_SQL = """
CREATE TEMP TABLE bench_pool AS
    SELECT row_number() OVER (PARTITION BY send_now OR tier IN ('critical', 'key')
                              ORDER BY id) - 1 AS idx,
           (send_now OR tier IN ('critical', 'key')) AS standalone,
           CASE WHEN tier = 'key' THEN row_number() OVER (PARTITION BY tier = 'key' ORDER BY id) - 1
           END AS key_idx,
           id, study_id, sent_at, requires_ack, ack_due_at, tier
    FROM comms_message;
CREATE INDEX ON bench_pool (standalone, idx);
CREATE INDEX ON bench_pool (key_idx);
CREATE TEMP TABLE bench_user_site AS
    SELECT DISTINCT ON (user_id, study_id) user_id, study_id, study_site_id
    FROM trialhub_roleassignment WHERE study_site_id IS NOT NULL
    ORDER BY user_id, study_id, study_site_id;
CREATE INDEX ON bench_user_site (user_id, study_id);
CREATE TEMP TABLE bench_profile (user_id bigint, standalone int, digests int, escalations int,
                                 salt int);
"""

STANDALONE_SQL = """
INSERT INTO comms_delivery (kind, message_id, recipient_id, study_site_id, channel, state,
    via_digest, throttled, due_at, delivered_at, read_at, acknowledged_at /*COPIED_COLUMNS*/)
SELECT 'message', m.id, p.user_id, us.study_site_id, ch.channel, s.state, false, false,
    m.sent_at, m.sent_at,
    CASE WHEN s.state IN ('read', 'acknowledged') THEN m.sent_at + interval '2 hours' END,
    CASE WHEN s.state = 'acknowledged' THEN m.sent_at + interval '3 hours' END
    /*COPIED_VALUES*/
FROM bench_profile p
CROSS JOIN LATERAL generate_series(0, p.standalone - 1) AS k
JOIN bench_pool m ON m.standalone AND m.idx = (k + p.salt) %% %(pool)s
JOIN bench_user_site us ON us.user_id = p.user_id AND us.study_id = m.study_id
CROSS JOIN (VALUES ('in_app'), ('email')) AS ch (channel)
CROSS JOIN LATERAL (
    SELECT CASE WHEN ch.channel = 'email' THEN 'delivered'
                WHEN m.requires_ack THEN
                    CASE WHEN k %% 200 = 0 THEN 'delivered' WHEN k %% 200 = 1 THEN 'read'
                         ELSE 'acknowledged' END
                WHEN k %% 10 = 0 THEN 'delivered' ELSE 'read' END AS state
) AS s
"""

DIGESTS_SQL = """
INSERT INTO comms_digest (recipient_id, window_at, created_at, items_count, lines_count)
SELECT p.user_id, w.at, w.at, %(lines)s, %(lines)s - 1
FROM bench_profile p
CROSS JOIN LATERAL generate_series(0, p.digests - 1) AS d
CROSS JOIN LATERAL (SELECT date_trunc('hour', %(now)s::timestamptz) - d * interval '1 day'
                    - interval '16 hours' AS at) AS w
"""

DIGEST_ROWS_SQL = """
INSERT INTO comms_delivery (kind, message_id, recipient_id, study_site_id, digest_id, channel,
    state, via_digest, throttled, due_at, delivered_at, read_at /*COPIED_COLUMNS*/)
SELECT 'digest', NULL, dg.recipient_id, NULL, dg.id, ch.channel,
    CASE WHEN ch.channel = 'in_app' AND dg.age >= 5 THEN 'read' ELSE 'delivered' END,
    false, false, dg.window_at, dg.window_at,
    CASE WHEN ch.channel = 'in_app' AND dg.age >= 5 THEN dg.window_at + interval '1 hour' END
    /*COPIED_VALUES*/
FROM (SELECT id, recipient_id, window_at,
             row_number() OVER (PARTITION BY recipient_id ORDER BY window_at DESC) - 1 AS age
      FROM comms_digest) AS dg
CROSS JOIN (VALUES ('in_app'), ('email')) AS ch (channel)
"""

LINES_SQL = """
INSERT INTO comms_delivery (kind, message_id, recipient_id, study_site_id, digest_id, channel,
    state, via_digest, throttled, due_at, delivered_at /*COPIED_COLUMNS*/)
SELECT 'message', m.id, dg.recipient_id, us.study_site_id, dg.id, 'in_app', 'delivered',
    true, false, dg.window_at, dg.window_at /*COPIED_VALUES*/
FROM (SELECT d.id, d.recipient_id, d.window_at, p.salt,
             row_number() OVER (PARTITION BY d.recipient_id ORDER BY d.window_at) - 1 AS n
      FROM comms_digest d JOIN bench_profile p ON p.user_id = d.recipient_id) AS dg
CROSS JOIN generate_series(0, %(lines)s - 1) AS l
JOIN bench_pool m ON NOT m.standalone
    AND m.idx = (dg.n * %(lines)s + l + dg.salt) %% %(digest_pool)s
JOIN bench_user_site us ON us.user_id = dg.recipient_id AND us.study_id = m.study_id
"""

ESCALATIONS_SQL = """
INSERT INTO comms_delivery (kind, message_id, recipient_id, study_site_id, channel, state,
    via_digest, throttled, due_at, delivered_at, read_at, escalated_at /*COPIED_COLUMNS*/)
SELECT 'escalation', m.id, p.user_id, us.study_site_id, ch.channel,
    CASE WHEN ch.channel = 'in_app' AND e %% 10 = 0 THEN 'delivered'
         WHEN ch.channel = 'in_app' THEN 'read' ELSE 'delivered' END,
    false, false, m.sent_at + interval '48 hours', m.sent_at + interval '48 hours',
    CASE WHEN ch.channel = 'in_app' AND e %% 10 <> 0 THEN m.sent_at + interval '50 hours' END,
    NULL /*COPIED_VALUES*/
FROM bench_profile p
CROSS JOIN LATERAL generate_series(0, p.escalations - 1) AS e
JOIN bench_pool m ON m.key_idx = (e * 7 + p.salt) %% %(keys)s
JOIN bench_user_site us ON us.user_id = p.user_id AND us.study_id = m.study_id
CROSS JOIN (VALUES ('in_app'), ('email')) AS ch (channel)
"""


# Indexes of the delivery table that no constraint owns (all but the primary key).
INDEXES_SQL = """
SELECT indexname, indexdef FROM pg_indexes
WHERE tablename = 'comms_delivery'
  AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conindid <> 0)
"""


def fill(population, target, small, others) -> int:
    """Insert the messages, digests and deliveries; return the number of delivery rows."""
    from django.db import connection, transaction
    from django.utils import timezone

    now = timezone.now()
    params = {
        "now": now,
        "pool": STANDALONE_POOL,
        "digest_pool": DIGEST_POOL,
        "total": STANDALONE_POOL + DIGEST_POOL,
        "lines": LINES_PER_DIGEST,
        "keys": STANDALONE_POOL // 2,  # g % 10 in 1..5 of the stand-alone pool
        "sender": population.lead.id,
        "sender_organization": population.sponsor.id,
    }
    profiles = [(target.id, *PROFILE_TARGET), (small.id, *PROFILE_SMALL)]
    profiles += [(user.id, *PROFILE_OTHER) for user in others]
    with transaction.atomic(), connection.cursor() as cursor:
        # Bulk loading: the secondary indexes are dropped and built again afterwards with
        # their own definitions (faster than maintaining them row by row; the unique ones
        # check the data when they are rebuilt).
        cursor.execute(INDEXES_SQL)
        indexes = cursor.fetchall()
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute(MESSAGES_SQL, params)
        cursor.execute(SETUP_SQL)
        cursor.executemany(
            "INSERT INTO bench_profile VALUES (%s, %s, %s, %s, %s)",
            [(*profile, position * 37) for position, profile in enumerate(profiles)],
        )
        for sql, tier, ack_due_at in (
            (STANDALONE_SQL, "m.tier", "CASE WHEN m.requires_ack THEN m.ack_due_at END"),
            (DIGESTS_SQL, "", ""),
            (DIGEST_ROWS_SQL, "'routine'", "NULL"),
            (LINES_SQL, "m.tier", "NULL"),
            (ESCALATIONS_SQL, "m.tier", "NULL"),
        ):
            cursor.execute(copied_from_message(sql, tier, ack_due_at), params)
    with transaction.atomic(), connection.cursor() as cursor:
        # After the commit: the foreign keys are checked there (deferred), not during a build.
        for _name, definition in indexes:
            cursor.execute(definition)
        cursor.execute("SELECT count(*) FROM comms_delivery")
        total = cursor.fetchone()[0]
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE comms_delivery")
    analyze()
    return total


# --- the peer: a bare DRF list over the same table ------------------------------------------


def install_bare_list() -> None:
    """Mount a plain ``ListAPIView`` over ``Delivery`` at BARE_PATH beside the project's URLs."""
    from django.conf import settings
    from django.urls import clear_url_caches, include, path
    from rest_framework import generics, serializers

    from comms.models import Delivery

    class BareDeliverySerializer(serializers.ModelSerializer):
        class Meta:
            model = Delivery
            fields = [
                "id",
                "kind",
                "message",
                "digest",
                "channel",
                "state",
                "due_at",
                "delivered_at",
                "read_at",
                "acknowledged_at",
            ]

    class BareDeliveryList(generics.ListAPIView):
        serializer_class = BareDeliverySerializer
        filter_backends: list = []

        def get_queryset(self):
            return Delivery.objects.filter(recipient=self.request.user).order_by("id")

    module = types.ModuleType("bench_inbox_urls")
    module.urlpatterns = [
        path(BARE_PATH.strip("/") + "/", BareDeliveryList.as_view()),
        path("", include(settings.ROOT_URLCONF)),
    ]
    sys.modules[module.__name__] = module
    settings.ROOT_URLCONF = module.__name__
    clear_url_caches()


# --- measuring ------------------------------------------------------------------------------


def get(client, path: str) -> dict:
    response = client.get(path, HTTP_ACCEPT="application/json")
    if response.status_code != 200:
        raise AssertionError(f"GET {path} answered {response.status_code}")
    return response.json()


def page_with_digests(client) -> str:
    """The first inbox page that holds digest items (their lines are one more query)."""
    for number in range(1, 11):
        path = f"{INBOX_PATH}?page={number}"
        if any(item["is_digest"] for item in get(client, path)["results"]):
            return path
    raise AssertionError("no digest on the first ten pages")


def query_count(client, path: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        get(client, path)
    return len(captured.captured_queries)


def explain(user) -> None:
    """EXPLAIN ANALYZE of the inbox's count and page queries for ``user``."""
    from django.db import connection

    from comms.selectors import inbox_for_user

    items = inbox_for_user(user=user)
    for label, queryset in (("count", items.order_by()), ("page 1", items[:50])):
        sql, params = (
            queryset.values("id").query.sql_with_params()
            if label == "count"
            else queryset.query.sql_with_params()
        )
        if label == "count":
            sql = f"SELECT count(*) FROM ({sql}) AS counted"
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        print(f"\nEXPLAIN ANALYZE inbox {label}:\n{plan}\n", flush=True)


def main() -> None:
    with bench_environment("inbox"):
        from django.test import Client

        started = time.perf_counter()
        population = build_population(sites=100, coordinators=5, investigators=5, studies=3)
        target, small, *rest = population.users
        total = fill(population, target, small, rest[:OTHERS])
        print(
            f"built in {time.perf_counter() - started:.1f} s: {total} deliveries, "
            f"{len(population.users)} site people; measured user: {sum(PROFILE_TARGET)} items",
            flush=True,
        )
        install_bare_list()
        clients = {}
        for name, user in (("target", target), ("small", small)):
            clients[name] = Client()
            clients[name].force_login(user)
        client = clients["target"]
        inbox_page = get(client, INBOX_PATH)
        small_page = get(clients["small"], INBOX_PATH)
        bare_page = get(client, BARE_PATH)
        if inbox_page["count"] != sum(PROFILE_TARGET):
            raise AssertionError(f"the inbox counts {inbox_page['count']} items")
        if small_page["count"] != sum(PROFILE_SMALL):
            raise AssertionError(f"the small inbox counts {small_page['count']} items")
        digests_on_page = sum(item["is_digest"] for item in inbox_page["results"])
        small_digests = sum(item["is_digest"] for item in small_page["results"])
        pinned = sum(
            item["requires_ack"] and item["state"] != "acknowledged"
            for item in inbox_page["results"]
        )
        print(
            f"page 1: inbox {len(inbox_page['results'])} items of {inbox_page['count']} "
            f"({pinned} pinned, {digests_on_page} digests with lines); small user's page "
            f"{len(small_page['results'])} items ({small_digests} digests); bare list "
            f"{len(bare_page['results'])} rows of {bare_page['count']}",
            flush=True,
        )
        if EXPLAIN:
            explain(target)

        # Pages holding digests, so that both counts include the digest lines' query.
        queries = {
            "inbox": query_count(client, page_with_digests(client)),
            "inbox_small": query_count(clients["small"], page_with_digests(clients["small"])),
            "bare": query_count(client, BARE_PATH),
            "bare_small": query_count(clients["small"], BARE_PATH),
        }
        for _ in range(WARMUPS):
            get(client, INBOX_PATH)
            get(client, BARE_PATH)
        timings: dict[str, list[float]] = {"inbox": [], "bare": []}
        for _ in range(RUNS):
            for name, path in (("inbox", INBOX_PATH), ("bare", BARE_PATH)):
                begun = time.perf_counter()
                get(client, path)
                timings[name].append((time.perf_counter() - begun) * 1000)
        print(f"measured {RUNS} runs each; load average {load_average()}", flush=True)

        p50 = {name: median(values) for name, values in timings.items()}
        p95 = {name: percentile(values, 0.95) for name, values in timings.items()}
        ratio50, ratio95 = p50["inbox"] / p50["bare"], p95["inbox"] / p95["bare"]
        constant = queries["inbox"] == queries["inbox_small"]
        print_table(
            f"GET /api/v1/inbox/ page 1 for a user with {sum(PROFILE_TARGET)} items among "
            f"{total} deliveries, {RUNS} runs ({datetime.date.today()})",
            [
                Row(
                    "p50 (ms)",
                    f"{p50['inbox']:.1f}",
                    f"{p50['bare']:.1f}",
                    f"{ratio50:.2f}x",
                    f"<= {TARGET_RATIO:.0f}x bare",
                    verdict(ratio50 <= TARGET_RATIO),
                ),
                Row(
                    "p95 (ms)",
                    f"{p95['inbox']:.1f}",
                    f"{p95['bare']:.1f}",
                    f"{ratio95:.2f}x",
                    f"<= {TARGET_P95_MS:.0f} ms",
                    verdict(p95["inbox"] <= TARGET_P95_MS),
                ),
                Row(
                    "queries (5,000 / 60 items)",
                    f"{queries['inbox']} / {queries['inbox_small']}",
                    f"{queries['bare']} / {queries['bare_small']}",
                    "",
                    "constant",
                    verdict(constant),
                ),
            ],
            peer_title="bare ListAPIView",
        )


if __name__ == "__main__":
    main()
