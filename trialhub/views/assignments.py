"""Role assignments: CRA coverage and history per study-site, the study team, and the forms
that call ``role_assignment_create`` / ``role_assignment_end``."""

from __future__ import annotations

import datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Prefetch, Q
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from sites.selectors import study_sites_for_user
from trialhub.forms import AssignmentEndForm, RoleAssignmentForm, add_service_errors
from trialhub.models import Engagement, OrganizationKind, RoleAssignment, Study, StudyRole
from trialhub.permissions import (
    ASSIGNABLE_ROLES,
    ORG_ADMIN_ASSIGNABLE_ROLES,
    ROLE_ORGANIZATION_KIND,
    SITE_ROLES,
    membership_of,
)
from trialhub.selectors import (
    role_assignment_for_user,
    role_assignments_for_user,
    studies_for_user,
    study_for_user,
    users_for_user,
)
from trialhub.services import role_assignment_create, role_assignment_end
from trialhub.services.roles import roles_assignable_by
from trialhub.views.common import active_cra_exists, paginate, subquery_count

CRA_CHANGE_WINDOW_DAYS = 365


def _cra_changes_12m(today: datetime.date) -> Coalesce:
    """CRA changes of a study-site in the last 12 months, in SQL: the CRA assignments on the
    study-site that started within the last 365 days, not counting the site's very first CRA
    (an assignment counts when an earlier CRA assignment exists on the same study-site)."""
    earlier = RoleAssignment.objects.filter(
        role=StudyRole.CRA, study_site=OuterRef("study_site")
    ).filter(
        Q(start_date__lt=OuterRef("start_date"))
        | Q(start_date=OuterRef("start_date"), id__lt=OuterRef("id"))
    )
    return subquery_count(
        RoleAssignment.objects.filter(
            role=StudyRole.CRA,
            study_site=OuterRef("pk"),
            start_date__gt=today - datetime.timedelta(days=CRA_CHANGE_WINDOW_DAYS),
        ).filter(Exists(earlier))
    )


@login_required
def managed_studies(request: HttpRequest) -> HttpResponse:
    """The studies on which the user hands out roles (the Assignments entry of the navigation)."""
    membership = membership_of(request.user)
    studies = studies_for_user(request.user).order_by("code")
    if not (
        membership
        and membership.is_org_admin
        and ORG_ADMIN_ASSIGNABLE_ROLES.get(membership.organization.kind)
    ):
        managing = (
            RoleAssignment.objects.active()
            .filter(user=request.user, role__in=list(ASSIGNABLE_ROLES))
            .values("study_id")
        )
        studies = studies.filter(id__in=managing)
    return render(
        request, "trialhub/managed_studies.html", {"studies": paginate(request, studies, 25)}
    )


def _assignable_or_403(user, study: Study) -> frozenset[str]:
    roles = roles_assignable_by(user, study)
    if not roles:
        raise PermissionDenied("You do not assign roles on this study.")
    return roles


def _assignment_form(user, study: Study, roles: frozenset[str], data=None) -> RoleAssignmentForm:
    """People limited to the organisations that fit the roles the user may hand out."""
    kinds = {ROLE_ORGANIZATION_KIND[role] for role in roles}
    organizations = Q()
    if OrganizationKind.SPONSOR in kinds:
        organizations |= Q(membership__organization=study.sponsor_id)
    if OrganizationKind.CRO in kinds:
        membership = membership_of(user)
        if membership.organization.kind == OrganizationKind.CRO:
            organizations |= Q(membership__organization=membership.organization)
        else:
            organizations |= Q(
                membership__organization__in=Engagement.objects.filter(study=study).values("cro")
            )
    study_sites = study_sites_for_user(user, study).order_by("site__name")
    if OrganizationKind.SITE in kinds:
        organizations |= Q(membership__organization__in=study_sites.values("site__organization"))
    return RoleAssignmentForm(
        data,
        roles=roles,
        people=users_for_user(user).filter(organizations),  # roles is never empty here
        study_sites=study_sites,
        prefix="assign",
    )


def _assignments_page(
    request: HttpRequest,
    study: Study,
    roles: frozenset[str],
    *,
    assign_form: RoleAssignmentForm | None = None,
    end_form: AssignmentEndForm | None = None,
    end_for: int | None = None,
    status: int = 200,
) -> HttpResponse:
    user = request.user
    today = timezone.localdate()
    cra_history = (
        role_assignments_for_user(user).filter(role=StudyRole.CRA).order_by("-start_date", "-id")
    )
    site_staff = (
        role_assignments_for_user(user)
        .active()
        .filter(role__in=list(SITE_ROLES))
        .order_by("role", "user__last_name", "user__username")
    )
    study_sites = paginate(
        request,
        study_sites_for_user(user, study)
        .annotate(cra_changes_12m=_cra_changes_12m(today), has_active_cra=active_cra_exists())
        .prefetch_related(
            Prefetch("role_assignments", queryset=cra_history, to_attr="cra_assignments"),
            Prefetch("role_assignments", queryset=site_staff, to_attr="staff_assignments"),
        )
        .order_by("site__name"),
        25,
    )
    team = paginate(
        request,
        role_assignments_for_user(user)
        .filter(study=study, study_site__isnull=True)
        .annotate(
            ended=ExpressionWrapper(
                Q(end_date__isnull=False, end_date__lte=today), output_field=BooleanField()
            )
        )
        .order_by("ended", "role", "user__last_name", "user__username", "-start_date"),
        25,
        "team_page",
    )
    return render(
        request,
        "trialhub/study_assignments.html",
        {
            "study": study,
            "assignable_roles": roles,
            "study_sites": study_sites,
            "team": team,
            "assign_form": assign_form or _assignment_form(user, study, roles),
            "end_form": end_form,
            "end_for": end_for,
            "window_days": CRA_CHANGE_WINDOW_DAYS,
        },
        status=status,
    )


@login_required
def study_assignments(request: HttpRequest, study_id: int) -> HttpResponse:
    """CRA coverage and history per study-site, the study team, and the assign form."""
    study = study_for_user(request.user, study_id)
    roles = _assignable_or_403(request.user, study)
    if request.method != "POST":
        return _assignments_page(request, study, roles)
    form = _assignment_form(request.user, study, roles, request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            assignment = role_assignment_create(
                actor=request.user,
                user=data["user"],
                role=data["role"],
                study=study,
                study_site=data["study_site"],
                start_date=data["start_date"],
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Assigned: {assignment}.")
            return redirect("study-assignments", study_id=study.id)
    return _assignments_page(request, study, roles, assign_form=form, status=400)


@login_required
@require_POST
def assignment_end(request: HttpRequest, study_id: int, assignment_id: int) -> HttpResponse:
    study = study_for_user(request.user, study_id)
    assignment = role_assignment_for_user(request.user, assignment_id)
    if assignment.study_id != study.id:
        raise Http404("No such role assignment.")
    roles = _assignable_or_403(request.user, study)
    form = AssignmentEndForm(request.POST, prefix=f"end-{assignment.id}")
    if form.is_valid():
        try:
            role_assignment_end(
                assignment=assignment,
                actor=request.user,
                reason=form.cleaned_data["reason"],
                on=form.cleaned_data["end_date"],
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Ended: {assignment}.")
            return redirect("study-assignments", study_id=study.id)
    return _assignments_page(
        request, study, roles, end_form=form, end_for=assignment.id, status=400
    )
