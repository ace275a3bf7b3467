"""Role assignments: created and ended, never deleted; object permissions follow them."""

from __future__ import annotations

import datetime

from django.contrib.auth.models import AbstractBaseUser, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from guardian.models import UserObjectPermission

from sites.models import StudySite
from trialhub.models import Engagement, OrganizationKind, RoleAssignment, Study, StudyRole
from trialhub.permissions import (
    ASSIGN_ROLES,
    ASSIGNABLE_ROLES,
    ORG_ADMIN_ASSIGNABLE_ROLES,
    ROLE_ORGANIZATION_KIND,
    ROLE_STUDY_PERMISSIONS,
    ROLE_STUDY_SITE_PERMISSIONS,
    STUDY_SITE_SCOPED_ROLES,
    has_study_permission,
    membership_of,
)


def roles_assignable_by(actor: AbstractBaseUser, study: Study) -> frozenset[str]:
    """The roles ``actor`` may hand out or end on ``study`` (empty when none)."""
    membership = membership_of(actor)
    if membership is None or not has_study_permission(actor, ASSIGN_ROLES, study):
        return frozenset()
    roles: set[str] = set()
    if membership.is_org_admin:
        roles |= ORG_ADMIN_ASSIGNABLE_ROLES[membership.organization.kind]
    for role in (
        RoleAssignment.objects.active()
        .filter(user=actor, study=study)
        .values_list("role", flat=True)
    ):
        roles |= ASSIGNABLE_ROLES.get(role, frozenset())
    return frozenset(roles)


def _check_holder(*, actor, user, role: str, study: Study, study_site: StudySite | None) -> None:
    """The holder's organisation must fit the role and the scope."""
    holder = membership_of(user)
    if holder is None:
        raise ValidationError({"user": "This person belongs to no organisation."})
    organization = holder.organization
    if organization.kind != ROLE_ORGANIZATION_KIND[role]:
        raise ValidationError(
            {"user": f"A {StudyRole(role).label} must work for a {ROLE_ORGANIZATION_KIND[role]}."}
        )
    if organization.kind == OrganizationKind.SPONSOR and organization.id != study.sponsor_id:
        raise ValidationError({"user": "This person does not work for the study's sponsor."})
    if organization.kind == OrganizationKind.CRO:
        if not Engagement.objects.filter(study=study, cro=organization).exists():
            raise ValidationError({"user": "This person's CRO is not engaged on the study."})
        actor_organization = membership_of(actor).organization
        if actor_organization.kind == OrganizationKind.CRO and actor_organization != organization:
            raise ValidationError({"user": "A CRO can only assign its own people."})
    if organization.kind == OrganizationKind.SITE and (
        study_site is None or study_site.site.organization_id != organization.id
    ):
        raise ValidationError({"user": "This person does not work at the chosen site."})


@transaction.atomic
def role_assignment_create(
    *,
    actor,
    user,
    role: str,
    study: Study | None = None,
    study_site: StudySite | None = None,
    start_date: datetime.date | None = None,
) -> RoleAssignment:
    """Give ``user`` a study role on a study or one study-site, from ``start_date`` (today).

    The caller has already resolved ``study``/``study_site`` through a selector (tenancy);
    this checks the actor may hand out the role (``PermissionDenied`` otherwise), the holder's
    organisation fits, and no overlapping assignment exists; grants object permissions.
    """
    if role not in StudyRole.values:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    if study_site is not None:
        if study is not None and study.id != study_site.study_id:
            raise ValidationError({"study_site": "This study-site belongs to another study."})
        study = study_site.study
    if study is None:
        raise ValidationError({"study": "Give a study or a study-site."})
    if role in STUDY_SITE_SCOPED_ROLES and study_site is None:
        raise ValidationError({"study_site": f"A {StudyRole(role).label} is assigned to a site."})
    if role not in STUDY_SITE_SCOPED_ROLES and study_site is not None:
        raise ValidationError({"study_site": f"A {StudyRole(role).label} covers the whole study."})
    if role not in roles_assignable_by(actor, study):
        raise PermissionDenied(f"You may not assign the role {StudyRole(role).label} here.")
    _check_holder(actor=actor, user=user, role=role, study=study, study_site=study_site)
    start_date = start_date or timezone.localdate()
    overlapping = RoleAssignment.objects.filter(
        user=user, role=role, study=study, study_site=study_site
    ).filter(Q(end_date__isnull=True) | Q(end_date__gt=start_date))
    if overlapping.exists():
        raise ValidationError(
            {"user": f"{user.get_full_name() or user.username} already holds this role here."}
        )
    try:
        with transaction.atomic():
            assignment = RoleAssignment.objects.create(
                user=user,
                role=role,
                study=study,
                study_site=study_site,
                start_date=start_date,
                created_by=actor,
            )
    except IntegrityError as error:  # a concurrent request won the race
        raise ValidationError({"user": "This person already holds this role here."}) from error
    object_permissions_sync(user=user, study=study)
    return assignment


@transaction.atomic
def role_assignment_end(
    *, assignment: RoleAssignment, actor, reason: str, on: datetime.date | None = None
) -> RoleAssignment:
    """End an assignment on ``on`` (today): kept as history, permissions withdrawn."""
    assignment = RoleAssignment.objects.select_for_update().get(pk=assignment.pk)
    if assignment.role not in roles_assignable_by(actor, assignment.study):
        raise PermissionDenied("You may not end this assignment.")
    on = on or timezone.localdate()
    if assignment.end_date is not None and assignment.end_date <= timezone.localdate():
        raise ValidationError({"end_date": "This assignment has ended already."})
    if on < assignment.start_date:
        raise ValidationError({"end_date": "An assignment cannot end before it starts."})
    if not reason.strip():
        raise ValidationError({"reason": "Say why the assignment ends."})
    assignment.end_date = on
    assignment.end_reason = reason.strip()
    assignment.ended_by = actor
    assignment.ended_at = timezone.now()
    assignment.save(update_fields=["end_date", "end_reason", "ended_by", "ended_at"])
    object_permissions_sync(user=assignment.user, study=assignment.study)
    return assignment


@transaction.atomic
def object_permissions_sync(*, user, study: Study, on: datetime.date | None = None) -> None:
    """Make the user's guardian permissions on the study and its study-sites match the
    assignments active ``on`` (today): grant what they hold, withdraw what they no longer do."""
    wanted: set[tuple[int, str, str]] = set()  # (content type id, object pk, codename)
    study_type = ContentType.objects.get_for_model(Study)
    site_type = ContentType.objects.get_for_model(StudySite)
    for role, study_site_id in (
        RoleAssignment.objects.active(on)
        .filter(user=user, study=study)
        .values_list("role", "study_site_id")
    ):
        wanted |= {(study_type.id, str(study.id), perm) for perm in ROLE_STUDY_PERMISSIONS[role]}
        if study_site_id is not None:
            wanted |= {
                (site_type.id, str(study_site_id), perm)
                for perm in ROLE_STUDY_SITE_PERMISSIONS.get(role, ())
            }
    site_pks = [
        str(pk) for pk in StudySite.objects.filter(study=study).values_list("pk", flat=True)
    ]
    existing = UserObjectPermission.objects.filter(user=user).filter(
        Q(content_type=study_type, object_pk=str(study.id))
        | Q(content_type=site_type, object_pk__in=site_pks)
    )
    have = {
        (row.content_type_id, row.object_pk, row.permission.codename): row.id
        for row in existing.select_related("permission")
    }
    UserObjectPermission.objects.filter(
        id__in=[row_id for key, row_id in have.items() if key not in wanted]
    ).delete()
    missing = wanted - have.keys()
    if missing:
        permissions = {
            (perm.content_type_id, perm.codename): perm
            for perm in Permission.objects.filter(content_type__in=[study_type, site_type])
        }
        UserObjectPermission.objects.bulk_create(
            UserObjectPermission(
                user=user,
                content_type_id=type_id,
                object_pk=object_pk,
                permission=permissions[(type_id, codename)],
            )
            for type_id, object_pk, codename in missing
        )
