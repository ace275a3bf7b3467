"""Fan-out: one key message to 3,000 recipients, from the call to commit.

Ours: ``message_send`` of a draft protocol amendment (the sponsor lead is Accountable, so it
goes out at once through ``message_dispatch``): the audience resolved in one query, one
``bulk_create`` of 6,000 deliveries (in-app and email for each of 3,000 people), the message
marked sent, one commit, then one ``deliver_message`` task published after commit. Timed from
the call to its return (commit and publish included).

Peer, in the same run: the naive pattern of django-notifications-hq — for each recipient one
``Delivery.objects.create()`` (autocommit, as ``notify.send`` does) and one task published at
once with ``apply_async`` to the real Redis broker, on a throwaway queue that nobody consumes
(deleted afterwards). The peer writes only the in-app row per recipient (3,000 rows to our
6,000), so the ratio is conservative. Runs alternate ours/peer so both see the same load.

Population: 500 study-sites of one study, 3 coordinators and 3 investigators each, in five
time zones, quiet hours off (a key message goes now everywhere). BENCH_RUNS (7) and
BENCH_WARMUPS (1) change the repetitions.

``python bench/fanout.py`` from the repository root (or ``make bench``).
"""

from __future__ import annotations

import datetime
import os
import time

from _common import (
    Row,
    bench_environment,
    build_population,
    load_average,
    median,
    print_table,
    queues_delete,
    verdict,
)

RUNS = int(os.environ.get("BENCH_RUNS", "7"))
WARMUPS = int(os.environ.get("BENCH_WARMUPS", "1"))
SITES, COORDINATORS, INVESTIGATORS = 500, 3, 3
THROWAWAY_QUEUE = "bench-fanout-naive"  # nobody consumes it; deleted at the end
TARGET_MS, TARGET_RATIO = 100.0, 10.0


def ours(population, draft) -> float:
    from comms.services import message_send

    started = time.perf_counter()
    message_send(message=draft, actor=population.lead)
    return (time.perf_counter() - started) * 1000


def naive(population, number: int) -> float:
    """django-notifications-hq's shape: one row and one task per recipient, each at once."""
    from django.utils import timezone

    from comms.models import ACK_WINDOW, Channel, Delivery, Message, MessageStatus, Tier
    from comms.services.audience import audience_recipients
    from comms.tasks import deliver_message

    started = time.perf_counter()
    now = timezone.now()
    audience = {"all_sites": True}
    message = Message.objects.create(
        study=population.study,
        category="protocol_amendment",
        tier=Tier.KEY,
        subject=f"Naive amendment {number}",
        body="Please read protocol amendment 4.",
        sender=population.lead,
        sender_organization=population.sponsor,
        audience=audience,
        requires_ack=True,
        ack_due_at=now + ACK_WINDOW[Tier.KEY],
        status=MessageStatus.SENT,
        submitted_at=now,
        sent_at=now,
    )
    recipients = audience_recipients(
        study_id=population.study.id, audience=audience, on=timezone.localdate(now)
    )
    for recipient in recipients:
        delivery = Delivery.objects.create(
            message=message,
            recipient_id=recipient.user_id,
            study_site_id=recipient.study_site_id,
            channel=Channel.IN_APP,
            due_at=now,
        )
        deliver_message.apply_async(args=[delivery.id], queue=THROWAWAY_QUEUE)
    message.recipients_count = len(recipients)
    message.save(update_fields=["recipients_count"])
    return (time.perf_counter() - started) * 1000


def main() -> None:
    with bench_environment("fanout"):
        from _common import analyze

        from comms.models import Delivery
        from comms.services import message_draft_create
        from comms.tasks import PRIORITY_QUEUE

        queues_delete(PRIORITY_QUEUE, THROWAWAY_QUEUE)
        started = time.perf_counter()
        population = build_population(
            sites=SITES, coordinators=COORDINATORS, investigators=INVESTIGATORS
        )
        analyze()
        recipients = SITES * (COORDINATORS + INVESTIGATORS)
        print(
            f"built in {time.perf_counter() - started:.1f} s: {SITES} study-sites, "
            f"{recipients} recipients; {WARMUPS} warm-up(s), {RUNS} timed runs each",
            flush=True,
        )
        drafts = [
            message_draft_create(
                actor=population.lead,
                study=population.study,
                category="protocol_amendment",
                subject=f"Protocol amendment {number}",
                body="Please read protocol amendment 4 before your next visit.",
                audience={"all_sites": True},
                ack_due_at=None,
            )
            for number in range(WARMUPS + RUNS)
        ]
        timings: dict[str, list[float]] = {"ours": [], "naive": []}
        for number, draft in enumerate(drafts):
            ours_ms = ours(population, draft)
            naive_ms = naive(population, number)
            if number >= WARMUPS:
                timings["ours"].append(ours_ms)
                timings["naive"].append(naive_ms)
            print(f"run {number}: ours {ours_ms:.1f} ms, naive {naive_ms:.1f} ms", flush=True)

        # What each way wrote and published, checked before the figures are believed.
        rows_per_send = {
            draft.pk: Delivery.objects.filter(message_id=draft.pk).count() for draft in drafts
        }
        held = queues_delete(PRIORITY_QUEUE, THROWAWAY_QUEUE)
        expected_rows = recipients * 2
        if set(rows_per_send.values()) != {expected_rows}:
            raise AssertionError(f"ours wrote {rows_per_send}, expected {expected_rows} each")
        if held[PRIORITY_QUEUE] != len(drafts):
            raise AssertionError(f"ours published {held[PRIORITY_QUEUE]} tasks, not one a send")
        if held[THROWAWAY_QUEUE] != len(drafts) * recipients:
            raise AssertionError(f"naive published {held[THROWAWAY_QUEUE]} tasks")
        print(
            f"checked: each send wrote {expected_rows} deliveries and published 1 task; each "
            f"naive run wrote {recipients} rows and published {recipients} tasks "
            f"(queues deleted: {held}); load average {load_average()}"
        )

        ours_median, naive_median = median(timings["ours"]), median(timings["naive"])
        ratio = naive_median / ours_median
        print_table(
            f"Fan-out of one key message to {recipients} recipients, median of {RUNS} runs "
            f"({datetime.date.today()})",
            [
                Row(
                    "send → commit (ms)",
                    f"{ours_median:.1f}",
                    f"{naive_median:.1f}",
                    f"{ratio:.1f}x",
                    f"<= {TARGET_MS:.0f} ms",
                    verdict(ours_median <= TARGET_MS),
                ),
                Row(
                    "naive / ours",
                    "",
                    "",
                    f"{ratio:.1f}x",
                    f">= {TARGET_RATIO:.0f}x",
                    verdict(ratio >= TARGET_RATIO),
                ),
                Row(
                    "min / max (ms)",
                    f"{min(timings['ours']):.1f} / {max(timings['ours']):.1f}",
                    f"{min(timings['naive']):.1f} / {max(timings['naive']):.1f}",
                    "",
                    "",
                    "",
                ),
                Row(
                    "rows written, tasks published",
                    f"{expected_rows}, 1",
                    f"{recipients}, {recipients}",
                    "",
                    "",
                    "",
                ),
            ],
            peer_title="naive (row + task per recipient)",
        )


if __name__ == "__main__":
    main()
