"""Escalating acknowledgements that are overdue (PRODUCT.md "Acknowledgement & escalation").

A key or critical delivery not acknowledged by its ``ack_due_at`` (the message's, moved later
by as long as the delivery was held back for the site's quiet hours) is escalated once: the
study-site's principal investigator and its CRA(s), and the message's sender, each get an
escalation delivery (in-app and email) naming the study-site. The overdue rows are taken
under ``SELECT … FOR UPDATE SKIP LOCKED`` and stamped ``escalated_at`` in the same
transaction, so concurrent or late sweeps escalate each one exactly once.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from functools import partial

from django.db import transaction
from django.utils import timezone

from comms.models import Channel, Delivery, DeliveryKind, DeliveryState
from trialhub.models import RoleAssignment, StudyRole

ESCALATION_BATCH = 2000
ESCALATE_TO_ROLES = (StudyRole.PRINCIPAL_INVESTIGATOR, StudyRole.CRA)


def escalations_sweep(
    *, now: datetime.datetime | None = None, batch: int = ESCALATION_BATCH
) -> int:
    """Escalate every acknowledgement overdue at ``now``; return how many study-sites were
    escalated (one per message and study-site). Each batch commits on its own."""
    now = now or timezone.now()
    escalated = 0
    while True:
        count, more = _escalate_batch(now, batch)
        escalated += count
        if not more:
            return escalated


@transaction.atomic
def _escalate_batch(now: datetime.datetime, batch: int) -> tuple[int, bool]:
    overdue = list(
        Delivery.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(
            kind=DeliveryKind.MESSAGE,
            channel=Channel.IN_APP,
            escalated_at__isnull=True,
            state__in=(DeliveryState.PENDING, DeliveryState.DELIVERED, DeliveryState.READ),
            ack_due_at__lte=now,
        )
        .order_by("id")
        .values_list("id", "message_id", "study_site_id", "message__sender_id", "tier")[: batch + 1]
    )
    if not overdue:
        return 0, False
    more = len(overdue) > batch
    overdue = overdue[:batch]
    sites_by_message: dict[int, set[int]] = defaultdict(set)
    senders: dict[int, int] = {}
    tiers: dict[int, str] = {}
    for _id, message_id, study_site_id, sender_id, tier in overdue:
        if study_site_id is not None:
            sites_by_message[message_id].add(study_site_id)
        senders[message_id] = sender_id
        tiers[message_id] = tier
    study_site_ids = {site for sites in sites_by_message.values() for site in sites}
    people = _site_people(study_site_ids, now)
    # A study-site escalated already (its rows were split over batches or sweeps) is not new.
    already = set(
        Delivery.objects.filter(
            kind=DeliveryKind.ESCALATION,
            message_id__in=list(sites_by_message),
            study_site_id__in=study_site_ids,
        )
        .order_by()
        .values_list("message_id", "study_site_id")
        .distinct()
    )
    deliveries = []
    for message_id, study_sites in sites_by_message.items():
        for study_site_id in study_sites:
            for recipient_id in people[study_site_id] | {senders[message_id]}:
                for channel in (Channel.IN_APP, Channel.EMAIL):
                    deliveries.append(
                        Delivery(
                            kind=DeliveryKind.ESCALATION,
                            message_id=message_id,
                            study_site_id=study_site_id,
                            recipient_id=recipient_id,
                            channel=channel,
                            tier=tiers[message_id],
                            due_at=now,
                        )
                    )
    Delivery.objects.bulk_create(deliveries, ignore_conflicts=True, batch_size=5000)
    Delivery.objects.filter(id__in=[row[0] for row in overdue]).update(escalated_at=now)
    for message_id in sites_by_message:
        transaction.on_commit(partial(_enqueue, message_id))
    escalated = {
        (message_id, study_site_id)
        for message_id, study_sites in sites_by_message.items()
        for study_site_id in study_sites
    }
    return len(escalated - already), more


def _site_people(study_site_ids: set[int], now: datetime.datetime) -> dict[int, set[int]]:
    """Each study-site's principal investigators and CRAs active on ``now``'s date."""
    people: dict[int, set[int]] = defaultdict(set)
    rows = (
        RoleAssignment.objects.active(timezone.localdate(now))
        .filter(study_site_id__in=study_site_ids, role__in=ESCALATE_TO_ROLES, user__is_active=True)
        .values_list("study_site_id", "user_id")
    )
    for study_site_id, user_id in rows:
        people[study_site_id].add(user_id)
    return people


def _enqueue(message_id: int) -> None:
    from comms.tasks import escalation_enqueue

    escalation_enqueue(message_id=message_id)
