"""Investigator sites, their participation in studies, training records and preferences."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from trialhub.models import Organization, OrganizationKind, Study


class DigestFrequency(models.TextChoices):
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"


class Weekday(models.IntegerChoices):
    MONDAY = 0, "Monday"
    TUESDAY = 1, "Tuesday"
    WEDNESDAY = 2, "Wednesday"
    THURSDAY = 3, "Thursday"
    FRIDAY = 4, "Friday"
    SATURDAY = 5, "Saturday"
    SUNDAY = 6, "Sunday"


class Site(models.Model):
    """A research site's profile; lives across studies and sponsors.

    The preference fields (digest schedule, quiet hours) are what ``comms`` reads to time
    deliveries in the site's local time zone.
    """

    organization = models.OneToOneField(Organization, on_delete=models.PROTECT, related_name="site")
    # Pinned to 'site' and tied to the organisation's kind by a composite foreign key (migration).
    organization_kind = models.CharField(
        max_length=10, default=OrganizationKind.SITE, editable=False
    )
    name = models.CharField(max_length=200)
    institution = models.CharField(max_length=200)
    address = models.CharField(max_length=300, blank=True)
    city = models.CharField(max_length=120, blank=True)
    country = models.CharField(max_length=2)
    time_zone = models.CharField(max_length=64, default="UTC")
    therapeutic_areas = ArrayField(models.CharField(max_length=80), default=list, blank=True)
    digest_frequency = models.CharField(
        max_length=8, choices=DigestFrequency.choices, default=DigestFrequency.DAILY
    )
    digest_hour = models.PositiveSmallIntegerField(default=8, help_text="Local hour, 0–23.")
    digest_weekday = models.PositiveSmallIntegerField(
        choices=Weekday.choices, default=Weekday.MONDAY, help_text="For weekly digests."
    )
    quiet_hours_enabled = models.BooleanField(default=False)
    quiet_hours_start = models.TimeField(default=datetime.time(20, 0))
    quiet_hours_end = models.TimeField(default=datetime.time(7, 0))
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(organization_kind=OrganizationKind.SITE), name="site_organization_kind"
            ),
            models.CheckConstraint(condition=Q(digest_hour__lte=23), name="site_digest_hour"),
            models.CheckConstraint(condition=Q(digest_weekday__lte=6), name="site_digest_weekday"),
        ]

    def __str__(self) -> str:
        return self.name


class StudySiteStatus(models.TextChoices):
    SELECTED = "selected", "Selected"
    STARTUP = "startup", "Start-up"
    ACTIVATED = "activated", "Activated"
    ENROLLING = "enrolling", "Enrolling"
    CLOSED = "closed", "Closed"


# Milestones in the order a site passes them; each pair below must not go backwards.
MILESTONE_FIELDS = (
    "selected_on",
    "regulatory_approval_on",
    "contract_signed_on",
    "activated_on",
    "first_patient_in_on",
    "last_patient_in_on",
    "closed_on",
)
MILESTONE_ORDER = (
    ("selected_on", "regulatory_approval_on"),
    ("selected_on", "contract_signed_on"),
    ("regulatory_approval_on", "activated_on"),
    ("contract_signed_on", "activated_on"),
    ("selected_on", "activated_on"),
    ("activated_on", "first_patient_in_on"),
    ("first_patient_in_on", "last_patient_in_on"),
    ("activated_on", "closed_on"),
    ("last_patient_in_on", "closed_on"),
)


def _not_before(earlier: str, later: str) -> Q:
    return (
        Q(**{f"{earlier}__isnull": True})
        | Q(**{f"{later}__isnull": True})
        | Q(**{f"{later}__gte": F(earlier)})
    )


class StudySite(models.Model):
    """A site's participation in a study."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="study_sites")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="study_sites")
    site_number = models.CharField(max_length=20, blank=True)
    status = models.CharField(
        max_length=10, choices=StudySiteStatus.choices, default=StudySiteStatus.SELECTED
    )
    enrolment_target = models.PositiveIntegerField(default=0)
    selected_on = models.DateField(null=True, blank=True)
    regulatory_approval_on = models.DateField(null=True, blank=True)
    contract_signed_on = models.DateField(null=True, blank=True)
    activated_on = models.DateField(
        null=True, blank=True, help_text="Site initiation visit / activation."
    )
    first_patient_in_on = models.DateField(null=True, blank=True)
    last_patient_in_on = models.DateField(null=True, blank=True)
    closed_on = models.DateField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["study__code", "site__name"]
        permissions = [("record_training", "Can record training at the study-site")]
        constraints = [
            models.UniqueConstraint(fields=["study", "site"], name="study_site_unique"),
            models.CheckConstraint(
                condition=Q(status__in=StudySiteStatus.values), name="study_site_status_valid"
            ),
            *(
                models.CheckConstraint(
                    condition=_not_before(earlier, later),
                    name=f"study_site_{earlier.removesuffix('_on')}_before_{later.removesuffix('_on')}",
                )
                for earlier, later in MILESTONE_ORDER
            ),
        ]

    def __str__(self) -> str:
        return f"{self.site.name} on {self.study.code}"


class TrainingKind(models.TextChoices):
    PROTOCOL = "protocol", "Protocol"
    AMENDMENT = "amendment", "Amendment"
    SYSTEM = "system", "System"


class TrainingRecord(models.Model):
    """A site staff member's completion of a study training."""

    study_site = models.ForeignKey(
        StudySite, on_delete=models.CASCADE, related_name="training_records"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="training_records"
    )
    kind = models.CharField(max_length=10, choices=TrainingKind.choices)
    title = models.CharField(max_length=200)
    completed_on = models.DateField()
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    recorded_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-completed_on", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["study_site", "user", "kind", "title"], name="training_record_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.title} ({self.completed_on})"
