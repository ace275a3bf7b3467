"""API v1 shapes (PRODUCT.md "API"). Parsing and rendering only: rules live in services.

Fields that accept ids resolve them through the caller's selectors, so an id out of reach is
a 400 "not found" field error, exactly like a missing one.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from sites.selectors import study_sites_for_user
from trialhub.models import (
    Area,
    MatrixChange,
    MatrixRevision,
    Organization,
    Raci,
    RoleAssignment,
    Study,
    StudyRole,
)
from trialhub.selectors import studies_for_user, users_for_user

User = get_user_model()


class OrganizationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["id", "name", "kind"]


class UserSerializer(serializers.ModelSerializer):
    """A person: reads ``membership.organization``, which every selector select_relates."""

    name = serializers.SerializerMethodField()
    organization = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "username", "name", "organization"]

    def get_name(self, user) -> str:
        return user.get_full_name() or user.username

    @extend_schema_field(OrganizationSerializer(allow_null=True))
    def get_organization(self, user) -> dict | None:
        # A reverse one-to-one raises an AttributeError subclass when there is no row.
        membership = getattr(user, "membership", None)
        if membership is None:
            return None
        return OrganizationSerializer(membership.organization).data


class StudySerializer(serializers.ModelSerializer):
    sponsor = OrganizationSerializer(read_only=True)
    cros = serializers.SerializerMethodField(help_text="The CROs engaged on the study.")

    class Meta:
        model = Study
        fields = [
            "id",
            "code",
            "title",
            "phase",
            "therapeutic_area",
            "status",
            "enrolment_target",
            "planned_start",
            "planned_end",
            "sponsor",
            "cros",
        ]

    @extend_schema_field(OrganizationSerializer(many=True))
    def get_cros(self, study) -> list[dict]:
        # ``engagements`` is prefetched with their CROs by the view's queryset.
        cros = [engagement.cro for engagement in study.engagements.all()]
        return OrganizationSerializer(cros, many=True).data


class MatrixEntrySerializer(serializers.Serializer):
    # Plain types on purpose: the service checks areas, parties and codes as a whole matrix
    # and reports its errors by area.
    area = serializers.CharField(help_text=f"One of: {', '.join(Area.values)}.")
    organization = serializers.IntegerField(help_text="Id of a party of the study.")
    code = serializers.CharField(help_text=f"One of: {', '.join(Raci.values)}.")


class MatrixSerializer(serializers.Serializer):
    study = serializers.IntegerField(read_only=True)
    parties = OrganizationSerializer(many=True, read_only=True)
    entries = MatrixEntrySerializer(many=True)


class MatrixUpdateSerializer(serializers.Serializer):
    entries = MatrixEntrySerializer(many=True, allow_empty=True)
    note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class MatrixChangeSerializer(serializers.ModelSerializer):
    # Plain strings: one enum under two names would make clients generate two types.
    old_code = serializers.CharField(read_only=True, help_text="R, A, C, I, or empty: no code.")
    new_code = serializers.CharField(read_only=True, help_text="R, A, C, I, or empty: removed.")

    class Meta:
        model = MatrixChange
        fields = ["area", "organization", "old_code", "new_code"]


class MatrixRevisionSerializer(serializers.ModelSerializer):
    changed_by = UserSerializer(read_only=True, allow_null=True)
    changes = MatrixChangeSerializer(many=True, read_only=True)

    class Meta:
        model = MatrixRevision
        fields = ["id", "changed_by", "changed_at", "note", "changes"]


class RoleAssignmentSerializer(serializers.ModelSerializer):
    user = UserSerializer(read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    ended_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = RoleAssignment
        fields = [
            "id",
            "user",
            "role",
            "study",
            "study_site",
            "start_date",
            "end_date",
            "end_reason",
            "created_by",
            "ended_by",
        ]
        read_only_fields = fields


@extend_schema_field(OpenApiTypes.INT)
class ReachableIdField(serializers.PrimaryKeyRelatedField):
    """An id looked up among what the requesting user may reach (a selector)."""

    default_error_messages = {
        "does_not_exist": "Not found.",
        "incorrect_type": "Give an integer id.",
    }

    def __init__(self, selector, **kwargs):
        self.selector = selector
        super().__init__(**kwargs)

    def get_queryset(self):
        return self.selector(self.context["request"].user)


class RoleAssignmentCreateSerializer(serializers.Serializer):
    user = ReachableIdField(users_for_user)
    role = serializers.ChoiceField(choices=StudyRole.choices)
    study = ReachableIdField(studies_for_user, required=False)
    study_site = ReachableIdField(study_sites_for_user, required=False)
    start_date = serializers.DateField(required=False, help_text="Defaults to today.")


class RoleAssignmentEndSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300)
    end_date = serializers.DateField(required=False, help_text="Defaults to today.")


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(read_only=True)
