"""The tenancy core: organisations, memberships, studies, engagements, the responsibility matrix
and role assignments. Tables and their invariants only; workflows live in ``services``."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import DateRangeField, RangeOperators
from django.db import models
from django.db.models import F, Func, Q
from django.utils import timezone


class OrganizationKind(models.TextChoices):
    SPONSOR = "sponsor", "Sponsor"
    CRO = "cro", "CRO"
    SITE = "site", "Site"


class Area(models.TextChoices):
    """Responsibility areas of the matrix (fixed API slugs)."""

    SITE_SELECTION = "site_selection", "Site selection"
    CONTRACTS_BUDGETS = "contracts_budgets", "Contracts and budgets"
    MONITORING = "monitoring", "Monitoring"
    RECRUITMENT_COMMS = "recruitment_comms", "Recruitment communications"
    PROTOCOL_AMENDMENTS = "protocol_amendments", "Protocol amendments"
    SAFETY_COMMS = "safety_comms", "Safety communications"
    REGULATORY_DOCUMENTS = "regulatory_documents", "Regulatory documents"
    DATA_QUERIES = "data_queries", "Data queries"
    TRAINING = "training", "Training"
    PAYMENTS = "payments", "Payments"


class Raci(models.TextChoices):
    RESPONSIBLE = "R", "Responsible"
    ACCOUNTABLE = "A", "Accountable"
    CONSULTED = "C", "Consulted"
    INFORMED = "I", "Informed"


class StudyRole(models.TextChoices):
    SPONSOR_LEAD = "sponsor_lead", "Sponsor lead"
    SPONSOR_VIEWER = "sponsor_viewer", "Sponsor viewer"
    CRO_PM = "cro_pm", "CRO project manager"
    CRA = "cra", "CRA"
    CRO_VIEWER = "cro_viewer", "CRO viewer"
    SITE_COORDINATOR = "site_coordinator", "Site coordinator"
    PRINCIPAL_INVESTIGATOR = "principal_investigator", "Principal investigator"


class StudyStatus(models.TextChoices):
    PLANNING = "planning", "Planning"
    STARTUP = "startup", "Start-up"
    ENROLLING = "enrolling", "Enrolling"
    FOLLOW_UP = "follow_up", "Follow-up"
    CLOSED = "closed", "Closed"


class StudyPhase(models.TextChoices):
    PHASE_1 = "1", "Phase I"
    PHASE_2 = "2", "Phase II"
    PHASE_3 = "3", "Phase III"
    PHASE_4 = "4", "Phase IV"


class Organization(models.Model):
    """A tenant: a sponsor, a CRO or an investigator site's institution."""

    kind = models.CharField(max_length=10, choices=OrganizationKind.choices)
    name = models.CharField(max_length=200, unique=True)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2 code, e.g. DE")
    time_zone = models.CharField(max_length=64, default="UTC")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            # Target of the composite foreign keys that pin a referencing row's kind
            # (a site's organisation is of kind site, a study's owner a sponsor ...).
            models.UniqueConstraint(fields=["id", "kind"], name="organization_id_kind_unique"),
            models.CheckConstraint(
                condition=Q(kind__in=OrganizationKind.values), name="organization_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user in an organisation. Every portal user belongs to exactly one organisation."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="memberships"
    )
    job_title = models.CharField(max_length=120, blank=True)
    is_org_admin = models.BooleanField(
        default=False, help_text="Sees every study of the organisation without a role assignment."
    )

    class Meta:
        ordering = ["organization__name", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} @ {self.organization}"


class Study(models.Model):
    sponsor = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="studies")
    # Pinned to 'sponsor' and tied to the sponsor's kind by a composite foreign key (migration).
    sponsor_kind = models.CharField(max_length=10, default=OrganizationKind.SPONSOR, editable=False)
    code = models.CharField(max_length=40, unique=True)
    title = models.CharField(max_length=300)
    phase = models.CharField(max_length=2, choices=StudyPhase.choices)
    therapeutic_area = models.CharField(max_length=120)
    status = models.CharField(
        max_length=12, choices=StudyStatus.choices, default=StudyStatus.PLANNING
    )
    enrolment_target = models.PositiveIntegerField()
    planned_start = models.DateField()
    planned_end = models.DateField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "studies"
        permissions = [
            ("edit_responsibility_matrix", "Can edit the responsibility matrix"),
            ("assign_roles", "Can assign roles on the study"),
            ("manage_study_sites", "Can update the study's study-sites"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(planned_end__gte=F("planned_start")), name="study_planned_dates_order"
            ),
            models.CheckConstraint(
                condition=Q(sponsor_kind=OrganizationKind.SPONSOR), name="study_sponsor_kind"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} — {self.title}"


class Engagement(models.Model):
    """A CRO engaged by the sponsor on a study."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="engagements")
    cro = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="engagements")
    cro_kind = models.CharField(max_length=10, default=OrganizationKind.CRO, editable=False)
    scope = models.CharField(max_length=300, blank=True, help_text="What the CRO was engaged for.")
    start_date = models.DateField(default=datetime.date.today)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["study__code", "cro__name"]
        constraints = [
            models.UniqueConstraint(fields=["study", "cro"], name="engagement_unique_cro"),
            models.CheckConstraint(
                condition=Q(cro_kind=OrganizationKind.CRO), name="engagement_cro_kind"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.cro} on {self.study.code}"


class ResponsibilityEntry(models.Model):
    """One cell of the responsibility matrix: a party's RACI code for an area of a study."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="responsibilities")
    area = models.CharField(max_length=24, choices=Area.choices)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    code = models.CharField(max_length=1, choices=Raci.choices)

    class Meta:
        ordering = ["study", "area", "organization"]
        verbose_name_plural = "responsibility entries"
        constraints = [
            models.UniqueConstraint(
                fields=["study", "area", "organization"], name="responsibility_one_code_per_party"
            ),
            # At most one Accountable per (study, area); the service checks there is one.
            models.UniqueConstraint(
                fields=["study", "area"],
                condition=Q(code=Raci.ACCOUNTABLE),
                name="responsibility_one_accountable",
            ),
            models.CheckConstraint(condition=Q(area__in=Area.values), name="responsibility_area"),
            models.CheckConstraint(condition=Q(code__in=Raci.values), name="responsibility_code"),
        ]

    def __str__(self) -> str:
        return f"{self.study.code}/{self.area}/{self.organization}: {self.code}"


class MatrixRevision(models.Model):
    """One accepted change of a study's matrix: who, when, and the cells that changed."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="matrix_revisions")
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(default=timezone.now)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-changed_at", "-id"]

    def __str__(self) -> str:
        return f"{self.study.code} matrix change at {self.changed_at:%Y-%m-%d %H:%M}"


class MatrixChange(models.Model):
    revision = models.ForeignKey(MatrixRevision, on_delete=models.CASCADE, related_name="changes")
    area = models.CharField(max_length=24, choices=Area.choices)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    old_code = models.CharField(max_length=1, choices=Raci.choices, blank=True)
    new_code = models.CharField(max_length=1, choices=Raci.choices, blank=True)

    class Meta:
        ordering = ["area", "organization__name"]

    def __str__(self) -> str:
        return f"{self.area}/{self.organization}: {self.old_code or '—'} → {self.new_code or '—'}"


class DateRange(Func):
    """``daterange(start, end, '[)')``: an open end (NULL) is unbounded."""

    function = "DATERANGE"
    output_field = DateRangeField()


class RoleAssignmentQuerySet(models.QuerySet):
    def active(self, on: datetime.date | None = None) -> RoleAssignmentQuerySet:
        on = on or timezone.localdate()
        return self.filter(Q(end_date__isnull=True) | Q(end_date__gt=on), start_date__lte=on)


class RoleAssignment(models.Model):
    """A user holds a study role on a study or on one study-site, for a period.

    Ended, never deleted: the history is how CRA turnover is measured. ``study`` is always
    set (also for study-site scope) so that tenancy filters are plain foreign-key filters.
    ``end_date`` is the first day the assignment no longer holds.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="role_assignments"
    )
    role = models.CharField(max_length=24, choices=StudyRole.choices)
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="role_assignments")
    study_site = models.ForeignKey(
        "sites.StudySite",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="role_assignments",
    )
    start_date = models.DateField(default=datetime.date.today)
    end_date = models.DateField(null=True, blank=True)
    end_reason = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ended_at = models.DateTimeField(null=True, blank=True)

    objects = RoleAssignmentQuerySet.as_manager()

    class Meta:
        ordering = ["-start_date", "-id"]
        indexes = [models.Index(fields=["user", "study"]), models.Index(fields=["study_site"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=F("start_date")),
                name="role_assignment_dates_order",
            ),
            models.CheckConstraint(
                condition=Q(role__in=StudyRole.values), name="role_assignment_role_valid"
            ),
            # No two assignments of the same user and role on the same scope overlap in time.
            ExclusionConstraint(
                name="role_assignment_no_overlap_study",
                expressions=[
                    ("user", RangeOperators.EQUAL),
                    ("role", RangeOperators.EQUAL),
                    ("study", RangeOperators.EQUAL),
                    (DateRange("start_date", "end_date"), RangeOperators.OVERLAPS),
                ],
                condition=Q(study_site__isnull=True),
            ),
            ExclusionConstraint(
                name="role_assignment_no_overlap_site",
                expressions=[
                    ("user", RangeOperators.EQUAL),
                    ("role", RangeOperators.EQUAL),
                    ("study_site", RangeOperators.EQUAL),
                    (DateRange("start_date", "end_date"), RangeOperators.OVERLAPS),
                ],
                condition=Q(study_site__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        scope = self.study_site or self.study
        return f"{self.user} as {self.get_role_display()} on {scope}"

    @property
    def is_active(self) -> bool:
        today = timezone.localdate()
        return self.start_date <= today and (self.end_date is None or self.end_date > today)


# --- Sponsor–CRO coordination ------------------------------------------------------------------


class StudyStatusUpdate(models.Model):
    """A party's periodic report on a study to the other parties: what went well (highlights),
    what may go wrong (risks) and what it needs from the others (asks)."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="status_updates")
    period_start = models.DateField()
    period_end = models.DateField()
    highlights = models.TextField()
    risks = models.TextField(blank=True)
    asks = models.TextField(blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    author_organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-period_end", "-created_at", "-id"]
        indexes = [models.Index(fields=["study", "-period_end"], name="status_update_study_period")]
        constraints = [
            models.CheckConstraint(
                condition=Q(period_end__gte=F("period_start")),
                name="status_update_period_order",
            ),
            models.CheckConstraint(
                condition=~Q(highlights=""), name="status_update_highlights_present"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.study.code} status {self.period_start:%Y-%m-%d}–{self.period_end:%Y-%m-%d}"


class Meeting(models.Model):
    """A sponsor–CRO meeting as it was held: who came, what was said; its action items follow."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="meetings")
    held_on = models.DateField()
    title = models.CharField(max_length=200)
    attendees = models.TextField(blank=True)
    notes = models.TextField(blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_by_organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-held_on", "-id"]
        indexes = [models.Index(fields=["study", "-held_on"], name="meeting_study_held_on")]
        constraints = [models.CheckConstraint(condition=~Q(title=""), name="meeting_title_present")]

    def __str__(self) -> str:
        return f"{self.study.code} · {self.held_on:%Y-%m-%d} · {self.title}"


class ActionItem(models.Model):
    """Something a meeting agreed that one person of the sponsor or an engaged CRO will do."""

    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="action_items")
    description = models.CharField(max_length=500)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="action_items"
    )
    due_date = models.DateField()
    done = models.BooleanField(default=False)
    done_at = models.DateTimeField(null=True, blank=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["due_date", "id"]
        indexes = [models.Index(fields=["owner", "done"], name="action_item_owner_done")]
        constraints = [
            models.CheckConstraint(
                condition=Q(done=True, done_at__isnull=False) | Q(done=False, done_at__isnull=True),
                name="action_item_done_has_done_at",
            ),
            models.CheckConstraint(
                condition=~Q(description=""), name="action_item_description_present"
            ),
        ]

    def __str__(self) -> str:
        return self.description

    def is_overdue(self, today: datetime.date | None = None) -> bool:
        return not self.done and self.due_date < (today or timezone.localdate())

    @property
    def overdue(self) -> bool:
        return self.is_overdue()
