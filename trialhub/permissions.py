"""Who may do what, as data: study roles map to object permissions (django-guardian codenames).

One table read by services, views, the API and templates alike (Sentry's roles -> scopes).
Tenancy (what a user can see at all) lives in ``selectors``; this module answers the second
question, "you can see it, but may you change it?" (403 when not).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.contrib.auth.models import AbstractBaseUser
from guardian.core import ObjectPermissionChecker

from trialhub.models import Membership, OrganizationKind, RoleAssignment, Study, StudyRole

if TYPE_CHECKING:
    from sites.models import StudySite

# Object permissions on a Study.
VIEW_STUDY = "view_study"
EDIT_MATRIX = "edit_responsibility_matrix"
ASSIGN_ROLES = "assign_roles"
MANAGE_STUDY_SITES = "manage_study_sites"
# Object permissions on a StudySite.
VIEW_STUDY_SITE = "view_studysite"
CHANGE_STUDY_SITE = "change_studysite"
RECORD_TRAINING = "record_training"

STUDY_PERMISSIONS = (VIEW_STUDY, EDIT_MATRIX, ASSIGN_ROLES, MANAGE_STUDY_SITES)
STUDY_SITE_PERMISSIONS = (VIEW_STUDY_SITE, CHANGE_STUDY_SITE, RECORD_TRAINING)

ROLE_STUDY_PERMISSIONS: dict[str, frozenset[str]] = {
    StudyRole.SPONSOR_LEAD: frozenset({VIEW_STUDY, EDIT_MATRIX, ASSIGN_ROLES, MANAGE_STUDY_SITES}),
    StudyRole.SPONSOR_VIEWER: frozenset({VIEW_STUDY}),
    StudyRole.CRO_PM: frozenset({VIEW_STUDY, ASSIGN_ROLES, MANAGE_STUDY_SITES}),
    StudyRole.CRA: frozenset({VIEW_STUDY}),
    StudyRole.CRO_VIEWER: frozenset({VIEW_STUDY}),
    StudyRole.SITE_COORDINATOR: frozenset({VIEW_STUDY}),
    StudyRole.PRINCIPAL_INVESTIGATOR: frozenset({VIEW_STUDY}),
}
# Granted on the assignment's study-site (roles scoped to one study-site).
ROLE_STUDY_SITE_PERMISSIONS: dict[str, frozenset[str]] = {
    StudyRole.CRA: frozenset({VIEW_STUDY_SITE, CHANGE_STUDY_SITE}),
    StudyRole.SITE_COORDINATOR: frozenset({VIEW_STUDY_SITE, RECORD_TRAINING}),
    StudyRole.PRINCIPAL_INVESTIGATOR: frozenset({VIEW_STUDY_SITE, RECORD_TRAINING}),
}
# Organisation admins act on every study of their organisation as these roles would.
ORG_ADMIN_STUDY_PERMISSIONS: dict[str, frozenset[str]] = {
    OrganizationKind.SPONSOR: ROLE_STUDY_PERMISSIONS[StudyRole.SPONSOR_LEAD],
    OrganizationKind.CRO: ROLE_STUDY_PERMISSIONS[StudyRole.CRO_PM],
    OrganizationKind.SITE: frozenset({VIEW_STUDY, ASSIGN_ROLES}),
}
ORG_ADMIN_STUDY_SITE_PERMISSIONS: dict[str, frozenset[str]] = {
    OrganizationKind.SPONSOR: frozenset({VIEW_STUDY_SITE, CHANGE_STUDY_SITE}),
    OrganizationKind.CRO: frozenset({VIEW_STUDY_SITE, CHANGE_STUDY_SITE}),
    OrganizationKind.SITE: frozenset({VIEW_STUDY_SITE, RECORD_TRAINING}),
}

# The organisation kind a role's holder must belong to, and the scope the role takes.
ROLE_ORGANIZATION_KIND: dict[str, str] = {
    StudyRole.SPONSOR_LEAD: OrganizationKind.SPONSOR,
    StudyRole.SPONSOR_VIEWER: OrganizationKind.SPONSOR,
    StudyRole.CRO_PM: OrganizationKind.CRO,
    StudyRole.CRA: OrganizationKind.CRO,
    StudyRole.CRO_VIEWER: OrganizationKind.CRO,
    StudyRole.SITE_COORDINATOR: OrganizationKind.SITE,
    StudyRole.PRINCIPAL_INVESTIGATOR: OrganizationKind.SITE,
}
STUDY_SITE_SCOPED_ROLES = frozenset(
    {StudyRole.CRA, StudyRole.SITE_COORDINATOR, StudyRole.PRINCIPAL_INVESTIGATOR}
)
SITE_ROLES = frozenset({StudyRole.SITE_COORDINATOR, StudyRole.PRINCIPAL_INVESTIGATOR})

# Which roles a holder of a role (or an organisation admin of a kind) may hand out on a study.
ASSIGNABLE_ROLES: dict[str, frozenset[str]] = {
    StudyRole.SPONSOR_LEAD: frozenset(StudyRole.values),
    StudyRole.CRO_PM: frozenset(
        {
            StudyRole.CRO_PM,
            StudyRole.CRA,
            StudyRole.CRO_VIEWER,
            StudyRole.SITE_COORDINATOR,
            StudyRole.PRINCIPAL_INVESTIGATOR,
        }
    ),
}
ORG_ADMIN_ASSIGNABLE_ROLES: dict[str, frozenset[str]] = {
    OrganizationKind.SPONSOR: ASSIGNABLE_ROLES[StudyRole.SPONSOR_LEAD],
    OrganizationKind.CRO: ASSIGNABLE_ROLES[StudyRole.CRO_PM],
    OrganizationKind.SITE: SITE_ROLES,
}
# Roles that may edit a site's profile (digest schedule, quiet hours) at their own site.
SITE_PROFILE_EDITOR_ROLES = SITE_ROLES

# Sponsor–CRO coordination (status updates, meetings, action items) is between the sponsor and
# its CROs: site people never see it. Readers see it all; writers add status updates and
# meetings with their action items, and mark any action item done (its owner may as well).
READ_COORDINATION = "read_coordination"
WRITE_COORDINATION = "write_coordination"
COORDINATION_ROLE_CAPABILITIES: dict[str, frozenset[str]] = {
    StudyRole.SPONSOR_LEAD: frozenset({READ_COORDINATION, WRITE_COORDINATION}),
    StudyRole.SPONSOR_VIEWER: frozenset({READ_COORDINATION}),
    StudyRole.CRO_PM: frozenset({READ_COORDINATION, WRITE_COORDINATION}),
    StudyRole.CRA: frozenset({READ_COORDINATION}),
    StudyRole.CRO_VIEWER: frozenset({READ_COORDINATION}),
}
ORG_ADMIN_COORDINATION_CAPABILITIES: dict[str, frozenset[str]] = {
    OrganizationKind.SPONSOR: frozenset({READ_COORDINATION, WRITE_COORDINATION}),
    OrganizationKind.CRO: frozenset({READ_COORDINATION, WRITE_COORDINATION}),
}


def membership_of(user: AbstractBaseUser | None) -> Membership | None:
    """The user's membership (cached on the user object), or None for anonymous/no tenant."""
    if user is None or not user.is_authenticated:
        return None
    if not hasattr(user, "_trialhub_membership"):
        user._trialhub_membership = (
            Membership.objects.select_related("organization").filter(user=user).first()
        )
    return user._trialhub_membership


def has_study_permission(user: AbstractBaseUser, permission: str, study: Study) -> bool:
    """Object permission on a study the user can already see (callers resolve it by selector)."""
    membership = membership_of(user)
    if membership is None:
        return False
    if (
        membership.is_org_admin
        and permission in ORG_ADMIN_STUDY_PERMISSIONS[membership.organization.kind]
    ):
        return True
    return user.has_perm(f"trialhub.{permission}", study)


def has_study_site_permission(user: AbstractBaseUser, permission: str, study_site) -> bool:
    """Object permission on a study-site the user can see; study-level managers included."""
    membership = membership_of(user)
    if membership is None:
        return False
    if (
        membership.is_org_admin
        and permission in ORG_ADMIN_STUDY_SITE_PERMISSIONS[membership.organization.kind]
    ):
        return True
    if permission in (VIEW_STUDY_SITE, CHANGE_STUDY_SITE) and has_study_permission(
        user, MANAGE_STUDY_SITES, study_site.study
    ):
        return True
    return user.has_perm(f"sites.{permission}", study_site)


def study_site_ids_with_permission(
    user, permission: str, study_sites: Iterable[StudySite]
) -> set[int]:
    """``has_study_site_permission`` for many study-sites at a constant number of queries:
    organisation admins and study managers by rule, everyone else by one guardian prefetch."""
    study_sites = list(study_sites)
    membership = membership_of(user)
    if membership is None or not study_sites:
        return set()
    if membership.is_org_admin and (
        permission in ORG_ADMIN_STUDY_SITE_PERMISSIONS[membership.organization.kind]
    ):
        return {study_site.id for study_site in study_sites}
    allowed: set[int] = set()
    if permission == CHANGE_STUDY_SITE:
        for study in {study_site.study for study_site in study_sites}:
            if has_study_permission(user, MANAGE_STUDY_SITES, study):
                allowed |= {ss.id for ss in study_sites if ss.study_id == study.id}
    checker = ObjectPermissionChecker(user)
    checker.prefetch_perms(study_sites)
    return allowed | {ss.id for ss in study_sites if checker.has_perm(f"sites.{permission}", ss)}


def roles_with_coordination(capability: str) -> list[str]:
    """The study roles that carry a coordination capability (for foreign-key filters)."""
    return [role for role, caps in COORDINATION_ROLE_CAPABILITIES.items() if capability in caps]


def coordination_capabilities(
    user: AbstractBaseUser | None, study: Study, on: datetime.date | None = None
) -> frozenset[str]:
    """What ``user`` may do with the coordination of a study they can see (the caller resolved
    it through a selector), on ``on`` (today): organisation admins by their organisation's
    kind, everyone else by the roles they hold on the study (one query). Site people, and
    anyone without a membership, get nothing."""
    membership = membership_of(user)
    if membership is None:
        return frozenset()
    kind = membership.organization.kind
    if kind not in ORG_ADMIN_COORDINATION_CAPABILITIES:
        return frozenset()
    if membership.is_org_admin:
        return ORG_ADMIN_COORDINATION_CAPABILITIES[kind]
    roles = (
        RoleAssignment.objects.active(on)
        .filter(user=user, study=study)
        .values_list("role", flat=True)
    )
    return frozenset().union(
        *(COORDINATION_ROLE_CAPABILITIES.get(role, frozenset()) for role in roles)
    )
