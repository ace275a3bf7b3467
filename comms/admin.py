"""Django admin for communications: what the platform administrator looks at when a sponsor or
a site asks "was it sent, to whom, and when was it read?".

Messages, decisions, deliveries and digests are records: read-only here (they change only
through the services, in the portal and the API). Templates and a study's delivery policy are
decided by the study's sponsor lead in the portal, so they are read-only here too.
"""

from __future__ import annotations

from django.contrib import admin

from comms.models import (
    ApprovalDecision,
    Delivery,
    Digest,
    Message,
    MessageTemplate,
    StudyCommsPolicy,
)
from trialhub.admin import ReadOnlyAdminMixin


class ApprovalDecisionInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = ApprovalDecision
    extra = 0
    fields = ("decision", "decided_by", "decided_at", "reason")


@admin.register(Message)
class MessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "subject",
        "study",
        "category",
        "tier",
        "status",
        "sender_organization",
        "recipients_count",
        "sent_at",
    )
    list_filter = ("status", "tier", "category", "study")
    list_select_related = ("study", "sender_organization")
    search_fields = ("subject", "body", "dedup_key", "study__code")
    date_hierarchy = "created_at"
    inlines = (ApprovalDecisionInline,)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "kind",
        "message",
        "recipient",
        "channel",
        "state",
        "via_digest",
        "throttled",
        "due_at",
        "delivered_at",
        "acknowledged_at",
        "escalated_at",
    )
    list_filter = ("kind", "state", "channel", "via_digest", "throttled")
    list_select_related = ("message", "recipient")
    search_fields = ("recipient__username", "message__subject")
    raw_id_fields = ("message", "recipient", "study_site", "digest")
    show_full_result_count = False  # the table is large; counting it on every page is slow


@admin.register(Digest)
class DigestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "recipient", "window_at", "items_count", "lines_count", "created_at")
    list_select_related = ("recipient",)
    search_fields = ("recipient__username",)
    date_hierarchy = "window_at"


@admin.register(MessageTemplate)
class MessageTemplateAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("name", "study", "category", "version", "status", "approved_by", "approved_at")
    list_filter = ("status", "category", "study")
    list_select_related = ("study", "approved_by")
    search_fields = ("name", "subject", "body")


@admin.register(StudyCommsPolicy)
class StudyCommsPolicyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("study", "send_now_daily_limit", "updated_by", "updated_at")
    list_select_related = ("study", "updated_by")
