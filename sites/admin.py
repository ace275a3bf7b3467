"""Django admin for sites, their participation in studies and training records."""

from __future__ import annotations

from django.contrib import admin

from sites.models import Site, StudySite, TrainingRecord
from trialhub.models import Organization, OrganizationKind


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ("name", "institution", "city", "country", "time_zone", "quiet_hours_enabled")
    list_filter = ("country", "digest_frequency", "quiet_hours_enabled")
    list_select_related = ("organization",)
    search_fields = ("name", "institution", "city", "organization__name")
    readonly_fields = ("updated_at",)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "organization":
            kwargs["queryset"] = Organization.objects.filter(kind=OrganizationKind.SITE)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(StudySite)
class StudySiteAdmin(admin.ModelAdmin):
    list_display = ("site", "study", "site_number", "status", "enrolment_target", "activated_on")
    list_filter = ("status", "study", "site__country")
    list_select_related = ("site", "study")
    search_fields = ("site__name", "study__code", "site_number")
    readonly_fields = ("updated_at", "updated_by")
    autocomplete_fields = ("site", "study")


@admin.register(TrainingRecord)
class TrainingRecordAdmin(admin.ModelAdmin):
    list_display = ("user", "title", "kind", "study_site", "completed_on", "recorded_by")
    list_filter = ("kind", "study_site__study")
    list_select_related = ("user", "study_site__site", "study_site__study", "recorded_by")
    search_fields = ("user__username", "user__last_name", "title")
    readonly_fields = ("recorded_by", "recorded_at")
    autocomplete_fields = ("user",)
    date_hierarchy = "completed_on"
