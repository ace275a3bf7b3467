"""Reads of messages with tenancy applied first (see ``trialhub.selectors``).

Sponsor and CRO people see the messages of the studies in their reach (another
organisation's drafts excepted); site people see only messages delivered to them.
``message_for_user`` answers ``Http404`` for missing and not-yours alike.

The inbox is the user's own in-app deliveries, across every study, in PRODUCT.md's order:
stand-alone messages, digests (whose lines are the routine deliveries they carry, see
``inbox_digest_lines``) and escalations.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Value,
    When,
)
from django.http import Http404
from django.utils import timezone

from comms.models import (
    ACK_TIERS,
    CATEGORY_RULES,
    INBOX_ROWS,
    Channel,
    Delivery,
    DeliveryKind,
    DeliveryState,
    Message,
    MessageStatus,
    MessageTemplate,
    TemplateStatus,
    inbox_pin_rank,
    inbox_pinned_due,
)
from comms.permissions import (
    APPROVER_ROLES,
    ENDORSER_ROLES,
    SENDER_ORGANIZATION_KINDS,
    WRITER_ROLES,
)
from sites.models import StudySite
from trialhub.models import Raci, ResponsibilityEntry, RoleAssignment, Study
from trialhub.permissions import membership_of
from trialhub.selectors import studies_for_user

MESSAGE_RELATED = ("study__sponsor", "sender", "sender_organization", "endorsed_by")


def messages_for_user(user: AbstractBaseUser | None) -> QuerySet[Message]:
    """Messages the user may see, newest first; none without a tenant."""
    membership = membership_of(user)
    if membership is None:
        return Message.objects.none()
    organization = membership.organization
    if organization.kind in SENDER_ORGANIZATION_KINDS:
        messages = Message.objects.filter(study__in=studies_for_user(user)).filter(
            Q(sender_organization=organization) | ~Q(status=MessageStatus.DRAFT)
        )
    else:
        delivered_to_user = (
            Delivery.objects.filter(recipient=user)
            .exclude(state=DeliveryState.PENDING)
            .values("message_id")
        )
        messages = Message.objects.filter(status=MessageStatus.SENT, id__in=delivered_to_user)
    return messages.select_related(*MESSAGE_RELATED)


def message_for_user(user: AbstractBaseUser | None, message_id: int | str) -> Message:
    """The message with this id if the user may see it; ``Http404`` otherwise."""
    try:
        return messages_for_user(user).get(pk=int(message_id))
    except (Message.DoesNotExist, TypeError, ValueError):
        raise Http404("No such message.") from None


def _category_area() -> Case:
    """The responsibility area of each message's category, as SQL."""
    return Case(
        *(When(category=slug, then=Value(rule.area)) for slug, rule in CATEGORY_RULES.items()),
        output_field=CharField(),
    )


def pending_approvals_for_user(user: AbstractBaseUser | None) -> QuerySet[Message]:
    """Messages waiting for this user's decision, oldest submission first: their organisation
    is Accountable for the message's area on the study, and they hold an approver role there
    (sponsor lead, CRO project manager) or are the organisation's admin."""
    membership = membership_of(user)
    if membership is None or membership.organization.kind not in SENDER_ORGANIZATION_KINDS:
        return Message.objects.none()
    accountable = ResponsibilityEntry.objects.filter(
        study=OuterRef("study"),
        area=OuterRef("area_slug"),
        organization=membership.organization,
        code=Raci.ACCOUNTABLE,
    )
    messages = (
        Message.objects.filter(
            status=MessageStatus.PENDING_APPROVAL, study__in=studies_for_user(user)
        )
        .annotate(area_slug=_category_area())
        .filter(Exists(accountable))
    )
    if not membership.is_org_admin:
        approver_on = (
            RoleAssignment.objects.active()
            .filter(user=user, role__in=APPROVER_ROLES)
            .values("study_id")
        )
        messages = messages.filter(study__in=approver_on)
    return messages.select_related(*MESSAGE_RELATED).order_by("submitted_at", "id")


# The inbox's state vocabulary (PRODUCT.md "API") and the delivery state each one stands for.
INBOX_STATES: dict[str, str] = {
    "unread": DeliveryState.DELIVERED,
    "read": DeliveryState.READ,
    "acknowledged": DeliveryState.ACKNOWLEDGED,
}
INBOX_FILTERS = frozenset({"study", "sponsor", "tier", "state"})
INBOX_RELATED = ("message__study__sponsor", "message__sender_organization")


def _inbox_items(user: AbstractBaseUser | None) -> QuerySet[Delivery]:
    """The user's delivered in-app items: stand-alone messages, digests (not the lines they
    carry) and escalations (``comms.models.INBOX_ROWS``); none without a user. Deliveries are
    written only for sent messages, so no join to the message is needed to tell."""
    if user is None or not user.is_authenticated:
        return Delivery.objects.none()
    return Delivery.objects.filter(INBOX_ROWS, recipient=user)


def _digest_has(**lookups) -> Exists:
    """A digest item carrying at least one line matching ``lookups`` (on the line)."""
    return Exists(
        Delivery.objects.filter(
            digest_id=OuterRef("digest_id"), kind=DeliveryKind.MESSAGE, **lookups
        )
    )


def _apply_inbox_filters(items: QuerySet[Delivery], filters: dict) -> QuerySet[Delivery]:
    """Filters apply to a message's fields; a digest matches when one of its lines matches
    them all (study B's info items: a study B line that is info, not any two lines)."""
    unknown = set(filters) - INBOX_FILTERS
    if unknown:
        raise ValueError(f"Unknown inbox filters: {', '.join(sorted(unknown))}.")
    lookups = {
        "study": "message__study_id",
        "sponsor": "message__study__sponsor_id",
        "tier": "tier",
    }
    wanted = {
        lookup: filters[name] for name, lookup in lookups.items() if filters.get(name) is not None
    }
    if wanted:
        is_digest = Q(kind=DeliveryKind.DIGEST)
        items = items.filter(Q(**wanted) & ~is_digest | is_digest & _digest_has(**wanted))
    if filters.get("state") is not None:
        items = items.filter(state=INBOX_STATES[filters["state"]])
    return items


def inbox_for_user(
    *, user: AbstractBaseUser | None, filters: dict | None = None
) -> QuerySet[Delivery]:
    """The user's inbox across every sponsor and study, in priority order (in SQL): pinned
    items first by ``pin_rank`` — unacknowledged critical, then unacknowledged key, both by
    acknowledgement due time — then unread key, then everything else newest first.

    ``filters``: ``study`` (id), ``sponsor`` (organisation id), ``tier``, ``state`` (``unread``,
    ``read``, ``acknowledged``); ``None`` values are ignored. Only the user's own delivered
    in-app deliveries; nothing for anonymous callers.
    """
    items = _apply_inbox_filters(_inbox_items(user), filters or {})
    # The expressions of the ``delivery_inbox_order`` index, so a page is an index scan.
    return (
        items.annotate(pin_rank=inbox_pin_rank())
        .prefetch_related(*_inbox_prefetch())
        .order_by(
            "pin_rank", inbox_pinned_due().asc(nulls_last=True), F("delivered_at").desc(), "-id"
        )
    )


def _inbox_prefetch() -> list:
    """What an inbox page shows besides its rows, loaded for the page's rows only (three
    queries, whatever the page holds). Joined into the ordering query instead, it made
    PostgreSQL join and sort every one of the user's items at full width, with a scan of
    the whole digest table: several times slower for a user with 5,000 items
    (bench/inbox.py)."""
    return [
        Prefetch(
            "message",
            queryset=Message.objects.select_related(
                *(path.removeprefix("message__") for path in INBOX_RELATED)
            ),
        ),
        "digest",
        Prefetch("study_site", queryset=StudySite.objects.select_related("site")),
    ]


def inbox_item_for_user(user: AbstractBaseUser | None, item_id: int | str) -> Delivery:
    """One of the user's own inbox items; ``Http404`` for missing and others' alike."""
    try:
        return inbox_for_user(user=user).get(pk=int(item_id))
    except (Delivery.DoesNotExist, TypeError, ValueError):
        raise Http404("No such inbox item.") from None


def inbox_counts(user: AbstractBaseUser | None) -> dict[str, int]:
    """``unread`` and ``to_acknowledge`` counts of the user's inbox, in one query."""
    return _inbox_items(user).aggregate(
        unread=Count("id", filter=Q(state=DeliveryState.DELIVERED)),
        to_acknowledge=Count(
            "id",
            filter=Q(kind=DeliveryKind.MESSAGE, tier__in=ACK_TIERS)
            & Q(state__in=(DeliveryState.DELIVERED, DeliveryState.READ)),
        ),
    )


def inbox_digest_lines(items) -> dict[int, list]:
    """The lines of the digest items among ``items`` (a page of the inbox), by digest id;
    one query whatever the page holds."""
    from comms.rendering import digest_lines

    digest_ids = [item.digest_id for item in items if item.kind == DeliveryKind.DIGEST]
    return digest_lines(digest_ids) if digest_ids else {}


# --- pages: progress of sent messages, approvals preview, endorsement requests ----------------


@dataclass
class MessageProgress:
    """How far a message got: its recipients' in-app deliveries (every recipient has one)."""

    recipients: int = 0
    delivered: int = 0  # reached the inbox: delivered, read or acknowledged
    read: int = 0  # read or acknowledged
    acknowledged: int = 0
    pending: int = 0  # waiting for a digest window or the end of quiet hours
    pending_digest: int = 0
    escalated: int = 0
    emailed: int = 0
    ack_required: int = 0

    @property
    def ack_percent(self) -> int:
        return round(100 * self.acknowledged / self.ack_required) if self.ack_required else 0


_REACHED = (DeliveryState.DELIVERED, DeliveryState.READ, DeliveryState.ACKNOWLEDGED)


def _progress_counts() -> dict[str, Count]:
    """The counters of ``MessageProgress`` over a message's own deliveries, as aggregates."""
    in_app = Q(channel=Channel.IN_APP)
    return {
        "recipients": Count("id", filter=in_app),
        "delivered": Count("id", filter=in_app & Q(state__in=_REACHED)),
        "read": Count(
            "id",
            filter=in_app & Q(state__in=(DeliveryState.READ, DeliveryState.ACKNOWLEDGED)),
        ),
        "acknowledged": Count("id", filter=in_app & Q(state=DeliveryState.ACKNOWLEDGED)),
        "pending": Count("id", filter=in_app & Q(state=DeliveryState.PENDING)),
        "pending_digest": Count(
            "id", filter=in_app & Q(state=DeliveryState.PENDING, via_digest=True)
        ),
        "escalated": Count("id", filter=in_app & Q(escalated_at__isnull=False)),
        "emailed": Count("id", filter=Q(channel=Channel.EMAIL) & ~Q(state=DeliveryState.PENDING)),
    }


def message_progress(
    *, user: AbstractBaseUser | None, messages: Iterable[Message]
) -> dict[int, MessageProgress]:
    """Delivery and acknowledgement progress of each of ``messages`` (a page of a list), by
    message id, in one aggregate query whatever the page holds. Only messages the user may
    see are counted (``messages_for_user``); the others, and messages without deliveries
    (drafts, pending approval, rejected), get empty progress."""
    messages = list(messages)
    progress = {message.id: MessageProgress() for message in messages}
    if not messages:
        return progress
    visible = messages_for_user(user).filter(id__in=list(progress)).values("id")
    rows = (
        Delivery.objects.filter(kind=DeliveryKind.MESSAGE, message_id__in=visible)
        .order_by()
        .values("message_id")
        .annotate(**_progress_counts())
    )
    for row in rows:
        message_id = row.pop("message_id")
        progress[message_id] = MessageProgress(**row)
    for message in messages:
        if message.requires_ack:
            progress[message.id].ack_required = progress[message.id].recipients
    return progress


@dataclass
class SiteProgress:
    """A message's acknowledgement at one study-site."""

    study_site_id: int | None
    site_name: str
    recipients: int
    acknowledged: int
    overdue: int


def message_site_progress(
    *, user: AbstractBaseUser | None, message: Message, now: datetime.datetime | None = None
) -> list[SiteProgress]:
    """Per study-site: recipients, acknowledgements and acknowledgements overdue at ``now``
    (unacknowledged past the message's due time), by site name; one query. Empty unless the
    user may see the message."""
    now = now or timezone.now()
    overdue = Q(state__in=(DeliveryState.PENDING, DeliveryState.DELIVERED, DeliveryState.READ))
    if message.requires_ack and message.ack_due_at is not None and message.ack_due_at <= now:
        overdue_count = Count("id", filter=overdue)
    else:
        overdue_count = Value(0, output_field=IntegerField())
    rows = (
        Delivery.objects.filter(
            kind=DeliveryKind.MESSAGE,
            channel=Channel.IN_APP,
            message_id__in=messages_for_user(user).filter(pk=message.pk).values("id"),
        )
        .order_by()
        .values("study_site_id", "study_site__site__name")
        .annotate(
            recipients=Count("id"),
            acknowledged=Count("id", filter=Q(state=DeliveryState.ACKNOWLEDGED)),
            overdue=overdue_count,
        )
        .order_by("study_site__site__name", "study_site_id")
    )
    return [
        SiteProgress(
            study_site_id=row["study_site_id"],
            site_name=row["study_site__site__name"] or "—",
            recipients=row["recipients"],
            acknowledged=row["acknowledged"],
            overdue=row["overdue"],
        )
        for row in rows
    ]


def audience_reach_counts(*, messages: Iterable[Message], on: datetime.date) -> dict[int, int]:
    """How many people each message's audience reaches ``on`` (distinct users, as
    ``audience_recipients`` resolves them), by message id: one query for a page of messages
    (a ``UNION ALL`` of one counting branch per message). Callers pass messages they got
    through a tenancy selector; an audience that no longer validates counts 0."""
    from comms.services.audience import audience_assignments

    counts: dict[int, int] = {}
    branches = []
    for message in messages:
        counts[message.id] = 0
        if not isinstance(message.audience, dict):
            continue
        branches.append(
            audience_assignments(study_id=message.study_id, audience=message.audience, on=on)
            .order_by()
            .values("study_id")
            .annotate(
                message_ref=Value(message.id, output_field=IntegerField()),
                reached=Count("user_id", distinct=True),
            )
            .values_list("message_ref", "reached")
        )
    if branches:
        for message_id, reached in branches[0].union(*branches[1:], all=True):
            counts[message_id] = reached
    return counts


def endorsement_requests_for_user(user: AbstractBaseUser | None) -> QuerySet[Message]:
    """Key and critical messages whose sender asked for the sponsor's co-signature, not yet
    endorsed, on studies where the user is the sponsor lead today; oldest first."""
    leading = (
        RoleAssignment.objects.active()
        .filter(user=user, role__in=ENDORSER_ROLES)
        .values("study_id")
        if user is not None and user.is_authenticated
        else RoleAssignment.objects.none().values("study_id")
    )
    return (
        messages_for_user(user)
        .filter(
            endorsement_requested=True,
            endorsed_by__isnull=True,
            tier__in=ACK_TIERS,
            status__in=(MessageStatus.PENDING_APPROVAL, MessageStatus.SENT),
            study__in=leading,
        )
        .order_by("submitted_at", "id")
    )


# --- message templates and the compose page --------------------------------------------------


def templates_for_user(user: AbstractBaseUser | None) -> QuerySet[MessageTemplate]:
    """Message templates of the studies the user sees, for sponsor and CRO people (site people
    read messages, not the wording behind them): none for anyone else."""
    membership = membership_of(user)
    if membership is None or membership.organization.kind not in SENDER_ORGANIZATION_KINDS:
        return MessageTemplate.objects.none()
    return MessageTemplate.objects.filter(study__in=studies_for_user(user)).select_related(
        "study", "organization", "created_by", "approved_by"
    )


def templates_for_study(user: AbstractBaseUser | None, study: Study) -> QuerySet[MessageTemplate]:
    """One study's templates the user may see, by category then name."""
    return templates_for_user(user).filter(study=study).order_by("category", "name", "id")


def template_for_user(user: AbstractBaseUser | None, template_id: int | str) -> MessageTemplate:
    """The template with this id if the user may see it; ``Http404`` otherwise."""
    try:
        return templates_for_user(user).get(pk=int(template_id))
    except (MessageTemplate.DoesNotExist, TypeError, ValueError):
        raise Http404("No such template.") from None


def approved_templates_for_compose(
    user: AbstractBaseUser | None, study: Study
) -> QuerySet[MessageTemplate]:
    """The study's approved templates, to start a message from."""
    return templates_for_study(user, study).filter(status=TemplateStatus.APPROVED)


def compose_studies_for_user(
    user: AbstractBaseUser | None, on: datetime.date | None = None
) -> QuerySet[Study]:
    """Studies the user writes to sites on (``comms.permissions.can_write`` for many studies):
    sponsor and CRO organisation admins all the studies they see, other sponsor and CRO people
    those where they hold a writer role on ``on`` (today)."""
    membership = membership_of(user)
    if membership is None or membership.organization.kind not in SENDER_ORGANIZATION_KINDS:
        return Study.objects.none()
    studies = studies_for_user(user)
    if not membership.is_org_admin:
        writing = (
            RoleAssignment.objects.active(on)
            .filter(user=user, role__in=WRITER_ROLES)
            .values("study_id")
        )
        studies = studies.filter(id__in=writing)
    return studies.order_by("code")


def compose_study_sites(study: Study) -> list[StudySite]:
    """The study's study-sites with their sites, by site name, for the audience picker (the
    caller resolved the study through a selector); one query."""
    return list(
        StudySite.objects.filter(study=study).select_related("site").order_by("site__name", "id")
    )


def audience_reach(*, study_id: int, audience: dict, on: datetime.date) -> tuple[int, int]:
    """How many people and study-sites a validated audience reaches ``on``; one query."""
    from comms.services.audience import audience_assignments

    counts = (
        audience_assignments(study_id=study_id, audience=audience, on=on)
        .order_by()
        .aggregate(
            people=Count("user_id", distinct=True),
            study_sites=Count("study_site_id", distinct=True),
        )
    )
    return counts["people"], counts["study_sites"]
