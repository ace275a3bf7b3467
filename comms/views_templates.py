"""Each study's message templates page: its templates by category (propose, edit, approve,
retire), the comms policy and the endorsement requests awaiting its sponsor lead; and an index
of the user's studies with their template counts.

Sponsor and CRO people only (404 for anyone else, as for a study out of reach). Templates and
messages come through the selectors, writes through the services: ``PermissionDenied`` is a
403, a ``ValidationError`` goes back on the form (400) or, for a one-button action, into the
page's messages.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from comms.forms_compose import CommsPolicyForm, TemplateForm
from comms.models import Category, MessageTemplate, TemplateStatus
from comms.permissions import can_write
from comms.selectors import (
    endorsement_requests_for_user,
    message_for_user,
    template_for_user,
    templates_for_study,
)
from comms.services import (
    message_endorse,
    message_template_approve,
    message_template_create,
    message_template_retire,
    message_template_update,
    study_comms_policy_set,
)
from comms.services.sending import send_now_daily_limit
from comms.services.templates import is_sponsor_lead
from comms.views_compose import sender_membership
from trialhub.forms import add_service_errors
from trialhub.models import Study
from trialhub.permissions import membership_of
from trialhub.selectors import studies_for_user, study_for_user
from trialhub.views.common import paginate

STUDIES_PER_PAGE = 25


@login_required
@require_GET
def templates_index(request: HttpRequest) -> HttpResponse:
    """The studies the user works on, with how many templates each has approved or waiting."""
    sender_membership(request.user)
    studies = (
        studies_for_user(request.user)
        .annotate(
            approved_count=Count(
                "message_templates", filter=Q(message_templates__status=TemplateStatus.APPROVED)
            ),
            awaiting_count=Count(
                "message_templates", filter=Q(message_templates__status=TemplateStatus.DRAFT)
            ),
        )
        .order_by("code")
    )
    page = paginate(request, studies, STUDIES_PER_PAGE)
    return render(request, "comms/templates_index.html", {"studies": page})


def _templates_study(request: HttpRequest, study_id) -> Study:
    sender_membership(request.user)
    return study_for_user(request.user, study_id)


def _study_template(request: HttpRequest, study: Study, template_id) -> MessageTemplate:
    template = template_for_user(request.user, template_id)
    if template.study_id != study.pk:
        raise Http404("No such template on this study.")
    return template


def _grouped(templates) -> list[tuple[str, list[MessageTemplate]]]:
    """Templates by category, in the categories' defined order."""
    groups: dict[str, list[MessageTemplate]] = {}
    for template in templates:
        groups.setdefault(template.category, []).append(template)
    return [(Category(slug).label, groups[slug]) for slug in Category.values if slug in groups]


def _templates_page(
    request: HttpRequest, study: Study, *, template_form=None, policy_form=None, status=200
) -> HttpResponse:
    user = request.user
    today = timezone.localdate()
    membership = membership_of(user)
    may_write = can_write(user, study.pk, today)
    is_lead = is_sponsor_lead(user, study.pk, today)
    templates = list(templates_for_study(user, study))
    for template in templates:
        template.may_edit = may_write and template.status != TemplateStatus.RETIRED
        template.may_approve = is_lead and template.status == TemplateStatus.DRAFT
        template.may_retire = template.status != TemplateStatus.RETIRED and (
            is_lead
            or may_write
            and template.status == TemplateStatus.DRAFT
            and template.organization_id == membership.organization_id
        )
    context = {
        "study": study,
        "groups": _grouped(templates),
        "may_write": may_write,
        "is_lead": is_lead,
        "template_form": template_form or TemplateForm(prefix="template"),
        "policy_form": policy_form
        or CommsPolicyForm(
            prefix="policy", initial={"send_now_daily_limit": send_now_daily_limit(study.pk)}
        ),
        "endorsements": (
            list(endorsement_requests_for_user(user).filter(study=study)) if is_lead else []
        ),
    }
    return render(request, "comms/templates.html", context, status=status)


def _back_to_templates(study: Study, anchor: str = "") -> HttpResponse:
    url = reverse("study-templates", args=[study.pk])
    return redirect(f"{url}#{anchor}" if anchor else url)


@login_required
@require_http_methods(["GET", "POST"])
def study_templates(request: HttpRequest, study_id: int) -> HttpResponse:
    """GET: the study's templates by category, the comms policy, endorsement requests.
    POST: propose a template (sponsor and CRO writers)."""
    study = _templates_study(request, study_id)
    if request.method == "GET":
        return _templates_page(request, study)
    form = TemplateForm(request.POST, prefix="template")
    if form.is_valid():
        try:
            template = message_template_create(actor=request.user, study=study, **form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Template “{template.name}” saved; it awaits approval.")
            return _back_to_templates(study, f"template-{template.pk}")
    return _templates_page(request, study, template_form=form, status=400)


@login_required
@require_http_methods(["GET", "POST"])
def template_edit(request: HttpRequest, study_id: int, template_id: int) -> HttpResponse:
    """Edit a template's wording (writers on the study). Editing an approved one makes the
    next version, awaiting approval again."""
    study = _templates_study(request, study_id)
    template = _study_template(request, study, template_id)
    if not can_write(request.user, study.pk, timezone.localdate()):
        raise PermissionDenied("Only sponsor and CRO writers on the study edit templates.")
    fields = ("category", "name", "subject", "body")
    if request.method == "GET":
        form = TemplateForm(initial={field: getattr(template, field) for field in fields})
    else:
        form = TemplateForm(request.POST)
        if form.is_valid():
            try:
                template = message_template_update(
                    template=template, actor=request.user, **form.cleaned_data
                )
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                messages.success(
                    request, f"Template “{template.name}” saved (version {template.version})."
                )
                return _back_to_templates(study, f"template-{template.pk}")
    status = 400 if form.is_bound else 200
    return render(
        request,
        "comms/templates_edit.html",
        {"study": study, "template": template, "form": form},
        status=status,
    )


def _template_action(request: HttpRequest, study_id: int, template_id: int, service, done: str):
    study = _templates_study(request, study_id)
    template = _study_template(request, study, template_id)
    try:
        template = service(template=template, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request, f"Template “{template.name}” (version {template.version}) {done}."
        )
    return _back_to_templates(study, f"template-{template.pk}")


@login_required
@require_POST
def template_approve(request: HttpRequest, study_id: int, template_id: int) -> HttpResponse:
    """The study's sponsor lead approves the template's current version."""
    return _template_action(request, study_id, template_id, message_template_approve, "approved")


@login_required
@require_POST
def template_retire(request: HttpRequest, study_id: int, template_id: int) -> HttpResponse:
    """Retire a template: nothing is written from it any more."""
    return _template_action(request, study_id, template_id, message_template_retire, "retired")


@login_required
@require_POST
def comms_policy(request: HttpRequest, study_id: int) -> HttpResponse:
    """The study's sponsor lead sets the send-now daily limit."""
    study = _templates_study(request, study_id)
    form = CommsPolicyForm(request.POST, prefix="policy")
    if form.is_valid():
        try:
            study_comms_policy_set(study=study, actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, "Comms policy saved.")
            return _back_to_templates(study, "policy")
    return _templates_page(request, study, policy_form=form, status=400)


@login_required
@require_POST
def endorsement_give(request: HttpRequest, study_id: int, message_id: int) -> HttpResponse:
    """The sponsor lead co-signs a message whose sender asked for it."""
    study = _templates_study(request, study_id)
    message = message_for_user(request.user, message_id)
    if message.study_id != study.pk:
        raise Http404("No such message on this study.")
    try:
        message_endorse(message=message, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Endorsed: “{message.subject}” is co-signed by the sponsor.")
    return _back_to_templates(study, "endorsements")
