"""API v1 for communications: messages (draft, send, approve, reject, endorse) and the
prioritised inbox (read, acknowledge, counts).

Routes are declared in ``trialhub.api.urls``. Tenancy comes from ``comms.selectors``: a
message or inbox item out of reach answers 404; the services answer 403 for what the caller
sees but may not do.
"""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from comms.models import Category, Delivery, DeliveryKind, Message, MessageStatus, Tier
from comms.rendering import render_placeholders
from comms.selectors import (
    INBOX_STATES,
    inbox_counts,
    inbox_digest_lines,
    inbox_for_user,
    inbox_item_for_user,
    messages_for_user,
    templates_for_user,
)
from comms.services import (
    delivery_acknowledge,
    delivery_mark_read,
    message_approve,
    message_draft_create,
    message_endorse,
    message_reject,
    message_send,
)
from trialhub.api.base import TenantScopedMixin
from trialhub.api.serializers import OrganizationSerializer, ReachableIdField
from trialhub.selectors import studies_for_user

INVALID = OpenApiResponse(description="Field errors, keyed by field; nothing was written.")
FORBIDDEN = OpenApiResponse(description="You can see this but may not do this to it.")
NOT_FOUND = OpenApiResponse(description="Missing or out of your reach.")
# The inbox names delivery states as a reader sees them (PRODUCT.md "API").
STATE_NAMES = {delivery_state: name for name, delivery_state in INBOX_STATES.items()}
STATE_CHOICES = [(name, name.capitalize()) for name in INBOX_STATES]

# --- messages ------------------------------------------------------------------------------


class MessageSerializer(serializers.ModelSerializer):
    sender = serializers.SlugRelatedField(slug_field="username", read_only=True)
    sender_organization = OrganizationSerializer(read_only=True)
    endorsed_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    audience = serializers.JSONField(
        read_only=True,
        help_text='{"study_sites": [ids]} | {"all_sites": true} | {"countries": ["DE"]}, '
        'optionally with "roles".',
    )

    class Meta:
        model = Message
        fields = [
            "id",
            "study",
            "category",
            "tier",
            "subject",
            "body",
            "status",
            "requires_ack",
            "ack_due_at",
            "audience",
            "dedup_key",
            "send_now",
            "sender",
            "sender_organization",
            "endorsed_by",
            "endorsed_at",
            "created_at",
            "submitted_at",
            "sent_at",
            "recipients_count",
            "endorsement_requested",
            "template",
            "template_version",
        ]
        read_only_fields = fields


class MessageCreateSerializer(serializers.Serializer):
    # Shapes only: the draft service checks tiers, audience, send_now and ack_due_at.
    study = ReachableIdField(studies_for_user)
    category = serializers.ChoiceField(
        choices=Category.choices, required=False, help_text="Required unless from a template."
    )
    subject = serializers.CharField(
        required=False, default="", help_text="Defaults to the template's."
    )
    body = serializers.CharField(
        required=False, default="", help_text="Defaults to the template's."
    )
    audience = serializers.JSONField(
        help_text='{"study_sites": [ids]} | {"all_sites": true} | {"countries": ["DE"]}, '
        'optionally with "roles": ["site_coordinator", "principal_investigator"].'
    )
    tier = serializers.ChoiceField(
        choices=Tier.choices, required=False, help_text="Defaults to the category's tier."
    )
    dedup_key = serializers.CharField(required=False, allow_blank=True, default="")
    send_now = serializers.BooleanField(required=False, default=False)
    ack_due_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    template = ReachableIdField(
        templates_for_user,
        required=False,
        allow_null=True,
        default=None,
        help_text="An approved template of the study: its category and wording.",
    )
    due_date = serializers.DateField(
        required=False, allow_null=True, default=None, help_text="Fills {due_date}."
    )
    endorsement_requested = serializers.BooleanField(
        required=False, default=False, help_text="A CRO asks the sponsor lead to co-sign."
    )


class ApproveSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class RejectSerializer(serializers.Serializer):
    reason = serializers.CharField()


class MessageFilter(django_filters.FilterSet):
    # A plain id: an unknown study filters to nothing rather than disclosing anything.
    study = django_filters.NumberFilter(field_name="study")
    status = django_filters.ChoiceFilter(choices=MessageStatus.choices)
    category = django_filters.ChoiceFilter(choices=Category.choices)
    tier = django_filters.ChoiceFilter(choices=Tier.choices)

    class Meta:
        model = Message
        fields = ["study", "status", "category", "tier"]


MESSAGE_DONE = {200: MessageSerializer, 400: INVALID, 403: FORBIDDEN, 404: NOT_FOUND}


@extend_schema(tags=["messages"])
@extend_schema_view(
    create=extend_schema(
        request=MessageCreateSerializer,
        responses={201: MessageSerializer, 400: INVALID, 403: FORBIDDEN},
        description="Save a draft (sponsor and CRO writers). A study out of your reach is a "
        "field error (400).",
    ),
    send=extend_schema(
        request=None,
        responses=MESSAGE_DONE,
        description="Send your draft: out now when your organisation is Responsible or "
        "Accountable for its area, otherwise pending approval by the Accountable party.",
    ),
    approve=extend_schema(
        request=ApproveSerializer,
        responses=MESSAGE_DONE,
        description="Approve a message pending approval (Accountable party); it goes out.",
    ),
    reject=extend_schema(
        request=RejectSerializer,
        responses=MESSAGE_DONE,
        description="Reject a message pending approval, with a reason (Accountable party).",
    ),
    endorse=extend_schema(
        request=None,
        responses=MESSAGE_DONE,
        description="Co-sign a key or critical message as the study's sponsor lead.",
    ),
)
class MessageViewSet(
    TenantScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Messages the caller may see: their studies' messages (other organisations' drafts
    excepted) for sponsors and CROs, messages delivered to them for site people."""

    serializer_class = MessageSerializer
    filterset_class = MessageFilter

    def safely_get_queryset(self, user):
        return messages_for_user(user)

    def get_serializer_class(self):
        # Input shapes per action (also what the browsable API's forms show).
        return {
            "create": MessageCreateSerializer,
            "approve": ApproveSerializer,
            "reject": RejectSerializer,
        }.get(self.action, MessageSerializer)

    def _parse(self, request) -> dict:
        data = self.get_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        return data.validated_data

    def create(self, request):
        message = message_draft_create(actor=request.user, **self._parse(request))
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def send(self, request, pk=None):
        message = message_send(message=self.get_object(), actor=request.user)
        return Response(MessageSerializer(message).data)

    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        message = self.get_object()
        reason = self._parse(request)["reason"]
        message = message_approve(message=message, actor=request.user, reason=reason)
        return Response(MessageSerializer(message).data)

    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        message = self.get_object()
        reason = self._parse(request)["reason"]
        message = message_reject(message=message, actor=request.user, reason=reason)
        return Response(MessageSerializer(message).data)

    @action(detail=True, methods=["post"])
    def endorse(self, request, pk=None):
        message = message_endorse(message=self.get_object(), actor=request.user)
        return Response(MessageSerializer(message).data)


# --- inbox ---------------------------------------------------------------------------------


class InboxMessageSerializer(serializers.ModelSerializer):
    study_code = serializers.CharField(source="study.code", read_only=True)
    sponsor = OrganizationSerializer(source="study.sponsor", read_only=True)
    sender_organization = OrganizationSerializer(read_only=True)
    endorsed = serializers.SerializerMethodField(help_text="Co-signed by the study's sponsor.")

    class Meta:
        model = Message
        fields = [
            "id",
            "subject",
            "body",
            "tier",
            "category",
            "study",
            "study_code",
            "sponsor",
            "sender_organization",
            "endorsed",
        ]
        read_only_fields = fields

    def get_endorsed(self, message) -> bool:
        return message.endorsed_at is not None


class DigestLineSerializer(serializers.Serializer):
    subject = serializers.CharField()
    count = serializers.IntegerField(help_text="Messages with the same dedup key share a line.")
    category = serializers.CharField()
    tier = serializers.CharField()
    study = serializers.IntegerField(source="study_id")
    study_code = serializers.CharField()
    sponsor_name = serializers.CharField()
    message_ids = serializers.ListField(child=serializers.IntegerField())
    latest_at = serializers.DateTimeField()


class EscalationSerializer(serializers.Serializer):
    study_site = serializers.IntegerField(source="study_site_id")
    site_name = serializers.CharField(source="study_site.site.name")


class InboxItemSerializer(serializers.ModelSerializer):
    """An inbox item: a message, a digest of routine and info messages (``is_digest``, its
    lines in ``digest_items``, ``message`` a summary), or an escalation about a message that
    a site has not acknowledged in time (``kind`` = escalation)."""

    message = serializers.SerializerMethodField()
    state = serializers.SerializerMethodField()
    is_digest = serializers.SerializerMethodField()
    digest_items = serializers.SerializerMethodField()
    escalation = serializers.SerializerMethodField()
    ack_due_at = serializers.SerializerMethodField()
    requires_ack = serializers.SerializerMethodField()

    class Meta:
        model = Delivery
        fields = [
            "id",
            "kind",
            "message",
            "state",
            "is_digest",
            "digest_items",
            "escalation",
            "delivered_at",
            "read_at",
            "acknowledged_at",
            "ack_due_at",
            "requires_ack",
        ]
        read_only_fields = fields

    @extend_schema_field(InboxMessageSerializer)
    def get_message(self, delivery) -> dict:
        if delivery.kind != DeliveryKind.DIGEST:
            # One nested serializer for the whole page (building one per item costs a third
            # of a large page's time, bench/inbox.py).
            if "message_serializer" not in self.context:
                self.context["message_serializer"] = InboxMessageSerializer()
            data = self.context["message_serializer"].to_representation(delivery.message)
            # {site_name} of a template's wording reads as the recipient's own site.
            site_name = delivery.study_site.site.name if delivery.study_site else ""
            for text in ("subject", "body"):
                data[text] = render_placeholders(data[text], site_name=site_name)
            return data
        count = delivery.digest.lines_count
        lines = self._lines(delivery)
        routine = any(line.tier == Tier.ROUTINE for line in lines) or not lines
        return {
            "id": None,
            "subject": f"Digest: {count} update{'s' if count != 1 else ''}",
            "body": "",
            "tier": (Tier.ROUTINE if routine else Tier.INFO).value,
            "category": None,
            "study": None,
            "study_code": None,
            "sponsor": None,
            "sender_organization": None,
            "endorsed": False,
        }

    @extend_schema_field(serializers.ChoiceField(choices=STATE_CHOICES))
    def get_state(self, delivery) -> str:
        return STATE_NAMES[delivery.state]

    def get_is_digest(self, delivery) -> bool:
        return delivery.kind == DeliveryKind.DIGEST

    @extend_schema_field(DigestLineSerializer(many=True))
    def get_digest_items(self, delivery) -> list:
        if delivery.kind != DeliveryKind.DIGEST:
            return []
        return DigestLineSerializer(self._lines(delivery), many=True).data

    def _lines(self, delivery) -> list:
        """The digest's lines: from the page's batch in the context, else loaded now."""
        lines = self.context.setdefault("digest_lines", {})
        if delivery.digest_id not in lines:
            lines.update(inbox_digest_lines([delivery]))
        return lines[delivery.digest_id]

    @extend_schema_field(EscalationSerializer(allow_null=True))
    def get_escalation(self, delivery) -> dict | None:
        if delivery.kind != DeliveryKind.ESCALATION:
            return None
        return EscalationSerializer(delivery).data

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_ack_due_at(self, delivery):
        # The delivery's own: later than the message's when quiet hours held it back.
        if delivery.kind != DeliveryKind.MESSAGE or delivery.ack_due_at is None:
            return None
        return serializers.DateTimeField().to_representation(delivery.ack_due_at)

    def get_requires_ack(self, delivery) -> bool:
        return delivery.kind == DeliveryKind.MESSAGE and delivery.message.requires_ack


class InboxFilterSerializer(serializers.Serializer):
    study = serializers.IntegerField(required=False, help_text="A study's id.")
    sponsor = serializers.IntegerField(required=False, help_text="A sponsor organisation's id.")
    tier = serializers.ChoiceField(choices=Tier.choices, required=False)
    state = serializers.ChoiceField(choices=STATE_CHOICES, required=False)


class InboxCountsSerializer(serializers.Serializer):
    unread = serializers.IntegerField()
    to_acknowledge = serializers.IntegerField()


INBOX_DONE = {200: InboxItemSerializer, 400: INVALID, 404: NOT_FOUND}


@extend_schema(tags=["inbox"])
@extend_schema_view(
    list=extend_schema(
        parameters=[InboxFilterSerializer],
        description="Your inbox across every study, prioritised: unacknowledged critical, "
        "unacknowledged key by due time, unread key, then the rest newest first. "
        "Acknowledged items stay listed below the pinned ones.",
    ),
    retrieve=extend_schema(description="One of your inbox items (reading it changes nothing)."),
    read=extend_schema(request=None, responses=INBOX_DONE, description="Mark it read."),
    acknowledge=extend_schema(
        request=None,
        responses=INBOX_DONE,
        description="Acknowledge a key or critical message; a routine one is a 400.",
    ),
    counts=extend_schema(responses=InboxCountsSerializer, description="For the page header."),
)
class InboxViewSet(
    TenantScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The caller's own in-app deliveries; anyone else's answer 404."""

    serializer_class = InboxItemSerializer
    filter_backends: list = []  # filters are the selector's (``inbox_for_user``)

    def safely_get_queryset(self, user):
        filters = None
        if self.action == "list":
            parsed = InboxFilterSerializer(data=self.request.query_params)
            parsed.is_valid(raise_exception=True)
            filters = parsed.validated_data
        return inbox_for_user(user=user, filters=filters)

    def get_object(self) -> Delivery:
        item = inbox_item_for_user(self.request.user, self.kwargs["pk"])
        self.check_object_permissions(self.request, item)
        return item

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        context = {**self.get_serializer_context(), "digest_lines": inbox_digest_lines(page)}
        return self.get_paginated_response(
            InboxItemSerializer(page, many=True, context=context).data
        )

    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        item = delivery_mark_read(delivery=self.get_object(), actor=request.user)
        return Response(InboxItemSerializer(item).data)

    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        item = delivery_acknowledge(delivery=self.get_object(), actor=request.user)
        return Response(InboxItemSerializer(item).data)

    @action(detail=False, methods=["get"])
    def counts(self, request):
        return Response(InboxCountsSerializer(inbox_counts(request.user)).data)
