"""HTML pages of the tenancy core: dashboard, studies, responsibility matrix, role assignments.

Thin views: objects are resolved only through the ``*_for_user`` selectors (404 for missing and
not-yours alike), lists start from the tenancy selectors, writes go through the services.
``PermissionDenied`` (403) is only for what the user can see but may not change.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Page, Paginator
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    Func,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Greatest
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST
from guardian.core import ObjectPermissionChecker

from sites.models import MILESTONE_FIELDS, StudySite
from sites.selectors import study_sites_for_user
from trialhub.forms import (
    AssignmentEndForm,
    MatrixForm,
    RoleAssignmentForm,
    StudyFilterForm,
    add_service_errors,
)
from trialhub.models import (
    Engagement,
    OrganizationKind,
    RoleAssignment,
    Study,
    StudyRole,
)
from trialhub.permissions import (
    ASSIGNABLE_ROLES,
    CHANGE_STUDY_SITE,
    EDIT_MATRIX,
    MANAGE_STUDY_SITES,
    ORG_ADMIN_ASSIGNABLE_ROLES,
    ORG_ADMIN_STUDY_SITE_PERMISSIONS,
    ROLE_ORGANIZATION_KIND,
    SITE_ROLES,
    has_study_permission,
    membership_of,
)
from trialhub.selectors import (
    matrix_revisions,
    responsibility_matrix,
    role_assignment_for_user,
    role_assignments_for_user,
    studies_for_user,
    study_for_user,
    users_for_user,
)
from trialhub.services import (
    responsibility_matrix_set,
    role_assignment_create,
    role_assignment_end,
)
from trialhub.services.roles import roles_assignable_by

MILESTONE_LABELS = {
    "selected_on": "Selected",
    "regulatory_approval_on": "Regulatory approval",
    "contract_signed_on": "Contract signed",
    "activated_on": "Activated (SIV)",
    "first_patient_in_on": "First patient in",
    "last_patient_in_on": "Last patient in",
    "closed_on": "Closed",
}
RECENT_CRA_CHANGE_DAYS = 90
CRA_CHANGE_WINDOW_DAYS = 365


# --- helpers shared by the pages -------------------------------------------------------------


def paginate(request: HttpRequest, items, per_page: int, param: str = "page") -> Page:
    """A page of ``items`` chosen by the GET parameter ``param``; the page object carries what
    ``includes/pagination.html`` needs to keep the other GET parameters (filters) in its links."""
    page_obj = Paginator(items, per_page).get_page(request.GET.get(param))
    query = request.GET.copy()
    query.pop(param, None)
    page_obj.param = param
    page_obj.query_prefix = f"{query.urlencode()}&" if query else ""
    return page_obj


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


def next_milestone(study_site: StudySite) -> tuple[str, str] | None:
    """The first milestone (field, label) the study-site has not reached yet."""
    for field in MILESTONE_FIELDS:
        if getattr(study_site, field) is None:
            return field, MILESTONE_LABELS[field]
    return None


def last_milestone(study_site: StudySite) -> tuple[str, datetime.date] | None:
    """The latest milestone reached: (label, date)."""
    reached = [
        (MILESTONE_LABELS[field], getattr(study_site, field))
        for field in MILESTONE_FIELDS
        if getattr(study_site, field) is not None
    ]
    return reached[-1] if reached else None


def _annotate_milestones(study_sites: Iterable[StudySite]) -> None:
    for study_site in study_sites:
        study_site.next_milestone = next_milestone(study_site)
        study_site.last_milestone = last_milestone(study_site)


def _active_cra_exists() -> Exists:
    return Exists(
        RoleAssignment.objects.active().filter(role=StudyRole.CRA, study_site=OuterRef("pk"))
    )


def _count(rows) -> Coalesce:
    """``COUNT(*)`` of a correlated subquery (no join fan-out in the outer query)."""
    # Func, not Count: an aggregate would add a GROUP BY; this counts the whole subquery.
    counted = rows.order_by().annotate(count=Func("pk", function="COUNT")).values("count")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


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
    return _count(
        RoleAssignment.objects.filter(
            role=StudyRole.CRA,
            study_site=OuterRef("pk"),
            start_date__gt=today - datetime.timedelta(days=CRA_CHANGE_WINDOW_DAYS),
        ).filter(Exists(earlier))
    )


# --- dashboard --------------------------------------------------------------------------------


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """One dashboard per persona, chosen by the organisation's kind and the user's roles."""
    membership = membership_of(request.user)
    if membership is None:
        return render(request, "trialhub/dashboard_no_org.html")
    kind = membership.organization.kind
    if kind == OrganizationKind.SPONSOR:
        return render(request, "trialhub/dashboard_sponsor.html", _sponsor_dashboard(request))
    if kind == OrganizationKind.CRO:
        return render(request, "trialhub/dashboard_cro.html", _cro_dashboard(request))
    return render(request, "trialhub/dashboard_site.html", _site_dashboard(request))


def _sponsor_dashboard(request: HttpRequest) -> dict:
    studies = paginate(
        request,
        studies_for_user(request.user)
        .annotate(site_targets=Coalesce(Sum("study_sites__enrolment_target"), 0))
        .prefetch_related(
            Prefetch(
                "engagements", queryset=Engagement.objects.select_related("cro").order_by("cro")
            )
        )
        .order_by("code"),
        25,
    )
    counts = (
        study_sites_for_user(request.user)
        .filter(study__in=[study.id for study in studies])
        .order_by()
        .values_list("study_id", "status")
        .annotate(count=Count("id"))
    )
    by_study: dict[int, dict[str, int]] = {}
    for study_id, status, count in counts:
        by_study.setdefault(study_id, {})[status] = count
    labels = dict(StudySite._meta.get_field("status").choices)
    for study in studies:
        study.status_counts = [
            (status, labels[status], by_study.get(study.id, {}).get(status, 0))
            for status in labels
            if by_study.get(study.id, {}).get(status)
        ]
        study.site_count = sum(by_study.get(study.id, {}).values())
        study.target_percent = (
            min(100, round(100 * study.site_targets / study.enrolment_target))
            if study.enrolment_target
            else 0
        )
    return {"studies": studies}


def _cro_dashboard(request: HttpRequest) -> dict:
    user = request.user
    membership = membership_of(user)
    my_roles = set(RoleAssignment.objects.active().filter(user=user).values_list("role", flat=True))
    is_manager = membership.is_org_admin or StudyRole.CRO_PM in my_roles
    context: dict = {"is_manager": is_manager, "is_cra": StudyRole.CRA in my_roles}
    if is_manager:
        context["studies"] = paginate(
            request,
            studies_for_user(user)
            .annotate(
                site_count=_count(StudySite.objects.filter(study=OuterRef("pk"))),
                uncovered_count=_count(
                    StudySite.objects.filter(study=OuterRef("pk")).filter(~_active_cra_exists())
                ),
            )
            .order_by("code"),
            25,
            "studies_page",
        )
        context["uncovered"] = paginate(
            request,
            study_sites_for_user(user)
            .filter(~_active_cra_exists())
            .order_by("study__code", "site__name"),
            25,
            "uncovered_page",
        )
        context["cra_changes"] = _recent_cra_changes(user)
    if context["is_cra"] or not is_manager:
        my_sites = paginate(
            request,
            role_assignments_for_user(user)
            .active()
            .filter(user=user, role=StudyRole.CRA)
            .select_related("study__sponsor")
            .order_by("study__code", "study_site__site__name"),
            25,
            "sites_page",
        )
        _annotate_milestones(assignment.study_site for assignment in my_sites)
        context["my_sites"] = my_sites
    return context


def _recent_cra_changes(user, limit: int = 20) -> list[dict]:
    """CRA assignments started or ended in the last 90 days, as dated events, newest first."""
    today = timezone.localdate()
    since = today - datetime.timedelta(days=RECENT_CRA_CHANGE_DAYS)
    assignments = (
        role_assignments_for_user(user)
        .filter(role=StudyRole.CRA)
        .filter(
            Q(start_date__gte=since, start_date__lte=today)
            | Q(end_date__gte=since, end_date__lte=today)
        )
        .annotate(last_event=Greatest("start_date", Coalesce("end_date", "start_date")))
        .order_by("-last_event", "-id")[:limit]
    )
    events = []
    for assignment in assignments:
        if since <= assignment.start_date <= today:
            events.append(
                {
                    "on": assignment.start_date,
                    "kind": "started",
                    "assignment": assignment,
                    "by": assignment.created_by,
                }
            )
        if assignment.end_date and since <= assignment.end_date <= today:
            events.append(
                {
                    "on": assignment.end_date,
                    "kind": "ended",
                    "assignment": assignment,
                    "by": assignment.ended_by,
                    "reason": assignment.end_reason,
                }
            )
    events.sort(key=lambda event: (event["on"], event["kind"] == "ended"), reverse=True)
    return events[:limit]


def _site_dashboard(request: HttpRequest) -> dict:
    study_sites = paginate(
        request,
        study_sites_for_user(request.user).order_by("study__sponsor__name", "study__code"),
        25,
    )
    _annotate_milestones(study_sites)
    return {"study_sites": study_sites}


# --- studies ----------------------------------------------------------------------------------


@login_required
def study_list(request: HttpRequest) -> HttpResponse:
    form = StudyFilterForm(request.GET or None)
    studies = studies_for_user(request.user).order_by("code")
    if form.is_bound and form.is_valid():
        if query := form.cleaned_data["q"].strip():
            studies = studies.filter(Q(code__icontains=query) | Q(title__icontains=query))
        if status := form.cleaned_data["status"]:
            studies = studies.filter(status=status)
    filtered = form.is_bound and any(request.GET.get(key) for key in ("q", "status"))
    return render(
        request,
        "trialhub/study_list.html",
        {"form": form, "studies": paginate(request, studies, 25), "filtered": filtered},
    )


@login_required
def study_detail(request: HttpRequest, study_id: int) -> HttpResponse:
    user = request.user
    study = study_for_user(user, study_id)
    study_sites = paginate(request, study_sites_for_user(user, study).order_by("site__name"), 25)
    team = (
        role_assignments_for_user(user)
        .active()
        .filter(study=study)
        .order_by("user__last_name", "user__first_name", "user__username")
    )
    role_order = {role: index for index, role in enumerate(StudyRole.values)}
    groups: dict[str, list[RoleAssignment]] = {}
    for assignment in sorted(team, key=lambda item: role_order[item.role]):
        groups.setdefault(assignment.get_role_display(), []).append(assignment)
    return render(
        request,
        "trialhub/study_detail.html",
        {
            "study": study,
            "study_sites": study_sites,
            "editable_ids": study_site_ids_with_permission(user, CHANGE_STUDY_SITE, study_sites),
            "engagements": study.engagements.select_related("cro").order_by("cro__name"),
            "team": list(groups.items()),
            "may_assign": bool(roles_assignable_by(user, study)),
            "site_targets": study_sites_for_user(user, study)
            .order_by()
            .aggregate(total=Coalesce(Sum("enrolment_target"), 0))["total"],
        },
    )


# --- responsibility matrix --------------------------------------------------------------------


@login_required
def study_matrix(request: HttpRequest, study_id: int) -> HttpResponse:
    """Read-only grid for everyone who sees the study; one form for the sponsor lead."""
    study = study_for_user(request.user, study_id)
    can_edit = has_study_permission(request.user, EDIT_MATRIX, study)
    matrix = responsibility_matrix(study)
    form_kwargs = {"parties": matrix["parties"], "entries": matrix["entries"]}
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied("Only the sponsor lead can change the responsibility matrix.")
        form = MatrixForm(request.POST, **form_kwargs)
        if form.is_valid():
            try:
                revision = responsibility_matrix_set(
                    study=study,
                    entries=form.entries(),
                    actor=request.user,
                    note=form.cleaned_data["note"],
                )
            except ValidationError as error:
                form.add_service_errors(error)
            else:
                if revision is None:
                    messages.info(request, "No changes.")
                else:
                    changed = revision.changes.count()
                    cells = "cell" if changed == 1 else "cells"
                    messages.success(request, f"Matrix saved ({changed} {cells} changed).")
                return redirect("study-matrix", study_id=study.id)
    else:
        form = MatrixForm(**form_kwargs)
    return render(
        request,
        "trialhub/study_matrix.html",
        {
            "study": study,
            "form": form,
            "rows": form.rows(),
            "can_edit": can_edit,
            "revisions": paginate(request, matrix_revisions(study), 10),
        },
        status=400 if form.is_bound else 200,
    )


# --- role assignments -------------------------------------------------------------------------


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
    people = users_for_user(user).filter(organizations) if organizations else None
    return RoleAssignmentForm(
        data,
        roles=roles,
        people=people if people is not None else users_for_user(user).none(),
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
        .annotate(cra_changes_12m=_cra_changes_12m(today), has_active_cra=_active_cra_exists())
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
