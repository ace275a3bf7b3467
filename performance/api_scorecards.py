"""API v1: scorecards (PRODUCT.md "API"; routes in ``trialhub.api.urls``).

- ``GET /api/v1/studies/{id}/scorecard/?period=YYYY-MM`` (default: the latest month with
  snapshots): every study-site's KPIs with n and RAG, composite score and rank. A site's
  people get only their own row.
- ``GET /api/v1/sites/{id}/history/?months=12``: a site's monthly composite and current KPIs
  in every study of it the caller sees (a sponsor: its own studies only).
- ``GET /api/v1/studies/{id}/cro-scorecard/``: the engaged CROs' scorecard (a CRO's people:
  their own CRO only; site people: 404).

Anything out of reach answers 404; a malformed ``period`` or ``months`` is a 400.
"""

from __future__ import annotations

import datetime

from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from performance.kpis import KPI_SLUGS
from performance.selectors.cro import cro_scorecard_for_user
from performance.selectors.scorecards import scorecard_for_user, site_history_for_user
from sites.selectors import site_for_user

MAX_HISTORY_MONTHS = 36


class PeriodQuerySerializer(serializers.Serializer):
    period = serializers.RegexField(
        r"^\d{4}-(0[1-9]|1[0-2])$",
        required=False,
        help_text="YYYY-MM; default: the latest month with snapshots in the study.",
        error_messages={"invalid": "Give the period as YYYY-MM, e.g. 2026-10."},
    )

    def validate_period(self, value: str) -> datetime.date:
        year, month = value.split("-")
        return datetime.date(int(year), int(month), 1)


class MonthsQuerySerializer(serializers.Serializer):
    months = serializers.IntegerField(min_value=1, max_value=MAX_HISTORY_MONTHS, default=12)


class KpiCellSerializer(serializers.Serializer):
    value = serializers.FloatField(allow_null=True, help_text="null: not enough data.")
    n = serializers.IntegerField(help_text="The sample the value rests on.")
    rag = serializers.ChoiceField(choices=["green", "amber", "red"], allow_null=True)


KPIS_FIELD = inline_serializer("ScorecardKpis", {slug: KpiCellSerializer() for slug in KPI_SLUGS})


class ScorecardSiteSerializer(serializers.Serializer):
    study_site = serializers.IntegerField()
    site = serializers.IntegerField()
    site_name = serializers.CharField()
    score = serializers.FloatField(allow_null=True, help_text="Composite 0–100.")
    rank = serializers.IntegerField(allow_null=True, help_text="1 = best in the study.")
    kpis = KPIS_FIELD


class ScorecardSerializer(serializers.Serializer):
    study = serializers.IntegerField()
    period = serializers.CharField(help_text="YYYY-MM")
    sites = ScorecardSiteSerializer(many=True)


def _query(serializer_class, request) -> dict:
    query = serializer_class(data=request.query_params)
    query.is_valid(raise_exception=True)
    return query.validated_data


class StudyScorecardView(APIView):
    @extend_schema(
        parameters=[PeriodQuerySerializer],
        responses=ScorecardSerializer,
        summary="A study's scorecard",
    )
    def get(self, request, study_id: int):
        period = _query(PeriodQuerySerializer, request).get("period")
        card = scorecard_for_user(request.user, study_id, period=period, today=timezone.localdate())
        return Response(card.as_api())


class SiteHistoryView(APIView):
    @extend_schema(
        parameters=[MonthsQuerySerializer],
        responses=inline_serializer(
            "SiteHistory",
            {
                "site": serializers.IntegerField(),
                "site_name": serializers.CharField(),
                "studies": inline_serializer(
                    "SiteHistoryStudy",
                    {
                        "study": serializers.IntegerField(),
                        "study_code": serializers.CharField(),
                        "sponsor": serializers.CharField(),
                        "study_site": serializers.IntegerField(),
                        "period": serializers.CharField(),
                        "score": serializers.FloatField(allow_null=True),
                        "rank": serializers.IntegerField(allow_null=True),
                        "kpis": KPIS_FIELD,
                        "trend": inline_serializer(
                            "SiteHistoryMonth",
                            {
                                "period": serializers.CharField(),
                                "score": serializers.FloatField(allow_null=True),
                            },
                            many=True,
                        ),
                    },
                    many=True,
                ),
            },
        ),
        summary="A site's scorecards across its studies",
    )
    def get(self, request, site_id: int):
        months = _query(MonthsQuerySerializer, request)["months"]
        site = site_for_user(request.user, site_id)
        history = site_history_for_user(
            request.user, site, today=timezone.localdate(), months=months
        )
        return Response(
            {
                "site": site.id,
                "site_name": site.name,
                "studies": [_history_entry(entry) for entry in history if entry["row"]],
            }
        )


def _history_entry(entry: dict) -> dict:
    row = entry["row"]
    return {
        "study": entry["study"].id,
        "study_code": entry["study"].code,
        "sponsor": entry["sponsor"].name,
        "study_site": entry["study_site"].id,
        "period": f"{entry['period']:%Y-%m}",
        "score": row.score,
        "rank": row.rank,
        "kpis": {
            slug: {"value": cell.value, "n": cell.n, "rag": cell.rag}
            for slug, cell in row.kpis.items()
        },
        "trend": [{"period": f"{month:%Y-%m}", "score": score} for month, score in row.trend],
    }


class MeasureSerializer(serializers.Serializer):
    value = serializers.FloatField(allow_null=True, help_text="null: nothing to measure (n = 0).")
    n = serializers.IntegerField()


class FeedbackMeansSerializer(serializers.Serializer):
    communication_clarity = serializers.FloatField(allow_null=True)
    support = serializers.FloatField(allow_null=True)
    cra_responsiveness = serializers.FloatField(allow_null=True)


class FeedbackSerializer(serializers.Serializer):
    n = serializers.IntegerField(help_text="Survey answers attributed to the CRO.")
    hidden = serializers.BooleanField(help_text="Fewer than 3 answers: means withheld.")
    means = FeedbackMeansSerializer(help_text="1–5; empty when there is no answer.")


class CroScoreSerializer(serializers.Serializer):
    cro = inline_serializer(
        "CroRef", {"id": serializers.IntegerField(), "name": serializers.CharField()}
    )
    studies = serializers.ListField(child=serializers.IntegerField())
    study_sites = serializers.IntegerField(help_text="Study-sites its CRAs monitored in 12 months.")
    cra_turnover = MeasureSerializer()
    messages_per_site_week = MeasureSerializer()
    key_ack_hours = MeasureSerializer()
    activation_days = MeasureSerializer()
    first_patient_days = MeasureSerializer()
    feedback = FeedbackSerializer()


class CroScorecardView(APIView):
    @extend_schema(
        responses=inline_serializer(
            "CroScorecard",
            {"study": serializers.IntegerField(), "cros": CroScoreSerializer(many=True)},
        ),
        summary="The scorecard of the CROs engaged on a study",
        description="Per CRO: cra_turnover, messages_per_site_week, key_ack_hours, "
        "activation_days, first_patient_days (each {value, n}) and feedback {n, hidden, "
        "means}. Definitions in performance.cro.",
    )
    def get(self, request, study_id: int):
        study, scores = cro_scorecard_for_user(request.user, study_id, now=timezone.now())
        return Response({"study": study.id, "cros": [score.as_api() for score in scores]})


__all__ = ["CroScorecardView", "SiteHistoryView", "StudyScorecardView"]
