"""Performance tables: monthly metric snapshots per study-site (PRODUCT.md "Performance")."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from sites.models import StudySite
from trialhub.models import Organization, Study

# The counts of a snapshot, in PRODUCT.md's order (API keys and CSV columns).
COUNT_FIELDS = (
    "screened",
    "screen_failures",
    "enrolled",
    "discontinued",
    "crf_pages",
    "queries_opened",
    "queries_resolved",
    "query_resolution_days",
    "deviations_major",
    "deviations_minor",
    "sae_late",
    "monitoring_visits",
)
# Every value a snapshot carries besides its key (study_site, period).
VALUE_FIELDS = (*COUNT_FIELDS[:8], "data_entry_lag_days", *COUNT_FIELDS[8:])


class MetricSnapshot(models.Model):
    """One study-site's numbers for one calendar month, as sent by EDC/CTMS/IRT.

    ``period`` is the first day of the month. Upserted on (study_site, period) by
    ``performance.services.metrics.metric_snapshots_upsert``; never edited row by row.
    """

    study_site = models.ForeignKey(
        StudySite, on_delete=models.CASCADE, related_name="metric_snapshots"
    )
    period = models.DateField(help_text="First day of the month.")
    screened = models.IntegerField()
    screen_failures = models.IntegerField()
    enrolled = models.IntegerField(help_text="Randomised.")
    discontinued = models.IntegerField(help_text="Discontinued early.")
    crf_pages = models.IntegerField()
    queries_opened = models.IntegerField()
    queries_resolved = models.IntegerField()
    query_resolution_days = models.IntegerField(help_text="Sum of the resolved queries' days.")
    data_entry_lag_days = models.DecimalField(
        max_digits=6,
        decimal_places=1,
        null=True,
        blank=True,
        help_text="Median days from visit to entry in the month (empty: no visits entered).",
    )
    deviations_major = models.IntegerField()
    deviations_minor = models.IntegerField()
    sae_late = models.IntegerField(help_text="Serious adverse events reported past 24 h.")
    monitoring_visits = models.IntegerField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["study_site_id", "period"]
        constraints = [
            models.UniqueConstraint(
                fields=["study_site", "period"], name="metric_snapshot_unique_period"
            ),
            models.CheckConstraint(
                condition=Q(period__day=1), name="metric_snapshot_period_first_of_month"
            ),
            *(
                models.CheckConstraint(
                    condition=Q(**{f"{field}__gte": 0}),
                    name=f"metric_snapshot_{field}_non_negative",
                )
                for field in COUNT_FIELDS
            ),
            models.CheckConstraint(
                condition=Q(data_entry_lag_days__isnull=True) | Q(data_entry_lag_days__gte=0),
                name="metric_snapshot_data_entry_lag_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(screen_failures__lte=F("screened")),
                name="metric_snapshot_screen_failures_within_screened",
            ),
            models.CheckConstraint(
                condition=Q(discontinued__lte=F("enrolled")),
                name="metric_snapshot_discontinued_within_enrolled",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.study_site_id} {self.period:%Y-%m}"


class ScorecardConfig(models.Model):
    """A study's scorecard settings, kept by its sponsor lead.

    ``kpis`` holds only what differs from ``performance.scorecards.DEFAULT_KPI_SETTINGS``:
    ``{slug: {"enabled": bool, "weight": number, "green": number, "red": number,
    "minimum_samples": int}}``; ``performance.scorecards.effective_settings`` merges the two.
    Written only through ``performance.services.scorecards.scorecard_config_update``.
    """

    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="scorecard_config")
    kpis = models.JSONField(default=dict, blank=True)
    minimum_kpis = models.PositiveSmallIntegerField(
        default=3, help_text="KPIs with enough data a site needs before it gets a composite score."
    )
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(minimum_kpis__gte=1), name="scorecard_config_minimum_kpis_positive"
            )
        ]

    def __str__(self) -> str:
        return f"Scorecard settings of {self.study.code}"


class Recognition(models.Model):
    """A top-quartile place of a study-site in its study's scorecard for one quarter."""

    study_site = models.ForeignKey(StudySite, on_delete=models.CASCADE, related_name="recognitions")
    quarter = models.DateField(help_text="First day of the quarter.")
    score = models.DecimalField(max_digits=5, decimal_places=1)
    rank = models.PositiveIntegerField()
    sites_ranked = models.PositiveIntegerField(help_text="Study-sites with a score that quarter.")
    awarded_at = models.DateTimeField(default=timezone.now)
    announcement = models.ForeignKey(
        "comms.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    announced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-quarter", "rank"]
        constraints = [
            models.UniqueConstraint(
                fields=["study_site", "quarter"], name="recognition_unique_quarter"
            ),
            models.CheckConstraint(
                condition=Q(quarter__day=1, quarter__month__in=[1, 4, 7, 10]),
                name="recognition_quarter_first_day",
            ),
            models.CheckConstraint(
                condition=Q(rank__gte=1, rank__lte=F("sites_ranked")),
                name="recognition_rank_within_ranked",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.study_site_id} {self.quarter:%Y}-Q{(self.quarter.month - 1) // 3 + 1}"


class Survey(models.Model):
    """A short site-feedback survey a sponsor or CRO opens on a study."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="surveys")
    title = models.CharField(max_length=200)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    opened_by_organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="+"
    )
    opened_at = models.DateTimeField(default=timezone.now)
    closes_on = models.DateField(null=True, blank=True, help_text="Last day for answers.")
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]

    def __str__(self) -> str:
        return f"{self.study.code}: {self.title}"


SCORE_VALIDATORS = [MinValueValidator(1), MaxValueValidator(5)]
SURVEY_SCORE_FIELDS = ("communication_clarity", "support", "cra_responsiveness")


class SurveyResponse(models.Model):
    """One site person's answer. ``cro`` is the CRO whose CRA monitored the study-site when
    the answer came in: the CRO scorecard aggregates by it, never showing the site."""

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="responses")
    study_site = models.ForeignKey(StudySite, on_delete=models.CASCADE, related_name="+")
    respondent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    cro = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    communication_clarity = models.PositiveSmallIntegerField(validators=SCORE_VALIDATORS)
    support = models.PositiveSmallIntegerField(validators=SCORE_VALIDATORS)
    cra_responsiveness = models.PositiveSmallIntegerField(validators=SCORE_VALIDATORS)
    comment = models.TextField(blank=True, max_length=2000)
    submitted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-submitted_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["survey", "respondent"], name="survey_response_one_per_person"
            ),
            *(
                models.CheckConstraint(
                    condition=Q(**{f"{field}__gte": 1, f"{field}__lte": 5}),
                    name=f"survey_response_{field}_1_to_5",
                )
                for field in SURVEY_SCORE_FIELDS
            ),
        ]

    def __str__(self) -> str:
        return f"Answer to survey {self.survey_id}"


class PracticeStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    PUBLISHED = "published", "Published"


class PracticeNote(models.Model):
    """A short best-practice note in a sponsor's library. Sponsors, CROs and recognised sites
    contribute; the sponsor publishes it to its studies' sites."""

    sponsor = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    title = models.CharField(max_length=200)
    body = models.TextField(max_length=5000)
    therapeutic_area = models.CharField(max_length=120, blank=True)
    tags = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(
        max_length=10, choices=PracticeStatus.choices, default=PracticeStatus.PROPOSED
    )
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    published_studies = models.ManyToManyField(Study, blank=True, related_name="+")

    class Meta:
        ordering = ["-published_at", "-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=PracticeStatus.values), name="practice_note_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(status=PracticeStatus.PROPOSED) | Q(published_at__isnull=False),
                name="practice_note_published_has_date",
            ),
        ]

    def __str__(self) -> str:
        return self.title


__all__ = [
    "COUNT_FIELDS",
    "SURVEY_SCORE_FIELDS",
    "VALUE_FIELDS",
    "MetricSnapshot",
    "PracticeNote",
    "PracticeStatus",
    "Recognition",
    "ScorecardConfig",
    "Survey",
    "SurveyResponse",
]
