"""Sponsor–CRO coordination pages: every status update and meeting of a study, the forms of the
study page's Coordination section, and marking an action item done (plain POST or htmx).

Studies and action items are resolved through the coordination selectors, so a site person or
another tenant gets 404; a reader who may not write gets 403.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from trialhub.forms import (
    ActionItemFormSet,
    MeetingForm,
    StatusUpdateForm,
    add_service_errors,
)
from trialhub.models import Study
from trialhub.permissions import WRITE_COORDINATION, coordination_capabilities
from trialhub.selectors import (
    action_item_for_user,
    action_item_owner_candidates,
    coordination_study_for_user,
    meetings_for_study,
    status_updates_for_study,
)
from trialhub.services import action_item_set_done, meeting_create, status_update_create
from trialhub.views.common import paginate
from trialhub.views.studies import study_detail_page


def _capabilities_or_403(request: HttpRequest, study: Study, *, write: bool) -> frozenset[str]:
    capabilities = coordination_capabilities(request.user, study)
    if write and WRITE_COORDINATION not in capabilities:
        raise PermissionDenied("Only the sponsor lead and the CRO project manager write here.")
    return capabilities


def _back_to_study(study: Study, anchor: str) -> HttpResponse:
    return redirect(f"{reverse('study-detail', args=[study.id])}#{anchor}")


@login_required
@require_http_methods(["GET", "POST"])
def study_status_updates(request: HttpRequest, study_id: int) -> HttpResponse:
    """GET: every status update of the study. POST: the study page's status update form."""
    study = coordination_study_for_user(request.user, study_id)
    capabilities = _capabilities_or_403(request, study, write=request.method == "POST")
    if request.method == "GET":
        updates = paginate(request, status_updates_for_study(request.user, study), 20)
        return render(
            request,
            "trialhub/status_updates.html",
            {
                "study": study,
                "status_updates": updates,
                "may_write": WRITE_COORDINATION in capabilities,
            },
        )
    form = StatusUpdateForm(request.POST, prefix="status")
    if form.is_valid():
        try:
            status_update_create(study=study, actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, "Status update posted.")
            return _back_to_study(study, "status-updates")
    return study_detail_page(request, study, coordination_forms={"status_form": form}, status=400)


@login_required
@require_http_methods(["GET", "POST"])
def study_meetings(request: HttpRequest, study_id: int) -> HttpResponse:
    """GET: the study's meeting log. POST: the study page's meeting form with its action items."""
    study = coordination_study_for_user(request.user, study_id)
    capabilities = _capabilities_or_403(request, study, write=request.method == "POST")
    if request.method == "GET":
        meetings = paginate(request, meetings_for_study(request.user, study), 10)
        return render(
            request,
            "trialhub/meetings.html",
            {
                "study": study,
                "meetings": meetings,
                "may_write": WRITE_COORDINATION in capabilities,
            },
        )
    form = MeetingForm(request.POST, prefix="meeting")
    formset = ActionItemFormSet(
        request.POST,
        prefix="items",
        form_kwargs={"owners": action_item_owner_candidates(study)},
    )
    if form.is_valid() and formset.is_valid():
        # Untouched extra rows are left out; remember which row each item came from.
        rows = [row for row in formset.forms if row.has_changed()]
        try:
            meeting_create(
                study=study,
                actor=request.user,
                action_items=[row.cleaned_data for row in rows],
                **form.cleaned_data,
            )
        except ValidationError as error:
            _add_meeting_errors(form, rows, error)
        else:
            messages.success(request, "Meeting logged.")
            return _back_to_study(study, "meetings")
    forms = {"meeting_form": form, "item_formset": formset}
    return study_detail_page(request, study, coordination_forms=forms, status=400)


def _add_meeting_errors(form: MeetingForm, rows: list, error: ValidationError) -> None:
    """The service's errors: ``action_items.<index>.<field>`` on that row, the rest on the
    meeting form."""
    meeting_errors = {}
    for key, messages_ in error.message_dict.items():
        parts = key.split(".")
        if len(parts) == 3 and parts[0] == "action_items" and parts[1].isdigit():
            row = rows[int(parts[1])]
            row.add_error(parts[2] if parts[2] in row.fields else None, messages_)
        else:
            meeting_errors[key] = messages_
    if meeting_errors:
        add_service_errors(form, ValidationError(meeting_errors))
    elif not form.errors:
        form.add_error(None, "Some action items need attention.")


@login_required
@require_POST
def action_item_done(request: HttpRequest, item_id: int) -> HttpResponse:
    """Mark an action item done or open again: ``done`` checked or not. With htmx the item's
    row comes back; without JavaScript the browser returns to ``next`` (the page it was on)."""
    item = action_item_for_user(request.user, item_id)
    done = request.POST.get("done", "").lower() in {"1", "true", "on", "yes"}
    item = action_item_set_done(action_item=item, actor=request.user, done=done)
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = f"{reverse('study-detail', args=[item.meeting.study_id])}#meetings"
    if request.htmx:
        capabilities = coordination_capabilities(request.user, item.meeting.study)
        return render(
            request,
            "trialhub/_action_item.html",
            {"item": item, "may_write": WRITE_COORDINATION in capabilities, "next_url": next_url},
        )
    messages.success(request, f"Action item {'done' if item.done else 'open again'}.")
    return redirect(next_url)
