"""Noise: stand-alone notifications a site's people get per week, on the demo's message mix,
against one notification per message — and no key message held back on the way.

Data: ``manage.py seed_demo`` on a database of its own: the demo's six weeks of message
history (``trialhub/management/commands/_demo_messages.py``), replayed through the comms
services with a backdated clock — routine floods with duplicates and "send now" reminders,
key messages (some acknowledged late, one escalated), a safety communication, approvals.

Counted for the people of the sites (members of site organisations), in-app — the email
channel follows the same pattern (a digest email per digest, an email per stand-alone item):

- **ours**: what reached them alone — stand-alone message deliveries (critical, key, routine
  "send now" within the throttle), one per digest (a digest that is still to come, for routine
  deliveries waiting for tomorrow's window, counts as one at its window), and escalations;
- **peer**: one notification per message and recipient (every message delivery, whatever its
  tier), plus the same escalations.

A notification's week is the ISO week (UTC) of when it reached the recipient (ours:
``delivered_at``, or ``due_at`` while pending) or of the message's ``sent_at`` (peer). Site:
the recipient's organisation's site.

Key and critical message deliveries: delivered at the instant the message was sent, or held
to the end of the site's quiet hours (``due_at`` after ``sent_at``: reported separately, with
the longest hold); any other gap, or a key/critical delivery folded into a digest or
throttled, is a delay and fails the target.

``python bench/noise.py`` from the repository root (or ``make bench``).
"""

from __future__ import annotations

import datetime
import io
import statistics
import time
from collections import Counter, defaultdict

from _common import Row, bench_environment, load_average, print_table, queues_delete, verdict

TARGET_REDUCTION = 0.80
INSTANT = datetime.timedelta(seconds=1)


def week(at: datetime.datetime) -> str:
    year, number, _day = at.astimezone(datetime.UTC).isocalendar()
    return f"{year}-W{number:02}"


def site_people() -> dict[int, str]:
    """Site name by user id, for the members of site organisations."""
    from trialhub.models import Membership, OrganizationKind

    return dict(
        Membership.objects.filter(organization__kind=OrganizationKind.SITE).values_list(
            "user_id", "organization__site__name"
        )
    )


def notifications(people: dict[int, str]) -> tuple[Counter, Counter, Counter, Counter]:
    """(ours, peer) notifications per (site, week), and (ours, peer) by tier or kind."""
    from django.db.models import Q

    from comms.models import Channel, Delivery, DeliveryKind, DeliveryState

    in_app = Delivery.objects.filter(channel=Channel.IN_APP, recipient_id__in=list(people))
    ours: Counter = Counter()
    peer: Counter = Counter()
    kinds: Counter = Counter()
    alone = in_app.filter(
        Q(kind=DeliveryKind.MESSAGE, via_digest=False)
        | Q(kind__in=(DeliveryKind.DIGEST, DeliveryKind.ESCALATION))
    ).values_list("recipient_id", "kind", "message__tier", "delivered_at", "due_at")
    for recipient_id, kind, tier, delivered_at, due_at in alone:
        ours[people[recipient_id], week(delivered_at or due_at)] += 1
        kinds[tier if kind == DeliveryKind.MESSAGE else kind] += 1
    # Routine deliveries still waiting for a window: one digest each (recipient, window).
    waiting = (
        in_app.filter(kind=DeliveryKind.MESSAGE, via_digest=True, state=DeliveryState.PENDING)
        .values_list("recipient_id", "due_at")
        .distinct()
    )
    for recipient_id, due_at in waiting:
        ours[people[recipient_id], week(due_at)] += 1
        kinds["digest (to come)"] += 1
    peer_kinds: Counter = Counter()
    messages = in_app.filter(kind=DeliveryKind.MESSAGE).values_list(
        "recipient_id", "message__sent_at", "message__tier"
    )
    for recipient_id, sent_at, tier in messages:
        peer[people[recipient_id], week(sent_at)] += 1
        peer_kinds[tier] += 1
    escalations = in_app.filter(kind=DeliveryKind.ESCALATION).values_list(
        "recipient_id", "delivered_at", "due_at"
    )
    for recipient_id, delivered_at, due_at in escalations:
        peer[people[recipient_id], week(delivered_at or due_at)] += 1
        peer_kinds[DeliveryKind.ESCALATION] += 1
    return ours, peer, kinds, peer_kinds


def key_timing(people: dict[int, str]) -> dict:
    """How the key and critical message deliveries to site people were timed."""
    from comms.models import ACK_TIERS, Channel, Delivery, DeliveryKind

    rows = Delivery.objects.filter(
        kind=DeliveryKind.MESSAGE,
        channel=Channel.IN_APP,
        message__tier__in=ACK_TIERS,
        recipient_id__in=list(people),
    ).values_list("message__sent_at", "due_at", "delivered_at", "via_digest", "throttled")
    timing = {"total": 0, "immediate": 0, "quiet_hours": 0, "pending": 0, "delayed": 0}
    longest_hold = datetime.timedelta(0)
    for sent_at, due_at, delivered_at, via_digest, throttled in rows:
        timing["total"] += 1
        held = due_at - sent_at
        if via_digest or throttled:
            timing["delayed"] += 1
        elif delivered_at is None:
            timing["pending"] += 1  # due after the replay's "now": quiet hours until morning
            timing["quiet_hours"] += held > INSTANT
        elif held > INSTANT:
            timing["quiet_hours"] += 1
            longest_hold = max(longest_hold, held)
            timing["delayed"] += delivered_at - due_at > INSTANT
        elif delivered_at - sent_at > INSTANT:
            timing["delayed"] += 1
        else:
            timing["immediate"] += 1
    timing["longest_hold"] = longest_hold
    return timing


def main() -> None:
    with bench_environment("noise"):
        from django.core.management import call_command

        from comms.models import Delivery, Message
        from comms.tasks import PRIORITY_QUEUE, ROUTINE_QUEUE

        started = time.perf_counter()
        call_command("seed_demo", stdout=io.StringIO())
        # The replay's sends publish delivery tasks after commit (to the bench Redis db); the
        # history is delivered already, so they are dropped.
        published = queues_delete(PRIORITY_QUEUE, ROUTINE_QUEUE, "default")
        messages = Message.objects.filter(status="sent").count()
        if not messages:
            raise AssertionError("seed_demo loaded no message history")
        people = site_people()
        print(
            f"seed_demo in {time.perf_counter() - started:.1f} s: {messages} sent messages, "
            f"{Delivery.objects.count()} deliveries, {len(people)} site people; "
            f"tasks it published, deleted: {published}; "
            f"load average {load_average()}",
            flush=True,
        )
        ours, peer, kinds, peer_kinds = notifications(people)
        timing = key_timing(people)

    site_weeks = sorted(set(ours) | set(peer))
    reductions = [1 - ours[key] / peer[key] for key in site_weeks if peer[key]]
    total_ours, total_peer = sum(ours.values()), sum(peer.values())
    reduction = 1 - total_ours / total_peer
    worst = min(site_weeks, key=lambda key: (1 - ours[key] / peer[key]) if peer[key] else 1)
    busiest = max(site_weeks, key=lambda key: peer[key])
    # Key and critical messages always go alone: their share of the peer's notifications is
    # a floor under ours, whatever digests do with the rest.
    alone_always = sum(peer_kinds[tier] for tier in ("critical", "key", "escalation"))
    best_possible = 1 - alone_always / total_peer
    batched_peer = peer_kinds["routine"] + peer_kinds["info"]
    batched_ours = kinds["routine"] + kinds["info"] + kinds["digest"] + kinds["digest (to come)"]
    print(
        "\nours by kind: "
        + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
        + "\npeer by kind: "
        + ", ".join(f"{kind} {count}" for kind, count in sorted(peer_kinds.items()))
        + f"\nsite-weeks: {len(site_weeks)} over {len({site for site, _ in site_weeks})} sites; "
        f"busiest {busiest[0]} {busiest[1]}: {ours[busiest]} vs {peer[busiest]}; "
        f"least reduced {worst[0]} {worst[1]}: {ours[worst]} vs {peer[worst]}",
        flush=True,
    )
    per_site_week = defaultdict(list)
    for key in site_weeks:
        per_site_week["ours"].append(ours[key])
        per_site_week["peer"].append(peer[key])
    no_delay = timing["delayed"] == 0
    print_table(
        f"Stand-alone notifications to site people, demo message mix ({datetime.date.today()})",
        [
            Row(
                "notifications, all site-weeks",
                f"{total_ours}",
                f"{total_peer}",
                f"{reduction:.0%} fewer",
                f">= {TARGET_REDUCTION:.0%} fewer",
                verdict(reduction >= TARGET_REDUCTION),
            ),
            Row(
                "routine + info only",
                f"{batched_ours}",
                f"{batched_peer}",
                f"{1 - batched_ours / batched_peer:.0%} fewer",
                "",
                "",
            ),
            Row(
                "best possible (key, critical, escalations alone)",
                f"{alone_always}",
                f"{total_peer}",
                f"{best_possible:.0%} fewer",
                "",
                "",
            ),
            Row(
                "per site-week: median / max",
                f"{statistics.median(per_site_week['ours']):.0f} / {max(per_site_week['ours'])}",
                f"{statistics.median(per_site_week['peer']):.0f} / {max(per_site_week['peer'])}",
                f"median {statistics.median(reductions):.0%} fewer, least {min(reductions):.0%}",
                "",
                "",
            ),
            Row(
                "key/critical deliveries delayed",
                f"{timing['delayed']} of {timing['total']}",
                "",
                "",
                "0",
                verdict(no_delay),
            ),
            Row(
                "key/critical: at send / quiet hours",
                f"{timing['immediate']} / {timing['quiet_hours']}",
                "",
                "",
                "",
                "",
            ),
            Row(
                "quiet hours: longest hold, still held",
                f"{timing['longest_hold'].total_seconds() / 3600:.1f} h / {timing['pending']}",
                "",
                "",
                "",
                "",
            ),
        ],
        peer_title="one per message",
    )


if __name__ == "__main__":
    main()
