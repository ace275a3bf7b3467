"""Study list, study detail and the responsibility matrix.

Thin views: objects are resolved only through the ``*_for_user`` selectors (404 for missing and
not-yours alike), writes go through the services, and ``PermissionDenied`` (403) is only for
what the user can see but may not change.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from performance.permissions import metric_writable_study_ids
from sites.selectors import study_sites_for_user
from trialhub.forms import (
    ActionItemFormSet,
    MatrixForm,
    MeetingForm,
    StatusUpdateForm,
    StudyFilterForm,
)
from trialhub.models import RoleAssignment, Study, StudyRole
from trialhub.permissions import (
    CHANGE_STUDY_SITE,
    EDIT_MATRIX,
    READ_COORDINATION,
    WRITE_COORDINATION,
    coordination_capabilities,
    has_study_permission,
    study_site_ids_with_permission,
)
from trialhub.selectors import (
    action_item_owner_candidates,
    matrix_revisions,
    meetings_for_study,
    responsibility_matrix,
    role_assignments_for_user,
    status_updates_for_study,
    studies_for_user,
    study_for_user,
)
from trialhub.services import responsibility_matrix_set
from trialhub.services.roles import roles_assignable_by
from trialhub.views.common import paginate

# Status updates and meetings shown on the study page; the rest are on their own pages.
LATEST_COORDINATION = 5


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
    return study_detail_page(request, study_for_user(request.user, study_id))


def study_detail_page(
    request: HttpRequest,
    study: Study,
    *,
    coordination_forms: dict | None = None,
    status: int = 200,
) -> HttpResponse:
    """The study page; ``coordination_forms`` are bound forms of the Coordination section
    after a failed submission (shown with their errors)."""
    user = request.user
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
            "may_upload_metrics": study.id in metric_writable_study_ids(user),
            "site_targets": study_sites_for_user(user, study)
            .order_by()
            .aggregate(total=Coalesce(Sum("enrolment_target"), 0))["total"],
            "coordination": _coordination_section(user, study, coordination_forms or {}),
        },
        status=status,
    )


def _coordination_section(user, study: Study, forms: dict) -> dict | None:
    """The latest status updates and meetings and, for writers, the forms to add them; None
    for whoever does not read the study's coordination (site people)."""
    capabilities = coordination_capabilities(user, study)
    if READ_COORDINATION not in capabilities:
        return None
    section = {
        "may_write": WRITE_COORDINATION in capabilities,
        "status_updates": status_updates_for_study(user, study)[:LATEST_COORDINATION],
        "meetings": meetings_for_study(user, study)[:LATEST_COORDINATION],
    }
    if section["may_write"]:
        owners = action_item_owner_candidates(study)
        section["status_form"] = forms.get("status_form") or StatusUpdateForm(prefix="status")
        section["meeting_form"] = forms.get("meeting_form") or MeetingForm(prefix="meeting")
        section["item_formset"] = forms.get("item_formset") or ActionItemFormSet(
            prefix="items", form_kwargs={"owners": owners}
        )
    return section


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
