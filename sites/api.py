"""API v1 for study-sites: a study's sites, and one study-site's status and milestones.

Routes are declared in ``trialhub.api.urls``. Tenancy comes from ``sites.selectors``.
"""

from __future__ import annotations

import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, mixins, serializers, viewsets
from rest_framework.response import Response

from sites.models import MILESTONE_FIELDS, Site, StudySite, StudySiteStatus
from sites.selectors import study_sites_for_user
from sites.services import study_site_update
from trialhub.api.base import TenantScopedMixin
from trialhub.selectors import study_for_user


class SiteSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Site
        fields = ["id", "name", "country"]


class StudySiteSerializer(serializers.ModelSerializer):
    """Rendered by GET; PATCH parses the writable fields and hands them to the service."""

    site = SiteSummarySerializer(read_only=True)

    class Meta:
        model = StudySite
        fields = ["id", "study", "site", "status", "enrolment_target", *MILESTONE_FIELDS]
        read_only_fields = ["id", "study", "site"]


class StudySiteFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=StudySiteStatus.choices)
    country = django_filters.CharFilter(
        field_name="site__country", lookup_expr="iexact", help_text="ISO code, e.g. DE."
    )

    class Meta:
        model = StudySite
        fields = ["status", "country"]


@extend_schema(
    tags=["study-sites"],
    parameters=[OpenApiParameter("study_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
)
class StudySiteListView(TenantScopedMixin, generics.ListAPIView):
    """The sites of one study the caller can see (a site's people: their own row only)."""

    serializer_class = StudySiteSerializer
    filterset_class = StudySiteFilter

    def safely_get_queryset(self, user):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no study in the URL
            return StudySite.objects.none()
        study = study_for_user(user, self.kwargs["study_id"])
        return study_sites_for_user(user, study)


@extend_schema(tags=["study-sites"])
class StudySiteViewSet(TenantScopedMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """One study-site: read it, or update its status, target and milestone dates (PATCH)."""

    serializer_class = StudySiteSerializer

    def safely_get_queryset(self, user):
        return study_sites_for_user(user)

    @extend_schema(
        responses={
            200: StudySiteSerializer,
            400: OpenApiResponse(description="Field errors; nothing was written."),
            403: OpenApiResponse(description="You can see this study-site but not change it."),
        }
    )
    def partial_update(self, request, *args, **kwargs):
        study_site = self.get_object()
        data = self.get_serializer(study_site, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        study_site = study_site_update(
            study_site=study_site, actor=request.user, data=data.validated_data
        )
        return Response(self.get_serializer(study_site).data)
