"""API v1 views: parse with a serializer, read through a selector, write through a service.

Everything is scoped by the caller's selectors, so whatever is out of reach answers 404;
services raise ``PermissionDenied`` (403) for what the caller can see but may not change.
"""

from __future__ import annotations

import django_filters
from django.contrib.auth import get_user_model
from django.db.models import Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics, mixins, status, viewsets
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from trialhub.api.base import TenantScopedMixin
from trialhub.api.serializers import (
    MatrixRevisionSerializer,
    MatrixSerializer,
    MatrixUpdateSerializer,
    RoleAssignmentCreateSerializer,
    RoleAssignmentEndSerializer,
    RoleAssignmentSerializer,
    StudySerializer,
    TokenSerializer,
    UserSerializer,
)
from trialhub.models import (
    Engagement,
    MatrixRevision,
    RoleAssignment,
    Study,
    StudyRole,
    StudyStatus,
)
from trialhub.selectors import (
    matrix_revisions,
    responsibility_matrix,
    role_assignments_for_user,
    studies_for_user,
    study_for_user,
    users_for_user,
)
from trialhub.services import (
    responsibility_matrix_set,
    role_assignment_create,
    role_assignment_end,
)

User = get_user_model()

STUDY_ID = OpenApiParameter(
    "study_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="A study's id."
)
# How services' refusals render (see ``trialhub.api.base.exception_handler``).
INVALID = OpenApiResponse(description="Field errors, keyed by field; nothing was written.")
FORBIDDEN = OpenApiResponse(description="You can see this but may not change it.")
NOT_FOUND = OpenApiResponse(description="Missing or out of your reach.")


class TokenObtainView(ObtainAuthToken):
    """Exchange a username and password for an API token (throttled per client)."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "token"

    @extend_schema(
        request=AuthTokenSerializer,
        responses={200: TokenSerializer, 400: OpenApiResponse(description="Wrong credentials.")},
        auth=[],
        tags=["auth"],
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


@extend_schema(tags=["people"])
class MeView(APIView):
    @extend_schema(responses=UserSerializer, description="The caller.")
    def get(self, request):
        return Response(UserSerializer(request.user).data)


class UserFilter(django_filters.FilterSet):
    organization = django_filters.NumberFilter(
        field_name="membership__organization", help_text="Organisation id."
    )
    role = django_filters.ChoiceFilter(
        choices=StudyRole.choices,
        method="filter_role",
        help_text="People holding this role, active, on a study the caller sees.",
    )

    class Meta:
        model = User
        fields = ["organization", "role"]

    def filter_role(self, queryset, name, value):
        holders = role_assignments_for_user(self.request.user).active().filter(role=value)
        return queryset.filter(id__in=holders.values("user_id"))


@extend_schema(tags=["people"])
class UserViewSet(TenantScopedMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """People the caller may assign or address."""

    serializer_class = UserSerializer
    filterset_class = UserFilter

    def safely_get_queryset(self, user):
        return users_for_user(user)


class StudyFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=StudyStatus.choices)

    class Meta:
        model = Study
        fields = ["status"]


@extend_schema(tags=["studies"])
class StudyViewSet(TenantScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Studies the caller sees, with their sponsor and engaged CROs."""

    serializer_class = StudySerializer
    filterset_class = StudyFilter

    def safely_get_queryset(self, user):
        engagements = Engagement.objects.select_related("cro").order_by("cro__name")
        return studies_for_user(user).prefetch_related(Prefetch("engagements", engagements))


@extend_schema(tags=["responsibilities"], parameters=[STUDY_ID])
class MatrixView(APIView):
    """A study's responsibility matrix: one RACI code per party and area."""

    @extend_schema(responses={200: MatrixSerializer, 404: NOT_FOUND})
    def get(self, request, study_id: int):
        study = study_for_user(request.user, study_id)
        return Response(MatrixSerializer(responsibility_matrix(study)).data)

    @extend_schema(
        request=MatrixUpdateSerializer,
        responses={200: MatrixSerializer, 400: INVALID, 403: FORBIDDEN, 404: NOT_FOUND},
        description="Replace the whole matrix (sponsor lead only); changes are audited. "
        "What GET returned can be PUT back unchanged.",
    )
    def put(self, request, study_id: int):
        study = study_for_user(request.user, study_id)
        data = MatrixUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        responsibility_matrix_set(
            study=study,
            entries=data.validated_data["entries"],
            note=data.validated_data["note"],
            actor=request.user,
        )
        return Response(MatrixSerializer(responsibility_matrix(study)).data)


@extend_schema(tags=["responsibilities"], parameters=[STUDY_ID])
class MatrixHistoryView(TenantScopedMixin, generics.ListAPIView):
    """The study's accepted matrix changes, newest first."""

    serializer_class = MatrixRevisionSerializer

    def safely_get_queryset(self, user):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no study in the URL
            return MatrixRevision.objects.none()
        return matrix_revisions(study_for_user(user, self.kwargs["study_id"]))


class RoleAssignmentFilter(django_filters.FilterSet):
    # Plain ids, not model choices: an unknown id must filter to nothing, not disclose.
    study = django_filters.NumberFilter(field_name="study")
    study_site = django_filters.NumberFilter(field_name="study_site")
    user = django_filters.NumberFilter(field_name="user")
    role = django_filters.ChoiceFilter(choices=StudyRole.choices)
    active = django_filters.BooleanFilter(
        method="filter_active", help_text="true: current assignments; false: ended or future."
    )

    class Meta:
        model = RoleAssignment
        fields = ["study", "study_site", "user", "role", "active"]

    def filter_active(self, queryset, name, value):
        active = queryset.active()
        return active if value else queryset.exclude(id__in=active.values("id"))


@extend_schema(tags=["role assignments"])
@extend_schema_view(
    create=extend_schema(
        request=RoleAssignmentCreateSerializer,
        responses={201: RoleAssignmentSerializer, 400: INVALID, 403: FORBIDDEN},
        description="Give a person a role on a study or a study-site. Ids out of your reach "
        "are field errors (400).",
    ),
    end=extend_schema(
        request=RoleAssignmentEndSerializer,
        responses={200: RoleAssignmentSerializer, 400: INVALID, 403: FORBIDDEN, 404: NOT_FOUND},
        description="End an assignment; it stays listed as history.",
    ),
)
class RoleAssignmentViewSet(
    TenantScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Role assignments on the caller's studies, ended ones included (history)."""

    serializer_class = RoleAssignmentSerializer
    filterset_class = RoleAssignmentFilter

    def safely_get_queryset(self, user):
        return role_assignments_for_user(user)

    def get_serializer_class(self):
        # Input shapes per action (also what the browsable API's forms show).
        if self.action == "create":
            return RoleAssignmentCreateSerializer
        return super().get_serializer_class()

    def create(self, request):
        data = self.get_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        assignment = role_assignment_create(actor=request.user, **data.validated_data)
        return Response(RoleAssignmentSerializer(assignment).data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"], serializer_class=RoleAssignmentEndSerializer)
    def end(self, request, pk=None):
        assignment = self.get_object()
        data = self.get_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        assignment = role_assignment_end(
            assignment=assignment,
            actor=request.user,
            reason=data.validated_data["reason"],
            on=data.validated_data.get("end_date"),
        )
        return Response(RoleAssignmentSerializer(assignment).data)
