"""The best-practices library pages: the list with its filters, contributing a note, a note's
page with the sponsor's publish form and the contributor's withdraw button.

Notes come through ``practice_note_for_user`` (404 outside reach); people who can read a note
but may not act on it get 403; every write goes through ``performance.services.practices``.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from comms.models import MessageStatus
from performance.forms_practices import PracticeFilterForm, PracticeNoteForm, PracticePublishForm
from performance.models import PracticeNote, PracticeStatus
from performance.selectors.practices import (
    practice_note_for_user,
    practice_notes_for_user,
    practice_publishable_studies,
    practice_published_studies_for_user,
    practice_sponsor_choices,
    practice_therapeutic_areas,
)
from performance.services.practices import (
    practice_note_create,
    practice_note_publish,
    practice_note_withdraw,
)
from trialhub.forms import add_service_errors
from trialhub.permissions import membership_of
from trialhub.views.common import paginate

PER_PAGE = 20


@login_required
def practice_list(request: HttpRequest) -> HttpResponse:
    """The notes the user may read, newest first, filtered by text, area and tag."""
    form = PracticeFilterForm(
        request.GET, therapeutic_areas=practice_therapeutic_areas(request.user)
    )
    filters = form.cleaned_data if form.is_valid() else {}
    notes = practice_notes_for_user(
        request.user,
        q=filters.get("q"),
        therapeutic_area=filters.get("therapeutic_area"),
        tag=filters.get("tag"),
    )
    return render(
        request,
        "performance/practices/list.html",
        {
            "form": form,
            "notes": paginate(request, notes, PER_PAGE),
            "filtered": any(filters.values()),
            "may_contribute": practice_sponsor_choices(request.user).exists(),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def practice_create(request: HttpRequest) -> HttpResponse:
    """Contribute a note to a sponsor's library (403 for people with no library to write to)."""
    sponsors = list(practice_sponsor_choices(request.user))
    if not sponsors:
        raise PermissionDenied("Sponsors, their CROs and recognised sites contribute practices.")
    form = PracticeNoteForm(request.POST or None, sponsors=sponsors)
    if request.method == "POST" and form.is_valid():
        try:
            note = practice_note_create(actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Proposed to {note.sponsor.name}'s library.")
            return redirect("practice-detail", note.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "performance/practices/form.html",
        {"form": form, "sponsors": sponsors},
        status=status,
    )


def _detail_page(
    request: HttpRequest,
    note: PracticeNote,
    *,
    publish_form: PracticePublishForm | None = None,
    status: int = 200,
) -> HttpResponse:
    publishable = list(practice_publishable_studies(request.user, note))
    published = set(note.published_studies.values_list("pk", flat=True))
    open_studies = [study for study in publishable if study.pk not in published]
    if publish_form is None and open_studies:
        publish_form = PracticePublishForm(studies=open_studies)
    membership = membership_of(request.user)
    return render(
        request,
        "performance/practices/detail.html",
        {
            "note": note,
            "published_studies": practice_published_studies_for_user(request.user, note),
            "may_publish": bool(publishable),
            "publish_form": publish_form,
            "may_withdraw": note.status == PracticeStatus.PROPOSED
            and membership.organization_id == note.author_organization_id,
        },
        status=status,
    )


@login_required
def practice_detail(request: HttpRequest, note_id: int) -> HttpResponse:
    return _detail_page(request, practice_note_for_user(request.user, note_id))


@login_required
@require_POST
def practice_publish(request: HttpRequest, note_id: int) -> HttpResponse:
    """The sponsor publishes the note to some of its studies; their sites hear of it."""
    note = practice_note_for_user(request.user, note_id)
    publishable = practice_publishable_studies(request.user, note)
    if not publishable.exists():
        raise PermissionDenied("Only the sponsor lead of a study publishes to it.")
    published = note.published_studies.values("pk")
    form = PracticePublishForm(request.POST, studies=publishable.exclude(pk__in=published))
    if form.is_valid():
        try:
            publication = practice_note_publish(
                note=note, actor=request.user, studies=form.cleaned_data["studies"]
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _publication_summary(publication.messages))
            return redirect("practice-detail", note.pk)
    return _detail_page(request, note, publish_form=form, status=400)


def _publication_summary(sent) -> str:
    parts = [
        f"{message.study.code}: "
        + (
            "in the sites' next digest"
            if message.status == MessageStatus.SENT
            else MessageStatus(message.status).label.lower()
        )
        for message in sent
    ]
    return "Published. " + "; ".join(parts) + "."


@login_required
@require_POST
def practice_withdraw(request: HttpRequest, note_id: int) -> HttpResponse:
    """The contributing organisation deletes its proposed note."""
    note = practice_note_for_user(request.user, note_id)
    try:
        practice_note_withdraw(note=note, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("practice-detail", note.pk)
    messages.success(request, f"“{note.title}” withdrawn.")
    return redirect("practice-list")
