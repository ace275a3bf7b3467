"""Writes for sites: participation in studies, milestones, preferences, training."""

from __future__ import annotations

import datetime
from collections.abc import Mapping

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from sites.models import (
    MILESTONE_FIELDS,
    MILESTONE_ORDER,
    DigestFrequency,
    Site,
    StudySite,
    StudySiteStatus,
    TrainingKind,
    TrainingRecord,
)
from trialhub.models import Organization, OrganizationKind, RoleAssignment, Study
from trialhub.permissions import (
    CHANGE_STUDY_SITE,
    MANAGE_STUDY_SITES,
    RECORD_TRAINING,
    SITE_PROFILE_EDITOR_ROLES,
    has_study_permission,
    has_study_site_permission,
    membership_of,
)
from trialhub.services.organizations import validate_time_zone

PREFERENCE_FIELDS = (
    "time_zone",
    "digest_frequency",
    "digest_hour",
    "digest_weekday",
    "quiet_hours_enabled",
    "quiet_hours_start",
    "quiet_hours_end",
)


@transaction.atomic
def site_create(
    *, organization: Organization, name: str, institution: str, country: str, **profile
) -> Site:
    """A site's profile for an organisation of kind site (one profile per organisation)."""
    if organization.kind != OrganizationKind.SITE:
        raise ValidationError({"organization": "A site belongs to an organisation of kind site."})
    return Site.objects.create(
        organization=organization, name=name, institution=institution, country=country, **profile
    )


@transaction.atomic
def study_site_create(
    *, study: Study, site: Site, enrolment_target: int, actor=None, **fields
) -> StudySite:
    """Add a site to a study (selected today unless a date is given)."""
    if actor is not None and not has_study_permission(actor, MANAGE_STUDY_SITES, study):
        raise PermissionDenied("You may not add sites to this study.")
    if StudySite.objects.filter(study=study, site=site).exists():
        raise ValidationError({"site": f"{site.name} already takes part in {study.code}."})
    fields.setdefault("selected_on", timezone.localdate())
    _validate_milestones(fields)
    return StudySite.objects.create(
        study=study, site=site, enrolment_target=enrolment_target, updated_by=actor, **fields
    )


def _validate_milestones(values: Mapping) -> None:
    errors = {}
    for earlier, later in MILESTONE_ORDER:
        if values.get(earlier) and values.get(later) and values[later] < values[earlier]:
            label = earlier.removesuffix("_on").replace("_", " ")
            errors.setdefault(later, f"Cannot come before the {label} date.")
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def study_site_update(*, study_site: StudySite, actor, data: Mapping) -> StudySite:
    """Update a study-site's status, enrolment target and milestone dates.

    Allowed for the study's sponsor lead and CRO project manager and the site's CRA.
    Milestones must stay in order (the database checks it too).
    """
    if not has_study_site_permission(actor, CHANGE_STUDY_SITE, study_site):
        raise PermissionDenied("You may not update this study-site.")
    allowed = {"status", "enrolment_target", *MILESTONE_FIELDS}
    unknown = set(data) - allowed
    if unknown:
        raise ValidationError({field: "This field cannot be changed here." for field in unknown})
    if "status" in data and data["status"] not in StudySiteStatus.values:
        raise ValidationError({"status": f"Unknown status {data['status']!r}."})
    merged = {field: getattr(study_site, field) for field in MILESTONE_FIELDS} | {
        field: value for field, value in data.items() if field in MILESTONE_FIELDS
    }
    _validate_milestones(merged)
    for field, value in data.items():
        setattr(study_site, field, value)
    study_site.updated_by = actor
    study_site.updated_at = timezone.now()
    study_site.save()
    return study_site


def can_edit_site_profile(user, site: Site) -> bool:
    """Site coordinators and investigators of the site (and its organisation admins)."""
    membership = membership_of(user)
    if membership is None or membership.organization_id != site.organization_id:
        return False
    if membership.is_org_admin:
        return True
    return (
        RoleAssignment.objects.active()
        .filter(user=user, study_site__site=site, role__in=SITE_PROFILE_EDITOR_ROLES)
        .exists()
    )


@transaction.atomic
def site_preferences_update(*, site: Site, actor, data: Mapping) -> Site:
    """Change a site's time zone, digest schedule and quiet hours."""
    if not can_edit_site_profile(actor, site):
        raise PermissionDenied("Only the site's coordinators and investigators edit its profile.")
    unknown = set(data) - set(PREFERENCE_FIELDS)
    if unknown:
        raise ValidationError({field: "This field cannot be changed here." for field in unknown})
    errors = {}
    if "time_zone" in data:
        try:
            validate_time_zone(data["time_zone"])
        except ValidationError as error:
            errors.update(error.message_dict)
    if "digest_frequency" in data and data["digest_frequency"] not in DigestFrequency.values:
        errors["digest_frequency"] = "Choose daily or weekly."
    if "digest_hour" in data and not 0 <= int(data["digest_hour"]) <= 23:
        errors["digest_hour"] = "Give an hour from 0 to 23."
    if "digest_weekday" in data and not 0 <= int(data["digest_weekday"]) <= 6:
        errors["digest_weekday"] = "Give a weekday from 0 (Monday) to 6 (Sunday)."
    start = data.get("quiet_hours_start", site.quiet_hours_start)
    end = data.get("quiet_hours_end", site.quiet_hours_end)
    if data.get("quiet_hours_enabled", site.quiet_hours_enabled) and start == end:
        errors["quiet_hours_end"] = "Quiet hours need different start and end times."
    if errors:
        raise ValidationError(errors)
    for field, value in data.items():
        setattr(site, field, value)
    site.updated_at = timezone.now()
    site.save()
    return site


@transaction.atomic
def training_record_create(
    *,
    study_site: StudySite,
    user,
    kind: str,
    title: str,
    completed_on: datetime.date,
    actor,
) -> TrainingRecord:
    """Record that a member of the site's staff completed a study training."""
    if not has_study_site_permission(actor, RECORD_TRAINING, study_site):
        raise PermissionDenied("You may not record training at this site.")
    errors = {}
    staff = membership_of(user)
    if staff is None or staff.organization_id != study_site.site.organization_id:
        errors["user"] = "Training is recorded for the site's own staff."
    if kind not in TrainingKind.values:
        errors["kind"] = f"Unknown training kind {kind!r}."
    if not title.strip():
        errors["title"] = "Name the training."
    if completed_on > timezone.localdate():
        errors["completed_on"] = "A completion date cannot be in the future."
    if (
        not errors
        and TrainingRecord.objects.filter(
            study_site=study_site, user=user, kind=kind, title=title.strip()
        ).exists()
    ):
        errors["title"] = "This training is recorded already."
    if errors:
        raise ValidationError(errors)
    return TrainingRecord.objects.create(
        study_site=study_site,
        user=user,
        kind=kind,
        title=title.strip(),
        completed_on=completed_on,
        recorded_by=actor,
    )
