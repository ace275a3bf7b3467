"""Communications: messages, their approval decisions and one delivery row per recipient and
channel. Tables and their invariants only; workflows live in ``comms.services``."""

from __future__ import annotations

import datetime
from typing import NamedTuple

from django.conf import settings
from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from trialhub.models import Area, Organization, Study


class Category(models.TextChoices):
    SAFETY = "safety", "Safety communication"
    PROTOCOL_AMENDMENT = "protocol_amendment", "Protocol amendment"
    RECRUITMENT_PUSH = "recruitment_push", "Recruitment push"
    STUDY_MILESTONE = "study_milestone", "Study start/close"
    SPONSOR_LETTER = "sponsor_letter", "Sponsor letter"
    VISIT_REMINDER = "visit_reminder", "Visit reminder"
    QUERY_REMINDER = "query_reminder", "Query reminder"
    DOCUMENT_REQUEST = "document_request", "Document request"
    SCHEDULING = "scheduling", "Scheduling"
    TRAINING = "training", "Training"
    NEWSLETTER = "newsletter", "Newsletter"
    RECOGNITION = "recognition", "Recognition"


class Tier(models.TextChoices):
    CRITICAL = "critical", "Critical"
    KEY = "key", "Key"
    ROUTINE = "routine", "Routine"
    INFO = "info", "Info"

    @property
    def rank(self) -> int:
        """Higher is more urgent; raising a tier means moving to a higher rank."""
        return TIER_RANK[self]


TIER_RANK: dict[str, int] = {Tier.CRITICAL: 4, Tier.KEY: 3, Tier.ROUTINE: 2, Tier.INFO: 1}
# Tiers whose deliveries must be acknowledged by a due time, and the default time allowed.
ACK_TIERS = (Tier.CRITICAL, Tier.KEY)  # a tuple: migrations serialise it in a stable order
ACK_WINDOW: dict[str, datetime.timedelta] = {
    Tier.CRITICAL: datetime.timedelta(hours=24),
    Tier.KEY: datetime.timedelta(hours=48),
}


class CategoryRule(NamedTuple):
    tier: Tier
    area: Area


# PRODUCT.md "Fixed vocabulary": each category's default tier and the responsibility area
# whose RACI codes decide who may send it directly.
CATEGORY_RULES: dict[str, CategoryRule] = {
    Category.SAFETY: CategoryRule(Tier.CRITICAL, Area.SAFETY_COMMS),
    Category.PROTOCOL_AMENDMENT: CategoryRule(Tier.KEY, Area.PROTOCOL_AMENDMENTS),
    Category.RECRUITMENT_PUSH: CategoryRule(Tier.KEY, Area.RECRUITMENT_COMMS),
    Category.STUDY_MILESTONE: CategoryRule(Tier.KEY, Area.MONITORING),
    Category.SPONSOR_LETTER: CategoryRule(Tier.KEY, Area.RECRUITMENT_COMMS),
    Category.VISIT_REMINDER: CategoryRule(Tier.ROUTINE, Area.MONITORING),
    Category.QUERY_REMINDER: CategoryRule(Tier.ROUTINE, Area.DATA_QUERIES),
    Category.DOCUMENT_REQUEST: CategoryRule(Tier.ROUTINE, Area.REGULATORY_DOCUMENTS),
    Category.SCHEDULING: CategoryRule(Tier.ROUTINE, Area.MONITORING),
    Category.TRAINING: CategoryRule(Tier.ROUTINE, Area.TRAINING),
    Category.NEWSLETTER: CategoryRule(Tier.INFO, Area.RECRUITMENT_COMMS),
    Category.RECOGNITION: CategoryRule(Tier.INFO, Area.MONITORING),
}


class MessageStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PENDING_APPROVAL = "pending_approval", "Pending approval"
    SENT = "sent", "Sent"
    REJECTED = "rejected", "Rejected"


class Message(models.Model):
    """A communication from a sponsor or CRO to the sites of one study.

    ``audience`` is the JSON of PRODUCT.md (``study_sites`` | ``all_sites`` | ``countries``,
    optional ``roles``); the recipients it resolves to at send time are stored as deliveries.
    """

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="messages")
    category = models.CharField(max_length=24, choices=Category.choices)
    tier = models.CharField(max_length=10, choices=Tier.choices)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="sent_messages"
    )
    sender_organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="sent_messages"
    )
    audience = models.JSONField()
    dedup_key = models.CharField(max_length=120, blank=True)
    send_now = models.BooleanField(
        default=False, help_text="Routine only: deliver stand-alone instead of in the digest."
    )
    requires_ack = models.BooleanField(default=False, editable=False)
    ack_due_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=MessageStatus.choices, default=MessageStatus.DRAFT
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    submitted_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    endorsed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="endorsed_messages",
    )
    endorsed_at = models.DateTimeField(null=True, blank=True)
    endorsement_requested = models.BooleanField(
        default=False, help_text="The sender asks the sponsor lead to co-sign (key/critical)."
    )
    recipients_count = models.PositiveIntegerField(default=0)
    template = models.ForeignKey(
        "MessageTemplate",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="messages",
        help_text="The sponsor-approved wording this message was written from.",
    )
    template_version = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["study", "status"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(category__in=Category.values), name="message_category_valid"
            ),
            models.CheckConstraint(condition=Q(tier__in=Tier.values), name="message_tier_valid"),
            models.CheckConstraint(
                condition=Q(status__in=MessageStatus.values), name="message_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(requires_ack=True, tier__in=ACK_TIERS)
                | Q(requires_ack=False) & ~Q(tier__in=ACK_TIERS),
                name="message_requires_ack_by_tier",
            ),
            models.CheckConstraint(
                condition=Q(send_now=False) | Q(tier=Tier.ROUTINE),
                name="message_send_now_routine_only",
            ),
            models.CheckConstraint(
                condition=Q(status=MessageStatus.DRAFT) | Q(submitted_at__isnull=False),
                name="message_submitted_at_once_submitted",
            ),
            models.CheckConstraint(
                condition=~Q(status=MessageStatus.SENT) | Q(sent_at__isnull=False),
                name="message_sent_has_sent_at",
            ),
            models.CheckConstraint(
                condition=~Q(status=MessageStatus.SENT)
                | Q(requires_ack=False)
                | Q(ack_due_at__isnull=False),
                name="message_sent_ack_has_due_time",
            ),
            models.CheckConstraint(
                condition=Q(endorsed_by__isnull=True, endorsed_at__isnull=True)
                | Q(endorsed_by__isnull=False, endorsed_at__isnull=False, tier__in=ACK_TIERS),
                name="message_endorsement_key_or_critical",
            ),
            models.CheckConstraint(
                condition=Q(template__isnull=True, template_version__isnull=True)
                | Q(template__isnull=False, template_version__isnull=False),
                name="message_template_has_version",
            ),
        ]

    def __str__(self) -> str:
        return f"[{self.tier}] {self.subject}"

    @property
    def area(self) -> Area:
        return CATEGORY_RULES[self.category].area


class Decision(models.TextChoices):
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class ApprovalDecision(models.Model):
    """The Accountable party's answer to a message pending approval: who, when and why."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="decisions")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(default=timezone.now)
    decision = models.CharField(max_length=10, choices=Decision.choices)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-decided_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(decision__in=Decision.values), name="approval_decision_valid"
            ),
            models.CheckConstraint(
                condition=Q(decision=Decision.APPROVED) | ~Q(reason=""),
                name="approval_rejection_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.decision} by {self.decided_by} at {self.decided_at:%Y-%m-%d %H:%M}"


class Channel(models.TextChoices):
    IN_APP = "in_app", "In-app"
    EMAIL = "email", "Email"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    READ = "read", "Read"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"


class DeliveryKind(models.TextChoices):
    MESSAGE = "message", "Message"
    DIGEST = "digest", "Digest"
    ESCALATION = "escalation", "Escalation"


class Digest(models.Model):
    """One recipient's batch of routine and info deliveries for one digest window.

    ``window_at`` is the instant the window opened (the site's local digest hour, as UTC);
    its lines are the message deliveries whose ``digest`` is this row, and it reaches the
    recipient as deliveries of kind ``digest`` (in-app and email).
    """

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="digests"
    )
    window_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    items_count = models.PositiveIntegerField(
        default=0, help_text="Message deliveries folded into this digest."
    )
    lines_count = models.PositiveIntegerField(
        default=0, help_text="Lines shown: items with the same dedup key share one line."
    )

    class Meta:
        ordering = ["-window_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "window_at"], name="digest_one_per_recipient_window"
            ),
            models.CheckConstraint(
                condition=Q(lines_count__lte=F("items_count")), name="digest_lines_within_items"
            ),
        ]

    def __str__(self) -> str:
        return f"Digest for {self.recipient_id} at {self.window_at:%Y-%m-%d %H:%M}"


# PRODUCT.md "The prioritised inbox", as SQL over a delivery's own columns: shared by the
# inbox index and ``comms.selectors.inbox_for_user`` (the same expressions, so the index serves
# the query). Ranks: unacknowledged critical, unacknowledged key, unread key or escalation, rest.
PIN_CRITICAL_UNACKED, PIN_KEY_UNACKED, PIN_KEY_UNREAD, PIN_NONE = range(4)
# Rows that are inbox items: stand-alone message deliveries, digests and escalations (not the
# lines a digest carries); the selector adds the recipient, channel and delivered states.
INBOX_ROWS = Q(channel="in_app", state__in=("delivered", "read", "acknowledged")) & (
    Q(digest__isnull=True) | Q(kind="digest")
)


def _unacknowledged(tier: str) -> Q:
    return ~Q(state="acknowledged") & Q(kind="message", tier=tier)


def inbox_pin_rank() -> Case:
    return Case(
        When(_unacknowledged("critical"), then=Value(PIN_CRITICAL_UNACKED)),
        When(_unacknowledged("key"), then=Value(PIN_KEY_UNACKED)),
        When(
            Q(state="delivered") & (Q(kind="escalation") | Q(tier="key")),
            then=Value(PIN_KEY_UNREAD),
        ),
        default=Value(PIN_NONE),
        output_field=models.IntegerField(),
    )


def inbox_pinned_due() -> Case:
    """Pinned items come by acknowledgement due time; the rest have none."""
    return Case(
        When(_unacknowledged("critical") | _unacknowledged("key"), then=F("ack_due_at")),
        default=None,
        output_field=models.DateTimeField(),
    )


class Delivery(models.Model):
    """One thing to one recipient on one channel; the database's record of the work to do.

    Kinds: ``message`` (a message's delivery; routine and info ones wait, ``via_digest``, to
    be folded into a ``Digest``), ``digest`` (a digest itself reaching its recipient; no
    message) and ``escalation`` (an overdue acknowledgement at ``study_site`` reported to its
    principal investigator, its CRA and the sender).
    """

    kind = models.CharField(
        max_length=10, choices=DeliveryKind.choices, default=DeliveryKind.MESSAGE
    )
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="deliveries",
        db_index=False,  # (recipient, state) and the inbox index lead with it
    )
    study_site = models.ForeignKey(
        "sites.StudySite",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
        help_text="The study-site through which the recipient was reached (for an "
        "escalation: the study-site whose acknowledgement is overdue).",
    )
    digest = models.ForeignKey(
        Digest,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="deliveries",
        help_text="A message delivery: the digest that carried it. A digest delivery: its digest.",
    )
    channel = models.CharField(max_length=8, choices=Channel.choices)
    state = models.CharField(
        max_length=12, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    via_digest = models.BooleanField(
        default=False, help_text="Waits for the recipient's digest window instead of going alone."
    )
    throttled = models.BooleanField(
        default=False,
        help_text="A 'send now' routine message over the site's daily limit, "
        "folded into the digest.",
    )
    due_at = models.DateTimeField()
    # Copied from the message when the row is written (both are fixed once it is sent), so the
    # inbox orders and the escalation sweep filters on the delivery's own columns, by index.
    tier = models.CharField(max_length=10, choices=Tier.choices, default=Tier.ROUTINE)
    ack_due_at = models.DateTimeField(
        null=True, blank=True, help_text="A message delivery that must be acknowledged: by when."
    )
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(
        null=True, blank=True, help_text="When its overdue acknowledgement was escalated."
    )

    class Meta:
        ordering = ["-due_at", "-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["recipient", "state"]),
            models.Index(
                fields=["due_at"],
                condition=Q(state="pending"),
                name="delivery_pending_due",
            ),
            # The inbox of one recipient in its order: the page is an index scan that stops
            # after a page (comms.selectors.inbox_for_user uses the same expressions).
            models.Index(
                "recipient",
                inbox_pin_rank(),
                inbox_pinned_due(),
                F("delivered_at").desc(),
                F("id").desc(),
                condition=INBOX_ROWS,
                name="delivery_inbox_order",
            ),
            # Acknowledgements that may become overdue (the escalation sweep).
            models.Index(
                fields=["ack_due_at"],
                condition=Q(
                    kind="message",
                    channel="in_app",
                    escalated_at__isnull=True,
                    ack_due_at__isnull=False,
                    state__in=("pending", "delivered", "read"),
                ),
                name="delivery_ack_open",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "recipient", "channel"],
                condition=Q(kind=DeliveryKind.MESSAGE),
                name="delivery_one_per_channel",
            ),
            models.UniqueConstraint(
                fields=["message", "study_site", "recipient", "channel"],
                condition=Q(kind=DeliveryKind.ESCALATION),
                name="delivery_one_escalation_per_site",
            ),
            models.UniqueConstraint(
                fields=["digest", "channel"],
                condition=Q(kind=DeliveryKind.DIGEST),
                name="delivery_one_per_digest_channel",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=DeliveryKind.values), name="delivery_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(kind=DeliveryKind.DIGEST, message__isnull=True, digest__isnull=False)
                | ~Q(kind=DeliveryKind.DIGEST) & Q(message__isnull=False),
                name="delivery_message_unless_digest",
            ),
            models.CheckConstraint(
                condition=Q(via_digest=False) | Q(kind=DeliveryKind.MESSAGE),
                name="delivery_via_digest_messages_only",
            ),
            models.CheckConstraint(
                condition=Q(throttled=False) | Q(via_digest=True),
                name="delivery_throttled_via_digest",
            ),
            models.CheckConstraint(
                condition=Q(channel__in=Channel.values), name="delivery_channel_valid"
            ),
            models.CheckConstraint(
                condition=Q(state__in=DeliveryState.values), name="delivery_state_valid"
            ),
            models.CheckConstraint(
                condition=Q(state=DeliveryState.PENDING) | Q(delivered_at__isnull=False),
                name="delivery_delivered_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(state=DeliveryState.READ) | Q(read_at__isnull=False),
                name="delivery_read_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(state=DeliveryState.ACKNOWLEDGED) | Q(acknowledged_at__isnull=False),
                name="delivery_acknowledged_has_time",
            ),
        ]

    def __str__(self) -> str:
        source = self.message_id or self.digest_id
        return f"{self.kind} {source} → {self.recipient_id} ({self.channel}, {self.state})"


class TemplateStatus(models.TextChoices):
    DRAFT = "draft", "Awaiting approval"
    APPROVED = "approved", "Approved"
    RETIRED = "retired", "Retired"


# Placeholders a template's subject and body may use; ``{site_name}`` is filled per recipient
# when the message is shown, ``{due_date}`` when the message is written.
TEMPLATE_PLACEHOLDERS = ("site_name", "due_date", "study_code")


class MessageTemplate(models.Model):
    """Wording for one category that the study's sponsor lead approves (the sponsor's stance,
    written down). Editing an approved template makes a new version awaiting approval; a
    message stores the version it was written from."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="message_templates")
    category = models.CharField(max_length=24, choices=Category.choices)
    name = models.CharField(max_length=120)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    version = models.PositiveIntegerField(default=1)
    status = models.CharField(
        max_length=10, choices=TemplateStatus.choices, default=TemplateStatus.DRAFT
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(default=timezone.now)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["study", "category", "name"]
        constraints = [
            models.UniqueConstraint(fields=["study", "name"], name="template_name_per_study"),
            models.CheckConstraint(
                condition=Q(category__in=Category.values), name="template_category_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=TemplateStatus.values), name="template_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status=TemplateStatus.APPROVED)
                | Q(approved_by__isnull=False, approved_at__isnull=False),
                name="template_approved_has_approver",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


# Stand-alone ("send now") routine messages a site receives per day on a study, unless the
# study's policy says otherwise.
DEFAULT_SEND_NOW_DAILY_LIMIT = 2


class StudyCommsPolicy(models.Model):
    """A study's delivery settings, set by its sponsor lead."""

    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="comms_policy")
    send_now_daily_limit = models.PositiveSmallIntegerField(
        default=DEFAULT_SEND_NOW_DAILY_LIMIT,
        help_text="Stand-alone routine messages a site receives per local day; more wait "
        "for the digest.",
    )
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name_plural = "study comms policies"

    def __str__(self) -> str:
        return f"Comms policy of {self.study}"
