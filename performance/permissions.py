"""Who may upload metric snapshots and manage scorecards, as data."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser

from trialhub.models import OrganizationKind, RoleAssignment, StudyRole
from trialhub.permissions import membership_of
from trialhub.selectors import studies_for_user

# Roles whose holders send the systems-of-record numbers (a CRA: on the study it monitors).
METRIC_WRITER_ROLES = frozenset({StudyRole.SPONSOR_LEAD, StudyRole.CRO_PM, StudyRole.CRA})
# Organisation admins upload for every study in their organisation's reach.
METRIC_WRITER_ADMIN_KINDS = frozenset({OrganizationKind.SPONSOR, OrganizationKind.CRO})


def metric_writable_study_ids(user: AbstractBaseUser | None) -> set[int]:
    """Ids of the studies whose metrics the user may upload (empty for site people)."""
    membership = membership_of(user)
    if membership is None or membership.organization.kind not in METRIC_WRITER_ADMIN_KINDS:
        return set()
    studies = studies_for_user(user)
    if not membership.is_org_admin:
        writer_roles = RoleAssignment.objects.active().filter(
            user=user, role__in=METRIC_WRITER_ROLES
        )
        studies = studies.filter(id__in=writer_roles.values("study_id"))
    return set(studies.values_list("id", flat=True))


def can_manage_scorecard(user: AbstractBaseUser | None, study) -> bool:
    """The study's sponsor lead (or an admin of its sponsor) sets the scorecard, awards and
    announces recognitions."""
    membership = membership_of(user)
    if membership is None or membership.organization_id != study.sponsor_id:
        return False
    if membership.is_org_admin:
        return True
    return (
        RoleAssignment.objects.active()
        .filter(user=user, study=study, role=StudyRole.SPONSOR_LEAD)
        .exists()
    )
