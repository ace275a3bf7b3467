"""API v1 for metric snapshots: bulk upsert (POST a list) and the list the caller can see.

Routes are declared in ``trialhub.api.urls``. Tenancy comes from ``performance.selectors``;
validation and the upsert from ``performance.services``.
"""

from __future__ import annotations

import datetime

import django_filters
from django.core.validators import RegexValidator
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, generics, serializers, status
from rest_framework.response import Response

from performance.models import COUNT_FIELDS, MetricSnapshot
from performance.selectors import metric_snapshots_for_user
from performance.services import MetricRowsInvalid, metric_snapshots_upsert
from trialhub.api.base import TenantScopedMixin

PERIOD_REGEX = r"^\d{4}-(0[1-9]|1[0-2])$"


class MetricSnapshotSerializer(serializers.ModelSerializer):
    """A snapshot as read; the same keys (without ``id``, ``study``, ``updated_at``) are sent."""

    study = serializers.IntegerField(source="study_site.study_id", read_only=True)
    period = serializers.DateField(format="%Y-%m", input_formats=["%Y-%m"])
    data_entry_lag_days = serializers.DecimalField(
        max_digits=6, decimal_places=1, coerce_to_string=False, allow_null=True, required=False
    )

    class Meta:
        model = MetricSnapshot
        fields = [
            "id",
            "study",
            "study_site",
            "period",
            *COUNT_FIELDS[:8],
            "data_entry_lag_days",
            *COUNT_FIELDS[8:],
            "updated_at",
        ]
        read_only_fields = ["id", "study", "updated_at"]


class MetricSnapshotInputSerializer(MetricSnapshotSerializer):
    """Schema of one row of a POST (validation is the upsert service's)."""

    class Meta(MetricSnapshotSerializer.Meta):
        fields = [f for f in MetricSnapshotSerializer.Meta.fields if f not in ("id", "study")]
        fields.remove("updated_at")
        read_only_fields = []


class UpsertResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()


class MetricSnapshotFilter(django_filters.FilterSet):
    study = django_filters.NumberFilter(field_name="study_site__study_id")
    study_site = django_filters.NumberFilter(field_name="study_site_id")
    period = django_filters.CharFilter(
        method="filter_period",
        validators=[RegexValidator(PERIOD_REGEX, "Enter a month as YYYY-MM.")],
        help_text="A month as YYYY-MM.",
    )

    class Meta:
        model = MetricSnapshot
        fields = ["study", "study_site", "period"]

    def filter_period(self, queryset, name, value):
        year, month = (int(part) for part in value.split("-"))
        return queryset.filter(period=datetime.date(year, month, 1))


@extend_schema_view(
    get=extend_schema(
        tags=["metrics"],
        summary="Metric snapshots the caller can see (a site's people: their own rows).",
    ),
)
class MetricSnapshotListView(TenantScopedMixin, generics.ListAPIView):
    """Monthly metric snapshots per study-site: list them (filters: study, study_site, period)
    or upsert a list of them."""

    serializer_class = MetricSnapshotSerializer
    filterset_class = MetricSnapshotFilter

    def safely_get_queryset(self, user):
        return metric_snapshots_for_user(user)

    @extend_schema(
        tags=["metrics"],
        summary="Upsert a list of snapshots on (study_site, period), all or nothing.",
        request=MetricSnapshotInputSerializer(many=True),
        responses={
            201: UpsertResultSerializer,
            200: OpenApiResponse(UpsertResultSerializer, description="Nothing new was created."),
            400: OpenApiResponse(
                description='Errors keyed by row index and field, e.g. {"3": {"screened": '
                '["Must not be negative."]}}; nothing was written.'
            ),
            403: OpenApiResponse(description="You may not upload metrics (site people, viewers)."),
        },
    )
    def post(self, request, *args, **kwargs):
        if not isinstance(request.data, list):
            raise exceptions.ValidationError(
                {"non_field_errors": ["Send a JSON list of snapshots."]}
            )
        try:
            result = metric_snapshots_upsert(actor=request.user, rows=request.data)
        except MetricRowsInvalid as invalid:
            raise exceptions.ValidationError(
                {
                    str(index): {field: [message] for field, message in fields.items()}
                    for index, fields in invalid.row_errors.items()
                }
            ) from None
        return Response(
            UpsertResultSerializer(result).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )
