"""Sending: routing by the responsibility matrix, recipients resolved and stored, delivery
handed to Celery after commit."""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.utils import timezone

from comms.models import (
    ACK_TIERS,
    ACK_WINDOW,
    CATEGORY_RULES,
    DEFAULT_SEND_NOW_DAILY_LIMIT,
    Category,
    Channel,
    Delivery,
    DeliveryKind,
    DeliveryState,
    Message,
    MessageStatus,
    MessageTemplate,
    StudyCommsPolicy,
    TemplateStatus,
    Tier,
)
from comms.permissions import DIRECT_SEND_CODES, can_write
from comms.services.audience import NO_RECIPIENTS, audience_assignments, audience_recipients
from comms.services.scheduling import (
    SCHEDULE_FIELDS,
    SiteSchedule,
    local_day_bounds,
    next_digest_window,
    quiet_hours_end,
)
from comms.services.templates import template_wording_matches
from sites.models import StudySite
from trialhub.models import Area, Organization, Raci, ResponsibilityEntry, Study
from trialhub.permissions import membership_of
from trialhub.selectors import studies_for_user

logger = logging.getLogger(__name__)

# Tiers batched into the recipient's digest (a routine "send now" message may go alone).
DIGEST_TIERS = frozenset({Tier.ROUTINE, Tier.INFO})


def message_lock(message: Message) -> Message:
    """Re-read the message under a row lock: one decision or send at a time. Its study and
    sender organisation come in the same query (routing reads them); only the message's row
    is locked."""
    return (
        Message.objects.select_related("study", "sender_organization")
        .select_for_update(of=("self",))
        .get(pk=message.pk)
    )


# How a message leaves ``message_send`` (``RoutingPreview.route``).
ROUTE_DIRECT = "direct"  # the sender's organisation is Responsible or Accountable for the area
ROUTE_TEMPLATE = "template"  # written from the current approved template, wording unchanged
ROUTE_APPROVAL = "approval"  # waits for the Accountable party


@dataclass(frozen=True)
class RoutingPreview:
    """What sending would do with a message, by the matrix as it stands now."""

    category: str
    tier: str
    area: str
    sender_code: str | None
    route: str
    accountable_id: int | None
    accountable_name: str
    tier_error: str | None = None

    @property
    def goes_directly(self) -> bool:
        return self.tier_error is None and self.route != ROUTE_APPROVAL


def message_routing_preview(
    *,
    actor,
    study: Study,
    category: str,
    tier: str | None = None,
    template: MessageTemplate | None = None,
    template_version: int | None = None,
    subject: str | None = None,
    body: str | None = None,
    organization: Organization | None = None,
) -> RoutingPreview:
    """The routing rules of ``message_send``, without writing anything: for a message of
    ``category`` (at ``tier``, default the category's) on ``study`` by ``actor``'s organisation
    (or ``organization``: the sender organisation of a stored draft). One query for the
    matrix, plus the template wording check in memory.

    - ``tier_error``: raising above the category's tier to key or critical needs the sender's
      organisation to be Accountable for the category's area.
    - ``route``: ``direct`` when that organisation is Responsible or Accountable; otherwise
      ``template`` when written from ``template`` while it is approved, of this study and
      category, at ``template_version`` (default: its current one), and — when ``subject`` and
      ``body`` are given — worded exactly as the template renders; otherwise ``approval`` by
      the Accountable organisation (``accountable_id``/``accountable_name``).
    """
    if organization is None:
        organization = membership_of(actor).organization
    rule = CATEGORY_RULES[category]
    tier = tier or rule.tier
    codes = list(
        ResponsibilityEntry.objects.filter(study_id=study.pk, area=rule.area)
        .order_by("pk")  # not the model's ordering, which joins organisations for their name
        .values_list("organization_id", "organization__name", "code")
    )
    sender_code = next((code for org_id, _, code in codes if org_id == organization.pk), None)
    accountable_id, accountable_name = next(
        ((org_id, name) for org_id, name, code in codes if code == Raci.ACCOUNTABLE), (None, "")
    )
    if sender_code in DIRECT_SEND_CODES:
        route = ROUTE_DIRECT
    elif _template_applies(study, category, template, template_version, subject, body):
        route = ROUTE_TEMPLATE
    else:
        route = ROUTE_APPROVAL
    return RoutingPreview(
        category=category,
        tier=tier,
        area=rule.area,
        sender_code=sender_code,
        route=route,
        accountable_id=accountable_id,
        accountable_name=accountable_name,
        tier_error=_tier_error(category, tier, sender_code),
    )


def _template_applies(
    study: Study,
    category: str,
    template: MessageTemplate | None,
    template_version: int | None,
    subject: str | None,
    body: str | None,
) -> bool:
    if template is None:
        return False
    current = (
        template.status == TemplateStatus.APPROVED
        and template.study_id == study.pk
        and template.category == category
        and template.version == (template_version or template.version)
    )
    if not current or subject is None or body is None:
        return current
    return template_wording_matches(template, subject=subject, body=body, study_code=study.code)


@transaction.atomic
def message_send(*, message: Message, actor, now: datetime.datetime | None = None) -> Message:
    """Submit a draft (its author only; ``PermissionDenied`` for anyone else), routed by
    ``message_routing_preview`` — one set of rules for the compose page's preview and for this.

    Tier: lowering below the category's default is free; raising above it to key or critical
    needs the sender's organisation to be Accountable for the category's area (``tier`` error),
    template or not. Routing: when the sender's organisation is Responsible or Accountable for
    the area on the study, the message is sent now (see ``message_dispatch``). A message
    written from a sponsor-approved template is sent now as well, even when the organisation
    is only Consulted or Informed, provided the template is still approved at the version the
    message stored and the subject and body are unchanged from the template's rendering (the
    sponsor approved that wording once for all its messages). Otherwise it waits, status
    ``pending_approval``, for the Accountable party. An audience that reaches no one is an
    ``audience`` error either way.
    """
    now = now or timezone.now()
    message = message_lock(message)
    if message.sender_id != actor.pk:
        raise PermissionDenied("Only the author of a draft sends it.")
    if not studies_for_user(actor).filter(pk=message.study_id).exists() or not can_write(
        actor, message.study_id, timezone.localdate(now)
    ):
        raise PermissionDenied("You no longer write to sites on this study.")
    if message.status != MessageStatus.DRAFT:
        raise ValidationError({"status": "This message is not a draft any more."})
    # Read afresh: the template may have been edited or retired since the draft was written.
    template = (
        MessageTemplate.objects.filter(pk=message.template_id).first()
        if message.template_id
        else None
    )
    routing = message_routing_preview(
        actor=actor,
        study=message.study,
        category=message.category,
        tier=message.tier,
        template=template,
        template_version=message.template_version,
        subject=message.subject,
        body=message.body,
        organization=message.sender_organization,
    )
    if routing.tier_error:
        raise ValidationError({"tier": routing.tier_error})
    _check_ack_due_at(message, now)
    message.submitted_at = now
    if routing.goes_directly:
        return message_dispatch(message=message, now=now)
    on = timezone.localdate(now)
    if not audience_assignments(
        study_id=message.study_id, audience=message.audience, on=on
    ).exists():
        raise ValidationError({"audience": NO_RECIPIENTS})
    message.status = MessageStatus.PENDING_APPROVAL
    message.save(update_fields=["status", "submitted_at"])
    return message


def _tier_error(category: str, tier: str, sender_code: str | None) -> str | None:
    default = CATEGORY_RULES[category].tier
    raised = Tier(tier).rank > default.rank and tier in ACK_TIERS
    if not raised or sender_code == Raci.ACCOUNTABLE:
        return None
    area = Area(CATEGORY_RULES[category].area).label
    return (
        f"A {Category(category).label.lower()} is {default.label.lower()}; "
        f"only the party Accountable for {area.lower()} may raise it to {tier}."
    )


def _check_ack_due_at(message: Message, now: datetime.datetime) -> None:
    if message.ack_due_at is not None and message.ack_due_at <= now:
        raise ValidationError({"ack_due_at": "The acknowledgement due time has passed."})


def message_dispatch(*, message: Message, now: datetime.datetime) -> Message:
    """Send a locked message now, inside the caller's transaction: resolve the audience from
    role assignments active today, store one delivery per recipient and channel with one
    bulk insert, and enqueue the delivery task after commit with the message id only.

    When each delivery is due follows PRODUCT.md "Delivery", in the recipient's site's time:
    critical now; key now, or at the end of the site's quiet hours; routine and info wait
    for the site's next digest window (``via_digest``), except a routine "send now" message,
    which goes alone (after quiet hours, like a key message) while the site has had fewer
    than the study's daily limit of those today and is folded into the digest
    (``throttled``) beyond it. Stand-alone deliveries go in-app
    and by email; digest-bound ones in-app only (the digest itself is emailed).
    Key and critical messages get an acknowledgement due time (default: 24 h critical,
    48 h key). Raises ``ValidationError`` on ``audience`` when it reaches no one.
    """
    recipients = audience_recipients(
        study_id=message.study_id, audience=message.audience, on=timezone.localdate(now)
    )
    if not recipients:
        raise ValidationError({"audience": NO_RECIPIENTS})
    if message.requires_ack and message.ack_due_at is None:
        message.ack_due_at = now + ACK_WINDOW[message.tier]
    _check_ack_due_at(message, now)
    study_site_ids = sorted({recipient.study_site_id for recipient in recipients})
    schedules = site_schedules(study_site_ids)
    throttled_sites = (
        _throttled_study_sites(message, study_site_ids, schedules, now)
        if message.send_now
        else frozenset()
    )
    rows: list[DeliveryRow] = []
    for recipient in recipients:
        schedule = schedules[recipient.study_site_id]
        throttled = recipient.study_site_id in throttled_sites
        via_digest = message.tier in DIGEST_TIERS and (not message.send_now or throttled)
        due_at = _due_at(message.tier, via_digest, schedule, now)
        # A delivery held back (quiet hours) has that much longer to be acknowledged.
        ack_due_at = message.ack_due_at + (due_at - now) if message.requires_ack else None
        for channel in (Channel.IN_APP,) if via_digest else (Channel.IN_APP, Channel.EMAIL):
            # Nobody to email without an address; the in-app delivery still reaches them.
            if channel == Channel.EMAIL and not recipient.email:
                continue
            rows.append(
                DeliveryRow(
                    recipient.user_id,
                    recipient.study_site_id,
                    channel,
                    due_at,
                    via_digest,
                    throttled,
                    ack_due_at if channel == Channel.IN_APP else None,
                )
            )
    _insert_deliveries(message, rows)
    message.status = MessageStatus.SENT
    message.sent_at = now
    message.recipients_count = len(recipients)
    message.save(
        update_fields=["status", "submitted_at", "sent_at", "ack_due_at", "recipients_count"]
    )
    if any(not row.via_digest and row.due_at <= now for row in rows):
        transaction.on_commit(partial(_enqueue_delivery, message.id, message.tier))
    return message


class DeliveryRow(NamedTuple):
    recipient_id: int
    study_site_id: int
    channel: str
    due_at: datetime.datetime
    via_digest: bool
    throttled: bool
    ack_due_at: datetime.datetime | None


def _insert_deliveries(message: Message, rows: list[DeliveryRow]) -> None:
    """Write the message's deliveries with one ``INSERT … SELECT … FROM unnest(arrays)``: a
    set-based insert like ``bulk_create``, without building a model instance and a parameter
    per value for every row (about 3x faster for thousands of recipients, bench/fanout.py)."""
    columns = list(zip(*rows, strict=True)) if rows else [[] for _field in DeliveryRow._fields]
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (kind, message_id, tier, state, recipient_id, study_site_id,
                                 channel, due_at, via_digest, throttled, ack_due_at)
            SELECT %s, %s, %s, %s, recipient_id, study_site_id,
                   channel, due_at, via_digest, throttled, ack_due_at
            FROM unnest(%s::bigint[], %s::bigint[], %s::varchar[], %s::timestamptz[],
                        %s::boolean[], %s::boolean[], %s::timestamptz[])
                 AS row (recipient_id, study_site_id, channel, due_at, via_digest, throttled,
                         ack_due_at)
            """,  # noqa: S608 - the table name is the model's, the values are parameters
            [
                DeliveryKind.MESSAGE.value,
                message.pk,
                message.tier,
                DeliveryState.PENDING.value,
                *(list(column) for column in columns),
            ],
        )


def _due_at(
    tier: str, via_digest: bool, schedule: SiteSchedule, now: datetime.datetime
) -> datetime.datetime:
    if via_digest:
        return next_digest_window(schedule, now)
    if tier != Tier.CRITICAL:
        # Key messages, and routine ones sent on their own, wait for the end of quiet hours.
        return quiet_hours_end(schedule, now) or now
    return now  # critical bypasses quiet hours


def site_schedules(study_site_ids: list[int]) -> dict[int, SiteSchedule]:
    """The delivery preferences of each study-site's site, by study-site id; one query."""
    rows = StudySite.objects.filter(id__in=study_site_ids).values_list(
        "id", *(f"site__{field}" for field in SCHEDULE_FIELDS)
    )
    return {row[0]: SiteSchedule(*row[1:]) for row in rows}


def send_now_daily_limit(study_id: int) -> int:
    """The study's limit of stand-alone routine messages per site and local day."""
    limit = (
        StudyCommsPolicy.objects.filter(study_id=study_id)
        .values_list("send_now_daily_limit", flat=True)
        .first()
    )
    return DEFAULT_SEND_NOW_DAILY_LIMIT if limit is None else limit


def _throttled_study_sites(
    message: Message,
    study_site_ids: list[int],
    schedules: dict[int, SiteSchedule],
    now: datetime.datetime,
) -> frozenset[int]:
    """Study-sites that already had the study's daily limit of stand-alone routine messages
    of this study on their local day. Their rows are locked first, so two "send now"
    messages sent at once to one site cannot both take its last place."""
    list(StudySite.objects.select_for_update().filter(id__in=study_site_ids).order_by("id"))
    limit = send_now_daily_limit(message.study_id)
    earliest = now - datetime.timedelta(days=2)  # wider than any local day around ``now``
    sent = (
        Delivery.objects.filter(
            kind=DeliveryKind.MESSAGE,
            via_digest=False,
            channel=Channel.IN_APP,
            study_site_id__in=study_site_ids,
            message__study_id=message.study_id,
            message__tier=Tier.ROUTINE,
            message__sent_at__gte=earliest,
        )
        .exclude(message=message)
        .order_by()
        .values_list("study_site_id", "message_id", "message__sent_at")
        .distinct()
    )
    counts: dict[int, int] = {}
    for study_site_id, _message_id, sent_at in sent:
        start, end = local_day_bounds(schedules[study_site_id].time_zone, now)
        if start <= sent_at < end:
            counts[study_site_id] = counts.get(study_site_id, 0) + 1
    return frozenset(site for site in study_site_ids if counts.get(site, 0) >= limit)


def _enqueue_delivery(message_id: int, tier: str) -> None:
    # Imported here: the task module imports the services.
    from comms.tasks import deliver_message_enqueue

    # The message and its pending deliveries are committed whatever happens here: a broker
    # outage is logged, not raised to a sender whose message was stored, and the sweeper
    # (``comms.services.sweeps``) re-enqueues what is left pending.
    try:
        deliver_message_enqueue(message_id=message_id, tier=tier)
    except Exception:
        logger.exception(
            "Message %s is sent but its delivery could not be enqueued; left pending.", message_id
        )
