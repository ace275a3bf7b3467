"""Django admin for the platform administrator: onboard organisations and their people.

Studies and engagements created here go through the services, so a new study gets its
starting matrix and a newly engaged CRO joins it. The matrix, its history and role assignments
are read-only here: they change in the portal, where every change is validated and audited.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from trialhub.models import (
    ActionItem,
    Engagement,
    MatrixChange,
    MatrixRevision,
    Meeting,
    Membership,
    Organization,
    OrganizationKind,
    ResponsibilityEntry,
    RoleAssignment,
    Study,
    StudyStatusUpdate,
)
from trialhub.services import engagement_create, study_create

User = get_user_model()


class ReadOnlyAdminMixin:
    """History and derived data: viewable, never added, changed or deleted here."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "country", "time_zone", "created_at")
    list_filter = ("kind", "country")
    search_fields = ("name",)

    def get_readonly_fields(self, request, obj=None):
        # Studies, engagements and sites pin the kind of the organisation they reference.
        return ("kind", "created_at") if obj else ("created_at",)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "organization", "job_title", "is_org_admin")
    list_filter = ("organization__kind", "is_org_admin", "organization")
    list_select_related = ("user", "organization")
    search_fields = ("user__username", "user__first_name", "user__last_name", "organization__name")
    autocomplete_fields = ("user", "organization")


class MembershipInline(admin.StackedInline):
    model = Membership
    can_delete = False
    autocomplete_fields = ("organization",)
    verbose_name_plural = "organisation"


admin.site.unregister(User)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    inlines = (MembershipInline,)
    list_display = ("username", "first_name", "last_name", "organization", "is_staff", "is_active")
    list_filter = ("membership__organization__kind", "is_staff", "is_active")
    list_select_related = ("membership__organization",)
    search_fields = (*BaseUserAdmin.search_fields, "membership__organization__name")

    @admin.display(description="organisation", ordering="membership__organization__name")
    def organization(self, user) -> str:
        membership = getattr(user, "membership", None)
        return membership.organization.name if membership else "—"


class EngagementInline(admin.TabularInline):
    model = Engagement
    extra = 0
    can_delete = False  # the CRO keeps its place in the matrix and its history
    fields = ("cro", "scope", "start_date", "created_by", "created_at")
    readonly_fields = ("created_by", "created_at")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "cro":
            kwargs["queryset"] = Organization.objects.filter(kind=OrganizationKind.CRO)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    inlines = (EngagementInline,)
    list_display = ("code", "title", "sponsor", "phase", "status", "enrolment_target")
    list_filter = ("status", "phase", "sponsor", "therapeutic_area")
    list_select_related = ("sponsor",)
    search_fields = ("code", "title")
    readonly_fields = ("created_by", "created_at")
    date_hierarchy = "planned_start"

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "sponsor":
            kwargs["queryset"] = Organization.objects.filter(kind=OrganizationKind.SPONSOR)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "sponsor") if obj else self.readonly_fields

    def save_model(self, request, obj, form, change) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        # A new study goes through the service (starting matrix, revision 1); the admin then
        # carries on with the saved row (inlines, log entry).
        created = study_create(
            sponsor=obj.sponsor,
            code=obj.code,
            title=obj.title,
            phase=obj.phase,
            therapeutic_area=obj.therapeutic_area,
            enrolment_target=obj.enrolment_target,
            planned_start=obj.planned_start,
            planned_end=obj.planned_end,
            status=obj.status,
            actor=request.user,
        )
        obj.pk = created.pk
        obj.created_by = created.created_by
        obj._state.adding = False
        obj._state.db = created._state.db

    def save_formset(self, request, form, formset, change) -> None:
        if formset.model is not Engagement:
            super().save_formset(request, form, formset, change)
            return
        for engagement in formset.save(commit=False):
            if engagement.pk is None:
                engagement_create(
                    study=form.instance,
                    cro=engagement.cro,
                    scope=engagement.scope,
                    actor=request.user,
                )
            else:
                engagement.save()


@admin.register(ResponsibilityEntry)
class ResponsibilityEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("study", "area", "organization", "code")
    list_filter = ("area", "code", "study")
    list_select_related = ("study", "organization")
    search_fields = ("study__code", "organization__name")


class MatrixChangeInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = MatrixChange
    fields = ("area", "organization", "old_code", "new_code")
    readonly_fields = fields
    extra = 0


@admin.register(MatrixRevision)
class MatrixRevisionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    inlines = (MatrixChangeInline,)
    list_display = ("study", "changed_at", "changed_by", "note")
    list_filter = ("study",)
    list_select_related = ("study", "changed_by")
    search_fields = ("study__code", "note")
    date_hierarchy = "changed_at"


@admin.register(RoleAssignment)
class RoleAssignmentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: roles are handed out and ended in the portal (sponsor leads, CRO project
    managers, organisation admins), where the service checks who may assign what; the history
    is never deleted."""

    list_display = ("user", "role", "study", "study_site", "start_date", "end_date", "end_reason")
    list_filter = ("role", "study", ("end_date", admin.EmptyFieldListFilter))
    list_select_related = ("user", "study", "study_site__site", "study_site__study")
    search_fields = ("user__username", "user__last_name", "study__code", "end_reason")
    date_hierarchy = "start_date"


# Sponsor–CRO coordination: written in the portal by the study's parties (the services check who
# may); the platform administrator looks, and may delete a row posted by mistake.


class CoordinationAdminMixin(ReadOnlyAdminMixin):
    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser


@admin.register(StudyStatusUpdate)
class StudyStatusUpdateAdmin(CoordinationAdminMixin, admin.ModelAdmin):
    list_display = ("study", "period_start", "period_end", "author", "author_organization")
    list_filter = ("study", "author_organization")
    list_select_related = ("study", "author", "author_organization")
    search_fields = ("study__code", "highlights", "risks", "asks")
    date_hierarchy = "period_end"


class ActionItemInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = ActionItem
    fields = ("description", "owner", "due_date", "done", "done_at", "done_by")
    readonly_fields = fields
    extra = 0


@admin.register(Meeting)
class MeetingAdmin(CoordinationAdminMixin, admin.ModelAdmin):
    inlines = (ActionItemInline,)
    list_display = ("study", "held_on", "title", "recorded_by", "recorded_by_organization")
    list_filter = ("study", "recorded_by_organization")
    list_select_related = ("study", "recorded_by", "recorded_by_organization")
    search_fields = ("study__code", "title", "notes")
    date_hierarchy = "held_on"


@admin.register(ActionItem)
class ActionItemAdmin(CoordinationAdminMixin, admin.ModelAdmin):
    list_display = ("description", "meeting", "owner", "due_date", "done", "done_at")
    list_filter = ("done", "meeting__study")
    list_select_related = ("meeting__study", "owner")
    search_fields = ("description", "owner__username", "meeting__study__code")
    date_hierarchy = "due_date"
