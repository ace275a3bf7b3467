"""Reads with tenancy applied first (PRODUCT.md "Who sees what").

Every function takes the requesting user and returns only what is in that user's reach; with
no user, no membership or an anonymous user it returns nothing. The ``*_for_user(user, id)``
helpers raise ``Http404`` for missing and not-yours alike, so existence is never disclosed.
List queries are plain foreign-key filters (no per-object permission checks).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Case, IntegerField, Prefetch, Q, QuerySet, Value, When
from django.http import Http404

from trialhub.models import (
    ActionItem,
    Area,
    Engagement,
    MatrixChange,
    MatrixRevision,
    Meeting,
    Organization,
    OrganizationKind,
    ResponsibilityEntry,
    RoleAssignment,
    Study,
    StudyStatusUpdate,
)
from trialhub.permissions import (
    ORG_ADMIN_COORDINATION_CAPABILITIES,
    READ_COORDINATION,
    membership_of,
    roles_with_coordination,
)

User = get_user_model()


def _organization_reach(organization: Organization) -> Q:
    """Studies an organisation takes part in at all, whoever in it is asking."""
    if organization.kind == OrganizationKind.SPONSOR:
        return Q(sponsor=organization)
    if organization.kind == OrganizationKind.CRO:
        return Q(id__in=Engagement.objects.filter(cro=organization).values("study_id"))
    return Q(study_sites__site__organization=organization)


def studies_for_user(user: AbstractBaseUser | None) -> QuerySet[Study]:
    """Studies the user may see: in the organisation's reach and, unless the user is an
    organisation admin, held through an active role assignment."""
    membership = membership_of(user)
    if membership is None:
        return Study.objects.none()
    studies = Study.objects.filter(_organization_reach(membership.organization))
    if not membership.is_org_admin:
        assigned = RoleAssignment.objects.active().filter(user=user).values("study_id")
        studies = studies.filter(id__in=assigned)
    return studies.select_related("sponsor")


def study_for_user(user: AbstractBaseUser | None, study_id: int | str) -> Study:
    """The study with this id if the user may see it; ``Http404`` otherwise."""
    try:
        return studies_for_user(user).get(pk=int(study_id))
    except (Study.DoesNotExist, TypeError, ValueError):
        raise Http404("No such study.") from None


def role_assignments_for_user(user: AbstractBaseUser | None) -> QuerySet[RoleAssignment]:
    """Assignments (active and ended) on the user's studies. Site users see study-level
    assignments and those of their own site, never another site's people."""
    membership = membership_of(user)
    if membership is None:
        return RoleAssignment.objects.none()
    assignments = RoleAssignment.objects.filter(study__in=studies_for_user(user))
    if membership.organization.kind == OrganizationKind.SITE:
        assignments = assignments.filter(
            Q(study_site__isnull=True) | Q(study_site__site__organization=membership.organization)
        )
    return assignments.select_related(
        "user__membership__organization", "study", "study_site__site", "created_by", "ended_by"
    )


def role_assignment_for_user(user: AbstractBaseUser | None, assignment_id: int | str):
    try:
        return role_assignments_for_user(user).get(pk=int(assignment_id))
    except (RoleAssignment.DoesNotExist, TypeError, ValueError):
        raise Http404("No such role assignment.") from None


def users_for_user(user: AbstractBaseUser | None) -> QuerySet:
    """People the user may assign or address: their own organisation, plus everyone holding
    an active role the user can see on the user's studies."""
    membership = membership_of(user)
    if membership is None:
        return User.objects.none()
    on_my_studies = role_assignments_for_user(user).active().values("user_id")
    reach = Q(membership__organization=membership.organization) | Q(id__in=on_my_studies)
    if membership.organization.kind != OrganizationKind.SITE:
        # Sponsors and CROs staff studies: they also need the people of their partner
        # organisations who hold no role yet. Site people see only those already on a study.
        reach |= Q(membership__organization__in=_partner_organizations(user))
    return (
        User.objects.filter(is_active=True, membership__isnull=False)
        .filter(reach)
        .select_related("membership__organization")
        .order_by("last_name", "first_name", "username")
    )


def _partner_organizations(user) -> QuerySet[Organization]:
    """The sponsors, engaged CROs and participating sites of the user's studies."""
    studies = studies_for_user(user)
    return Organization.objects.filter(
        Q(studies__in=studies)
        | Q(engagements__study__in=studies)
        | Q(site__study_sites__study__in=studies)
    )


def user_for_user(user: AbstractBaseUser | None, user_id: int | str):
    try:
        return users_for_user(user).get(pk=int(user_id))
    except (User.DoesNotExist, TypeError, ValueError):
        raise Http404("No such person.") from None


def study_parties(study: Study) -> list[Organization]:
    """The parties of a study's matrix: its sponsor, then each engaged CRO."""
    cros = [engagement.cro for engagement in study.engagements.select_related("cro")]
    return [study.sponsor, *cros]


def responsibility_matrix(study: Study) -> dict:
    """The matrix as the API shapes it: parties and one entry per (area, party)."""
    entries = ResponsibilityEntry.objects.filter(study=study).order_by("area", "organization_id")
    area_order = {area: index for index, area in enumerate(Area.values)}
    return {
        "study": study.id,
        "parties": study_parties(study),
        "entries": sorted(
            (
                {"area": entry.area, "organization": entry.organization_id, "code": entry.code}
                for entry in entries
            ),
            key=lambda entry: (area_order[entry["area"]], entry["organization"]),
        ),
    }


def _area_position() -> Case:
    """Areas in their defined order (not alphabetical by slug)."""
    return Case(
        *(When(area=area, then=Value(index)) for index, area in enumerate(Area.values)),
        output_field=IntegerField(),
    )


def matrix_revisions(study: Study) -> QuerySet[MatrixRevision]:
    """The study's matrix change history, newest first, with the changed cells."""
    return (
        MatrixRevision.objects.filter(study=study)
        .select_related("changed_by__membership__organization")
        .prefetch_related(
            Prefetch(
                "changes",
                queryset=MatrixChange.objects.select_related("organization").order_by(
                    _area_position(), "organization__name"
                ),
            )
        )
    )


# --- Sponsor–CRO coordination ------------------------------------------------------------------


def coordination_studies_for_user(user: AbstractBaseUser | None) -> QuerySet[Study]:
    """Studies whose coordination (status updates, meetings, action items) the user reads:
    the studies they see, as a sponsor or CRO organisation admin or through a reader role on
    the study. Site people get none."""
    membership = membership_of(user)
    if membership is None:
        return Study.objects.none()
    admin_capabilities = ORG_ADMIN_COORDINATION_CAPABILITIES.get(membership.organization.kind)
    if admin_capabilities is None:
        return Study.objects.none()
    studies = studies_for_user(user)
    if membership.is_org_admin and READ_COORDINATION in admin_capabilities:
        return studies
    readers = (
        RoleAssignment.objects.active()
        .filter(user=user, role__in=roles_with_coordination(READ_COORDINATION))
        .values("study_id")
    )
    return studies.filter(id__in=readers)


def coordination_study_for_user(user: AbstractBaseUser | None, study_id: int | str) -> Study:
    """The study if the user reads its coordination; ``Http404`` otherwise (also for a site
    person who sees the study itself: coordination is not theirs to know of)."""
    try:
        return coordination_studies_for_user(user).get(pk=int(study_id))
    except (Study.DoesNotExist, TypeError, ValueError):
        raise Http404("No such study.") from None


def status_updates_for_study(user: AbstractBaseUser | None, study: Study) -> QuerySet:
    """The study's status updates, latest period first, if the user reads its coordination."""
    return (
        StudyStatusUpdate.objects.filter(study__in=coordination_studies_for_user(user))
        .filter(study=study)
        .select_related("author__membership__organization", "author_organization")
        .order_by("-period_end", "-created_at", "-id")
    )


def _action_items() -> QuerySet[ActionItem]:
    return ActionItem.objects.select_related("owner__membership__organization", "done_by").order_by(
        "due_date", "id"
    )


def meetings_for_study(user: AbstractBaseUser | None, study: Study) -> QuerySet[Meeting]:
    """The study's meetings, latest first, each with its action items (owners and who marked
    them done prefetched) if the user reads the study's coordination."""
    return (
        Meeting.objects.filter(study__in=coordination_studies_for_user(user))
        .filter(study=study)
        .select_related("recorded_by__membership__organization", "recorded_by_organization")
        .prefetch_related(Prefetch("action_items", queryset=_action_items()))
        .order_by("-held_on", "-id")
    )


def action_items_for_user(user: AbstractBaseUser | None) -> QuerySet[ActionItem]:
    """Action items on every study whose coordination the user reads."""
    return (
        _action_items()
        .filter(meeting__study__in=coordination_studies_for_user(user))
        .select_related("meeting__study")
    )


def action_item_for_user(user: AbstractBaseUser | None, item_id: int | str) -> ActionItem:
    try:
        return action_items_for_user(user).get(pk=int(item_id))
    except (ActionItem.DoesNotExist, TypeError, ValueError):
        raise Http404("No such action item.") from None


def open_action_items_for_user(user: AbstractBaseUser | None) -> QuerySet[ActionItem]:
    """The user's own open action items across their studies, soonest due first."""
    if membership_of(user) is None:
        return ActionItem.objects.none()
    return action_items_for_user(user).filter(owner=user, done=False)


def action_item_owner_candidates(study: Study) -> QuerySet:
    """Who may own an action item of the study: active people of its sponsor and of the CROs
    engaged on it (the rule ``meeting_create`` checks)."""
    organizations = Q(membership__organization=study.sponsor_id) | Q(
        membership__organization__in=Engagement.objects.filter(study=study).values("cro_id")
    )
    return (
        User.objects.filter(is_active=True)
        .filter(organizations)
        .select_related("membership__organization")
        .order_by("membership__organization__name", "last_name", "first_name", "username")
    )
