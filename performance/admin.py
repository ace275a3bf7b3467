"""Django admin for metric snapshots: read-only (writes go through the upsert service)."""

from __future__ import annotations

from django.contrib import admin

from performance.models import VALUE_FIELDS, MetricSnapshot


@admin.register(MetricSnapshot)
class MetricSnapshotAdmin(admin.ModelAdmin):
    list_display = ("study_site", "period", "screened", "enrolled", "queries_opened", "updated_at")
    list_filter = ("study_site__study", "period")
    list_select_related = ("study_site__site", "study_site__study")
    search_fields = ("study_site__site__name", "study_site__study__code")
    readonly_fields = (
        "study_site",
        "period",
        *VALUE_FIELDS,
        "created_at",
        "updated_at",
        "updated_by",
    )
    date_hierarchy = "period"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
