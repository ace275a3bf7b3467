"""HTML pages of sites: the site profile (preferences, training) and the study-site editor.

Same rules as ``trialhub.views``: objects through the ``*_for_user`` selectors (404 when out of
reach), writes through ``sites.services``, 403 only for "visible but not allowed".
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from sites.forms import SitePreferencesForm, StudySiteForm, TrainingRecordForm
from sites.models import MILESTONE_FIELDS, Site
from sites.selectors import (
    own_site_for_user,
    site_for_user,
    study_site_for_user,
    study_sites_for_user,
    training_records_for_user,
)
from sites.services import (
    PREFERENCE_FIELDS,
    can_edit_site_profile,
    site_preferences_update,
    study_site_update,
    training_record_create,
)
from trialhub.forms import add_service_errors
from trialhub.permissions import (
    CHANGE_STUDY_SITE,
    RECORD_TRAINING,
    has_study_site_permission,
    study_site_ids_with_permission,
)
from trialhub.selectors import users_for_user
from trialhub.views.common import paginate


def _preferences_form(site: Site, data=None) -> SitePreferencesForm:
    initial = {field: getattr(site, field) for field in PREFERENCE_FIELDS}
    return SitePreferencesForm(data, initial=initial, prefix="prefs")


def _training_form(user, site: Site, data=None) -> TrainingRecordForm | None:
    """The add-training form, offering only the study-sites where the user records training;
    None when there is none."""
    study_sites = study_sites_for_user(user).filter(site=site).order_by("study__code")
    allowed = study_site_ids_with_permission(user, RECORD_TRAINING, study_sites)
    if not allowed:
        return None
    staff = users_for_user(user).filter(membership__organization=site.organization_id)
    return TrainingRecordForm(
        data, study_sites=study_sites.filter(id__in=allowed), staff=staff, prefix="training"
    )


def _site_page(
    request: HttpRequest,
    site: Site,
    *,
    preferences_form: SitePreferencesForm | None = None,
    training_form: TrainingRecordForm | None = None,
    status: int = 200,
) -> HttpResponse:
    user = request.user
    can_edit = can_edit_site_profile(user, site)
    return render(
        request,
        "sites/site_profile.html",
        {
            "site": site,
            "can_edit": can_edit,
            "preferences_form": preferences_form or (_preferences_form(site) if can_edit else None),
            "training_form": training_form or _training_form(user, site),
            "study_sites": paginate(
                request,
                study_sites_for_user(user).filter(site=site).order_by("study__code"),
                25,
                "studies_page",
            ),
            "training_records": paginate(request, training_records_for_user(user, site), 25),
        },
        status=status,
    )


@login_required
def site_profile(request: HttpRequest, site_id: int) -> HttpResponse:
    return _site_page(request, site_for_user(request.user, site_id))


@login_required
def own_site(request: HttpRequest) -> HttpResponse:
    """A site user's own site; 404 for sponsor and CRO people."""
    site = own_site_for_user(request.user)
    if site is None:
        raise Http404("You do not work at a site.")
    return redirect("site-profile", site_id=site.id)


@login_required
@require_POST
def site_preferences(request: HttpRequest, site_id: int) -> HttpResponse:
    site = site_for_user(request.user, site_id)
    if not can_edit_site_profile(request.user, site):
        raise PermissionDenied("Only the site's coordinators and investigators edit its profile.")
    form = _preferences_form(site, request.POST)
    if form.is_valid():
        try:
            site_preferences_update(site=site, actor=request.user, data=form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, "Preferences saved.")
            return redirect("site-profile", site_id=site.id)
    return _site_page(request, site, preferences_form=form, status=400)


@login_required
@require_POST
def training_record_add(request: HttpRequest, site_id: int) -> HttpResponse:
    site = site_for_user(request.user, site_id)
    form = _training_form(request.user, site, request.POST)
    if form is None:
        raise PermissionDenied("You may not record training at this site.")
    if form.is_valid():
        try:
            record = training_record_create(actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Training recorded: {record.title}.")
            return redirect("site-profile", site_id=site.id)
    return _site_page(request, site, training_form=form, status=400)


@login_required
def study_site_edit(request: HttpRequest, study_site_id: int) -> HttpResponse:
    """Status, enrolment target and milestones, for those with CHANGE_STUDY_SITE."""
    study_site = study_site_for_user(request.user, study_site_id)
    if not has_study_site_permission(request.user, CHANGE_STUDY_SITE, study_site):
        raise PermissionDenied("You may not update this study-site.")
    fields = ("status", "enrolment_target", *MILESTONE_FIELDS)
    initial = {field: getattr(study_site, field) for field in fields}
    form = StudySiteForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            study_site_update(study_site=study_site, actor=request.user, data=form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"{study_site.site.name} on {study_site.study.code} saved.")
            return redirect("study-detail", study_id=study_site.study_id)
    return render(
        request,
        "sites/study_site_edit.html",
        {"study_site": study_site, "study": study_site.study, "form": form},
        status=400 if form.is_bound else 200,
    )
