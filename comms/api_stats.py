"""API v1: a study's message load per study-site and ISO week (definitions in ``comms.stats``).

``GET /api/v1/studies/{id}/message-load/?weeks=12``; the route is declared in
``trialhub.api.urls``. Sponsor and CRO people who see the study get it; a study out of
reach answers 404, and so does any study for site people. ``weeks`` outside 1–52 is a 400.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from comms.stats import (
    DEFAULT_WEEKS,
    MAX_WEEKS,
    TIERS,
    Load,
    SiteLoad,
    StudyMessageLoad,
    message_load_for_study,
)

# --- shapes ----------------------------------------------------------------------------------


class WeeksQuerySerializer(serializers.Serializer):
    """The query string, for the schema; ``comms.stats.validate_weeks`` checks it."""

    weeks = serializers.IntegerField(
        min_value=1,
        max_value=MAX_WEEKS,
        default=DEFAULT_WEEKS,
        help_text="How many ISO weeks (UTC), ending with the current one.",
    )


class StandaloneByTierSerializer(serializers.Serializer):
    critical = serializers.IntegerField()
    key = serializers.IntegerField()
    routine = serializers.IntegerField()
    info = serializers.IntegerField()


class MessageLoadFiguresSerializer(serializers.Serializer):
    standalone = StandaloneByTierSerializer(
        help_text="Distinct messages delivered stand-alone to the study-site, by tier."
    )
    digests = serializers.IntegerField(help_text="Digests carrying the study-site's items.")
    digest_items = serializers.IntegerField(help_text="Deliveries folded into digests.")
    digest_lines = serializers.IntegerField(help_text="Lines shown (a dedup key is one line).")
    dedup_saved = serializers.IntegerField(help_text="digest_items - digest_lines.")
    throttle_saved = serializers.IntegerField(
        help_text="'Send now' deliveries over the daily limit, folded into digests."
    )
    notifications = serializers.IntegerField(help_text="Stand-alone deliveries received + digests.")
    without_batching = serializers.IntegerField(
        help_text="Notifications had every delivery gone alone."
    )
    reduction = serializers.FloatField(
        allow_null=True, help_text="1 - notifications / without_batching; null when 0."
    )
    median_ack_hours = serializers.FloatField(
        allow_null=True,
        help_text="Median hours from sending to acknowledgement of key/critical deliveries "
        "acknowledged in the period; null when ack_n is 0.",
    )
    ack_n = serializers.IntegerField()
    escalated = serializers.IntegerField(
        help_text="Key/critical deliveries escalated in the period."
    )


class _WeekLabelSerializer(serializers.Serializer):
    week = serializers.CharField(help_text="ISO week (UTC), e.g. 2026-W47.")


class MessageLoadWeekSerializer(_WeekLabelSerializer, MessageLoadFiguresSerializer):
    """A week's load; ``week`` comes first."""


class MessageLoadSiteSerializer(serializers.Serializer):
    study_site = serializers.IntegerField()
    site_name = serializers.CharField()
    country = serializers.CharField()
    weeks = MessageLoadWeekSerializer(many=True)
    summary = MessageLoadFiguresSerializer(help_text="The study-site over all the weeks.")


class MessageLoadTotalsSerializer(serializers.Serializer):
    weeks = MessageLoadWeekSerializer(many=True, help_text="All study-sites together, per week.")
    summary = MessageLoadFiguresSerializer(help_text="All study-sites over all the weeks.")


class MessageLoadSerializer(serializers.Serializer):
    study = serializers.IntegerField()
    weeks = serializers.ListField(child=serializers.CharField(), help_text="Oldest first.")
    sites = MessageLoadSiteSerializer(many=True)
    totals = MessageLoadTotalsSerializer(
        help_text="Sums over study-sites (a message to three sites counts three times); "
        "medians over all acknowledgements."
    )


def _load(load: Load) -> dict:
    return {
        "standalone": {tier: load.standalone[tier] for tier in TIERS},
        "digests": load.digests,
        "digest_items": load.digest_items,
        "digest_lines": load.digest_lines,
        "dedup_saved": load.dedup_saved,
        "throttle_saved": load.throttle_saved,
        "notifications": load.notifications,
        "without_batching": load.without_batching,
        "reduction": load.reduction,
        "median_ack_hours": load.median_ack_hours,
        "ack_n": load.ack_n,
        "escalated": load.escalated,
    }


def _weeks(site_load: SiteLoad) -> dict:
    return {
        "weeks": [{"week": week.label, **_load(week.load)} for week in site_load.weeks],
        "summary": _load(site_load.summary),
    }


def message_load_data(result: StudyMessageLoad) -> dict:
    return {
        "study": result.study.pk,
        "weeks": result.week_labels,
        "sites": [
            {
                "study_site": site_load.study_site.pk,
                "site_name": site_load.study_site.site.name,
                "country": site_load.study_site.site.country,
                **_weeks(site_load),
            }
            for site_load in result.sites
        ],
        "totals": _weeks(result.totals),
    }


# --- view ------------------------------------------------------------------------------------


@extend_schema(
    tags=["message-load"],
    parameters=[
        OpenApiParameter(
            "study_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="A study's id."
        ),
        WeeksQuerySerializer,
    ],
)
class StudyMessageLoadView(APIView):
    @extend_schema(
        responses={
            200: MessageLoadSerializer,
            400: OpenApiResponse(description="weeks is not a whole number in 1–52."),
            404: OpenApiResponse(description="Missing, out of your reach, or you are site staff."),
        },
        description="Message load per study-site and ISO week (UTC): stand-alone messages by "
        "tier, digests, digest items and lines, dedup and throttle savings, notifications vs "
        "one per delivery, median hours to acknowledge and escalations. Sponsor and CRO people "
        "of the study only.",
    )
    def get(self, request, study_id: int):
        # The study is resolved (404) before ``weeks`` is checked (400 {"weeks": [...]}).
        weeks = request.query_params.get("weeks", DEFAULT_WEEKS)
        result = message_load_for_study(user=request.user, study=study_id, weeks=weeks)
        return Response(MessageLoadSerializer(message_load_data(result)).data)
