"""API v1 for Sponsor–CRO coordination: a study's status updates and meeting log, and marking an
action item done. Routes are declared in ``trialhub.api.urls``.

Studies and action items are resolved through the coordination selectors: whatever the caller
does not read (another tenant's, or any of it for site people) answers 404; a reader who may
not write gets 403; bad input gets 400 with field errors, nothing written.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from trialhub.api.base import TenantScopedMixin
from trialhub.api.serializers import OrganizationSerializer, ReachableIdField, UserSerializer
from trialhub.models import ActionItem, Meeting, Study, StudyStatusUpdate
from trialhub.permissions import WRITE_COORDINATION, coordination_capabilities
from trialhub.selectors import (
    action_item_for_user,
    coordination_study_for_user,
    meetings_for_study,
    status_updates_for_study,
    users_for_user,
)
from trialhub.services import action_item_set_done, meeting_create, status_update_create
from trialhub.services.coordination import MAX_ACTION_ITEMS

STUDY_ID = OpenApiParameter(
    "study_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="A study's id."
)
ITEM_ID = OpenApiParameter(
    "item_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="An action item's id."
)
INVALID = OpenApiResponse(description="Field errors, keyed by field; nothing was written.")
FORBIDDEN = OpenApiResponse(description="You read this study's coordination but may not write.")
NOT_FOUND = OpenApiResponse(description="Missing or out of your reach.")

# --- shapes ----------------------------------------------------------------------------------


class StatusUpdateSerializer(serializers.ModelSerializer):
    author = UserSerializer(read_only=True)
    author_organization = OrganizationSerializer(read_only=True)

    class Meta:
        model = StudyStatusUpdate
        fields = [
            "id",
            "study",
            "period_start",
            "period_end",
            "highlights",
            "risks",
            "asks",
            "author",
            "author_organization",
            "created_at",
        ]
        read_only_fields = fields


class StatusUpdateCreateSerializer(serializers.Serializer):
    period_start = serializers.DateField()
    period_end = serializers.DateField(help_text="Not before period_start.")
    highlights = serializers.CharField(help_text="What happened in the period.")
    risks = serializers.CharField(required=False, allow_blank=True, default="")
    asks = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="What you need from the others."
    )


class ActionItemSerializer(serializers.ModelSerializer):
    owner = UserSerializer(read_only=True)
    done_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    overdue = serializers.BooleanField(read_only=True, help_text="Not done and due before today.")

    class Meta:
        model = ActionItem
        fields = [
            "id",
            "meeting",
            "description",
            "owner",
            "due_date",
            "done",
            "done_at",
            "done_by",
            "overdue",
        ]
        read_only_fields = fields


class MeetingSerializer(serializers.ModelSerializer):
    recorded_by = UserSerializer(read_only=True)
    recorded_by_organization = OrganizationSerializer(read_only=True)
    action_items = ActionItemSerializer(many=True, read_only=True)

    class Meta:
        model = Meeting
        fields = [
            "id",
            "study",
            "held_on",
            "title",
            "attendees",
            "notes",
            "recorded_by",
            "recorded_by_organization",
            "created_at",
            "action_items",
        ]
        read_only_fields = fields


class ActionItemCreateSerializer(serializers.Serializer):
    description = serializers.CharField(max_length=500)
    owner = ReachableIdField(
        users_for_user, help_text="Id of a person of the study's sponsor or an engaged CRO."
    )
    due_date = serializers.DateField(help_text="Not before the meeting.")


class MeetingCreateSerializer(serializers.Serializer):
    held_on = serializers.DateField(help_text="Today or earlier.")
    title = serializers.CharField(max_length=200)
    attendees = serializers.CharField(required=False, allow_blank=True, default="")
    notes = serializers.CharField(required=False, allow_blank=True, default="")
    action_items = ActionItemCreateSerializer(
        many=True, required=False, default=list, max_length=MAX_ACTION_ITEMS
    )


class ActionItemDoneSerializer(serializers.Serializer):
    done = serializers.BooleanField(help_text="true: done; false: open again.")


# --- views -----------------------------------------------------------------------------------


def _writer_or_403(user, study: Study) -> None:
    """Refuse before parsing, so a reader learns "not yours to write" rather than field errors."""
    if WRITE_COORDINATION not in coordination_capabilities(user, study):
        raise PermissionDenied("Only the sponsor lead and the CRO project manager write here.")


def _nested_action_item_errors(error: DjangoValidationError) -> dict:
    """A service's ``action_items.<index>.<field>`` keys nested as DRF nests a list's errors
    (by the index of each failing item): ``{"action_items": {"1": {"owner": [...]}}}``."""
    detail: dict = {}
    for key, messages in error.message_dict.items():
        parts = key.split(".")
        if len(parts) == 3 and parts[0] == "action_items" and parts[1].isdigit():
            items = detail.setdefault("action_items", {})
            items.setdefault(int(parts[1]), {})[parts[2]] = messages
        else:
            detail[key] = messages
    return detail


@extend_schema(tags=["coordination"], parameters=[STUDY_ID])
class StudyStatusUpdatesView(TenantScopedMixin, generics.ListCreateAPIView):
    """The study's status updates, latest period first (sponsor and CRO people only)."""

    serializer_class = StatusUpdateSerializer

    def safely_get_queryset(self, user):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no study in the URL
            return StudyStatusUpdate.objects.none()
        study = coordination_study_for_user(user, self.kwargs["study_id"])
        return status_updates_for_study(user, study)

    @extend_schema(
        request=StatusUpdateCreateSerializer,
        responses={201: StatusUpdateSerializer, 400: INVALID, 403: FORBIDDEN, 404: NOT_FOUND},
        description="Post a status update (sponsor lead, CRO project manager, organisation "
        "admins) for a period that has begun.",
    )
    def post(self, request, study_id: int):
        study = coordination_study_for_user(request.user, study_id)
        _writer_or_403(request.user, study)
        data = StatusUpdateCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        update = status_update_create(study=study, actor=request.user, **data.validated_data)
        return Response(StatusUpdateSerializer(update).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["coordination"], parameters=[STUDY_ID])
class StudyMeetingsView(TenantScopedMixin, generics.ListCreateAPIView):
    """The study's meeting log, latest first, each meeting with its action items."""

    serializer_class = MeetingSerializer

    def safely_get_queryset(self, user):
        if getattr(self, "swagger_fake_view", False):
            return Meeting.objects.none()
        study = coordination_study_for_user(user, self.kwargs["study_id"])
        return meetings_for_study(user, study)

    @extend_schema(
        request=MeetingCreateSerializer,
        responses={201: MeetingSerializer, 400: INVALID, 403: FORBIDDEN, 404: NOT_FOUND},
        description="Log a meeting with its action items, all or nothing. Errors of an action "
        'item come under its index (from 0): {"action_items": {"1": {"owner": [...]}}}.',
    )
    def post(self, request, study_id: int):
        study = coordination_study_for_user(request.user, study_id)
        _writer_or_403(request.user, study)
        data = MeetingCreateSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        try:
            meeting = meeting_create(study=study, actor=request.user, **fields)
        except DjangoValidationError as error:
            raise ValidationError(_nested_action_item_errors(error)) from error
        meeting = meetings_for_study(request.user, study).get(pk=meeting.pk)
        return Response(MeetingSerializer(meeting).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["coordination"], parameters=[ITEM_ID])
class ActionItemDoneView(APIView):
    @extend_schema(
        request=ActionItemDoneSerializer,
        responses={200: ActionItemSerializer, 400: INVALID, 403: FORBIDDEN, 404: NOT_FOUND},
        description="Mark an action item done or open again (its owner, or a study writer). "
        "Setting the state it has already changes nothing.",
    )
    def post(self, request, item_id: int):
        item = action_item_for_user(request.user, item_id)
        data = ActionItemDoneSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        item = action_item_set_done(
            action_item=item, actor=request.user, done=data.validated_data["done"]
        )
        return Response(ActionItemSerializer(item).data)
