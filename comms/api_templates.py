"""API v1 for message templates: the wording per category that a study's sponsor lead approves.

``/api/v1/message-templates/`` (``?study=``): sponsor and CRO people on a study list its
templates; writers propose (POST) and edit (PATCH) them; the sponsor lead approves; the
sponsor lead (or the proposing organisation, before approval) retires. Routes are declared in
``trialhub.api.urls``. A template out of reach answers 404; the services answer 403 for what
the caller sees but may not do, and 400 with field errors for bad input.
"""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from comms.models import Category, MessageTemplate, TemplateStatus
from comms.selectors import templates_for_user
from comms.services import (
    message_template_approve,
    message_template_create,
    message_template_retire,
    message_template_update,
)
from trialhub.api.base import TenantScopedMixin
from trialhub.api.serializers import OrganizationSerializer, ReachableIdField
from trialhub.selectors import studies_for_user

INVALID = OpenApiResponse(description="Field errors, keyed by field; nothing was written.")
FORBIDDEN = OpenApiResponse(description="You can see this but may not do this to it.")
NOT_FOUND = OpenApiResponse(description="Missing or out of your reach.")
PLACEHOLDERS_HELP = "Placeholders: {site_name}, {due_date}, {study_code}; no others."


class MessageTemplateSerializer(serializers.ModelSerializer):
    organization = OrganizationSerializer(
        read_only=True, help_text="The organisation that proposed it."
    )
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    approved_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = MessageTemplate
        fields = [
            "id",
            "study",
            "category",
            "name",
            "subject",
            "body",
            "version",
            "status",
            "organization",
            "created_by",
            "updated_at",
            "approved_by",
            "approved_at",
        ]
        read_only_fields = fields


class MessageTemplateCreateSerializer(serializers.Serializer):
    # Shapes only (blanks included): the service checks names, wording and who may write.
    study = ReachableIdField(studies_for_user)
    category = serializers.ChoiceField(choices=Category.choices)
    name = serializers.CharField(allow_blank=True)
    subject = serializers.CharField(allow_blank=True, help_text=PLACEHOLDERS_HELP)
    body = serializers.CharField(allow_blank=True, help_text=PLACEHOLDERS_HELP)


class MessageTemplateUpdateSerializer(serializers.Serializer):
    category = serializers.ChoiceField(choices=Category.choices, required=False)
    name = serializers.CharField(required=False, allow_blank=True)
    subject = serializers.CharField(required=False, allow_blank=True, help_text=PLACEHOLDERS_HELP)
    body = serializers.CharField(required=False, allow_blank=True, help_text=PLACEHOLDERS_HELP)


class MessageTemplateFilter(django_filters.FilterSet):
    # A plain id: an unknown study filters to nothing rather than disclosing anything.
    study = django_filters.NumberFilter(field_name="study")
    status = django_filters.ChoiceFilter(choices=TemplateStatus.choices)
    category = django_filters.ChoiceFilter(choices=Category.choices)

    class Meta:
        model = MessageTemplate
        fields = ["study", "status", "category"]


TEMPLATE_DONE = {200: MessageTemplateSerializer, 400: INVALID, 403: FORBIDDEN, 404: NOT_FOUND}


@extend_schema(tags=["message templates"])
@extend_schema_view(
    list=extend_schema(
        description="Templates of the studies you work on as a sponsor or CRO, by study, "
        "category and name (`?study=` for one study)."
    ),
    create=extend_schema(
        request=MessageTemplateCreateSerializer,
        responses={201: MessageTemplateSerializer, 400: INVALID, 403: FORBIDDEN},
        description="Propose a template (sponsor and CRO writers on the study): version 1, "
        "awaiting the sponsor lead's approval. A study out of your reach is a field error.",
    ),
    partial_update=extend_schema(
        request=MessageTemplateUpdateSerializer,
        responses=TEMPLATE_DONE,
        description="Edit a template. Editing an approved one makes the next version, "
        "awaiting approval again; editing one awaiting approval keeps its version.",
    ),
    approve=extend_schema(
        request=None,
        responses=TEMPLATE_DONE,
        description="Approve the current version (the study's sponsor lead only). Messages "
        "written from it go out without per-message approval while the wording is unchanged.",
    ),
    retire=extend_schema(
        request=None,
        responses=TEMPLATE_DONE,
        description="Retire a template (the sponsor lead; or the proposing organisation while "
        "it awaits approval). Nothing is written from it any more.",
    ),
)
class MessageTemplateViewSet(
    TenantScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Message templates of the caller's studies (sponsor and CRO people only)."""

    serializer_class = MessageTemplateSerializer
    filterset_class = MessageTemplateFilter
    http_method_names = ["get", "post", "patch", "head", "options"]

    def safely_get_queryset(self, user):
        return templates_for_user(user).order_by("study_id", "category", "name", "id")

    def get_serializer_class(self):
        return {
            "create": MessageTemplateCreateSerializer,
            "partial_update": MessageTemplateUpdateSerializer,
        }.get(self.action, MessageTemplateSerializer)

    def _parse(self, request) -> dict:
        data = self.get_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        return data.validated_data

    def create(self, request):
        template = message_template_create(actor=request.user, **self._parse(request))
        return Response(MessageTemplateSerializer(template).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        template = self.get_object()
        template = message_template_update(
            template=template, actor=request.user, **self._parse(request)
        )
        return Response(MessageTemplateSerializer(template).data)

    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        template = message_template_approve(template=self.get_object(), actor=request.user)
        return Response(MessageTemplateSerializer(template).data)

    @action(detail=True, methods=["post"])
    def retire(self, request, pk=None):
        template = message_template_retire(template=self.get_object(), actor=request.user)
        return Response(MessageTemplateSerializer(template).data)
