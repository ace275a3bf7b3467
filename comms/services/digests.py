"""Folding routine and info deliveries into digests when their window comes.

The due-time rows are the schedule: a delivery waiting for a digest is ``pending`` with
``via_digest`` and ``due_at`` = its window. ``digests_build`` (run by the beat sweep) takes
the due rows under ``SELECT … FOR UPDATE SKIP LOCKED``, so sweeps running at once split the
work, and one that runs late (beat was down) catches up with every window it missed.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from functools import partial

from django.db import connection, transaction
from django.db.models import Case, CharField, Count, OuterRef, Subquery, Value, When
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from comms.models import Channel, Delivery, DeliveryKind, DeliveryState, Digest, Message

DIGEST_BATCH = 5000  # deliveries locked per transaction
EMAIL_TASK_DIGESTS = 500  # digests per email task


def digests_build(*, now: datetime.datetime | None = None, batch: int = DIGEST_BATCH) -> int:
    """Build every digest due by ``now``; return how many digests were created. Each batch
    is its own transaction; digest emails are enqueued after each commit."""
    now = now or timezone.now()
    built = 0
    while True:
        created, more = _build_batch(now, batch)
        built += created
        if not more:
            return built


@transaction.atomic
def _build_batch(now: datetime.datetime, batch: int) -> tuple[int, bool]:
    """One batch: returns (digests created, whether more rows may be due)."""
    rows = list(
        Delivery.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(
            kind=DeliveryKind.MESSAGE,
            via_digest=True,
            state=DeliveryState.PENDING,
            due_at__lte=now,
        )
        # Oldest window first, then by recipient (a window's rows stay together): the
        # partial index of pending rows serves this order, so each batch reads its own rows
        # rather than scanning past the ones earlier batches delivered (bench/digest.py).
        .order_by("due_at", "recipient_id", "id")
        .values_list(
            "id",
            "recipient_id",
            "due_at",
            "recipient__email",
            "message_id",
        )[: batch + 1]
    )
    if not rows:
        return 0, False
    more = len(rows) > batch
    if more:
        # Never split one recipient's window over two batches: its digest is built whole.
        last = rows[batch - 1][1:3]
        rows = [row for row in rows[:batch] if row[1:3] != last] or rows[:batch]
    # Each message's line key: a dedup key on a study is one line (comms.rendering).
    line_keys = {
        message_id: (study_id, dedup_key) if dedup_key else (message_id,)
        for message_id, study_id, dedup_key in Message.objects.filter(
            id__in={row[4] for row in rows}
        ).values_list("id", "study_id", "dedup_key")
    }
    groups: dict[tuple[int, datetime.datetime], list[int]] = defaultdict(list)
    lines: dict[tuple[int, datetime.datetime], set[tuple]] = defaultdict(set)
    emails: dict[int, str] = {}
    for delivery_id, recipient_id, due_at, email, message_id in rows:
        groups[recipient_id, due_at].append(delivery_id)
        lines[recipient_id, due_at].add(line_keys[message_id])
        emails[recipient_id] = email
    # A window already built (its rows were split over batches or sweeps) is not a new digest.
    existing = _digest_ids(groups)
    Digest.objects.bulk_create(
        (
            Digest(
                recipient_id=recipient,
                window_at=window,
                created_at=now,
                items_count=len(groups[recipient, window]),
                lines_count=len(lines[recipient, window]),
            )
            for recipient, window in groups
            if (recipient, window) not in existing
        ),
        ignore_conflicts=True,
        batch_size=2000,
    )
    digest_ids = _digest_ids(groups)
    _fold_lines(groups, digest_ids, now)
    if existing:
        _count_lines(existing)  # counted afresh over all their lines, old and new
    _digest_deliveries(digest_ids, emails, now)
    for start in range(0, len(digest_ids), EMAIL_TASK_DIGESTS):
        chunk = list(digest_ids.values())[start : start + EMAIL_TASK_DIGESTS]
        transaction.on_commit(partial(_enqueue_emails, chunk))
    return len(digest_ids) - len(existing), more


def _fold_lines(groups, digest_ids, now: datetime.datetime) -> None:
    """Mark the batch's lines delivered in their digest: one ``UPDATE … FROM unnest`` joined
    on the primary key, whatever PostgreSQL knows of the young digest table (a correlated
    lookup of each line's digest was planned as a scan of that table per line when its
    statistics were stale: minutes instead of seconds for 200,000 lines, bench/digest.py)."""
    line_ids, line_digests = [], []
    for key, ids in groups.items():
        line_ids.extend(ids)
        line_digests.extend([digest_ids[key]] * len(ids))
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} AS line
            SET digest_id = folded.digest_id, state = %s, delivered_at = %s
            FROM unnest(%s::bigint[], %s::bigint[]) AS folded (id, digest_id)
            WHERE line.id = folded.id
            """,  # noqa: S608 - the table name is the model's, the values are parameters
            [DeliveryState.DELIVERED.value, now, line_ids, line_digests],
        )


def _digest_ids(groups) -> dict[tuple[int, datetime.datetime], int]:
    recipients = {recipient for recipient, _window in groups}
    windows = {window for _recipient, window in groups}
    found = Digest.objects.filter(recipient_id__in=recipients, window_at__in=windows).values_list(
        "recipient_id", "window_at", "id"
    )
    return {
        (recipient, window): pk for recipient, window, pk in found if (recipient, window) in groups
    }


def _count_lines(digest_ids: dict) -> None:
    """Store each digest's item and line counts (a dedup key on a study is one line)."""
    line_key = Case(
        When(message__dedup_key="", then=Concat(Value("m"), Cast("message_id", CharField()))),
        default=Concat(Cast("message__study_id", CharField()), Value(":"), "message__dedup_key"),
        output_field=CharField(),
    )
    lines = (
        Delivery.objects.filter(digest_id=OuterRef("pk"), kind=DeliveryKind.MESSAGE)
        .order_by()
        .values("digest_id")
    )
    Digest.objects.filter(id__in=list(digest_ids.values())).update(
        items_count=Subquery(lines.annotate(n=Count("id")).values("n")[:1]),
        lines_count=Subquery(lines.annotate(n=Count(line_key, distinct=True)).values("n")[:1]),
    )


def _digest_deliveries(digest_ids, emails, now: datetime.datetime) -> None:
    """The digest's own deliveries: in-app (delivered now) and email (sent by a task)."""
    deliveries = []
    for key, digest_id in digest_ids.items():
        recipient_id = key[0]
        deliveries.append(
            Delivery(
                kind=DeliveryKind.DIGEST,
                digest_id=digest_id,
                recipient_id=recipient_id,
                channel=Channel.IN_APP,
                state=DeliveryState.DELIVERED,
                due_at=now,
                delivered_at=now,
            )
        )
        if emails.get(recipient_id):
            deliveries.append(
                Delivery(
                    kind=DeliveryKind.DIGEST,
                    digest_id=digest_id,
                    recipient_id=recipient_id,
                    channel=Channel.EMAIL,
                    due_at=now,
                )
            )
    Delivery.objects.bulk_create(deliveries, ignore_conflicts=True, batch_size=5000)


def _enqueue_emails(digest_ids: list[int]) -> None:
    from comms.tasks import digest_emails_enqueue

    digest_emails_enqueue(digest_ids=digest_ids)
