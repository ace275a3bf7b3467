"""Performance tables: monthly metric snapshots per study-site (PRODUCT.md "Performance")."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from sites.models import StudySite

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
    ``performance.services.metric_snapshots_upsert``; never edited row by row.
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


__all__ = ["COUNT_FIELDS", "VALUE_FIELDS", "MetricSnapshot"]
