"""Studies and CRO engagements."""

from __future__ import annotations

import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from trialhub.models import (
    Area,
    Engagement,
    MatrixChange,
    MatrixRevision,
    Organization,
    OrganizationKind,
    Raci,
    ResponsibilityEntry,
    Study,
    StudyPhase,
    StudyStatus,
)


@transaction.atomic
def study_create(
    *,
    sponsor: Organization,
    code: str,
    title: str,
    phase: str,
    therapeutic_area: str,
    enrolment_target: int,
    planned_start: datetime.date,
    planned_end: datetime.date,
    status: str = StudyStatus.PLANNING,
    actor=None,
    now: datetime.datetime | None = None,
) -> Study:
    """Create a study owned by ``sponsor`` with its starting matrix: the sponsor is
    Accountable for every area until the parties agree otherwise (recorded as revision 1)."""
    errors = {}
    if sponsor.kind != OrganizationKind.SPONSOR:
        errors["sponsor"] = "Only a sponsor organisation can own a study."
    if Study.objects.filter(code=code).exists():
        errors["code"] = f"A study with code {code!r} exists already."
    if phase not in StudyPhase.values:
        errors["phase"] = f"Unknown phase {phase!r}."
    if planned_end < planned_start:
        errors["planned_end"] = "The planned end comes before the planned start."
    if errors:
        raise ValidationError(errors)
    study = Study.objects.create(
        sponsor=sponsor,
        code=code,
        title=title,
        phase=phase,
        therapeutic_area=therapeutic_area,
        enrolment_target=enrolment_target,
        planned_start=planned_start,
        planned_end=planned_end,
        status=status,
        created_by=actor,
        created_at=now or timezone.now(),
    )
    note = "Study created: sponsor Accountable."
    _add_party(study, sponsor, Raci.ACCOUNTABLE, actor=actor, note=note, now=now)
    return study


@transaction.atomic
def engagement_create(
    *,
    study: Study,
    cro: Organization,
    scope: str = "",
    start_date: datetime.date | None = None,
    actor=None,
    now: datetime.datetime | None = None,
) -> Engagement:
    """Engage a CRO on a study; it joins the matrix as Informed on every area."""
    if cro.kind != OrganizationKind.CRO:
        raise ValidationError({"cro": "Only a CRO can be engaged on a study."})
    if Engagement.objects.filter(study=study, cro=cro).exists():
        raise ValidationError({"cro": f"{cro.name} is already engaged on {study.code}."})
    engagement = Engagement.objects.create(
        study=study,
        cro=cro,
        scope=scope,
        start_date=start_date or timezone.localdate(),
        created_by=actor,
        created_at=now or timezone.now(),
    )
    note = f"{cro.name} engaged: Informed."
    _add_party(study, cro, Raci.INFORMED, actor=actor, note=note, now=now)
    return engagement


def _add_party(
    study: Study, organization: Organization, code: str, *, actor, note: str, now
) -> None:
    ResponsibilityEntry.objects.bulk_create(
        ResponsibilityEntry(study=study, area=area, organization=organization, code=code)
        for area in Area.values
    )
    revision = MatrixRevision.objects.create(
        study=study, changed_by=actor, note=note, changed_at=now or timezone.now()
    )
    MatrixChange.objects.bulk_create(
        MatrixChange(revision=revision, area=area, organization=organization, new_code=code)
        for area in Area.values
    )
