"""Writing to sites: the compose page with its live routing preview (the templates pages are
``comms.views_templates``).

Sponsor and CRO people only: anyone else gets 404, like a study out of reach. Studies and
templates come through the selectors (404 when out of reach); writes go through the services,
whose ``PermissionDenied`` is a 403 and whose ``ValidationError``s go back on the form (400).
htmx refreshes the preview as the form changes; without JavaScript the "Preview" button does
the same with a full page.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from comms.forms_compose import MULTI_VALUE_FIELDS, ComposeForm, add_compose_errors
from comms.models import Message, MessageStatus, MessageTemplate, Tier
from comms.permissions import SENDER_ORGANIZATION_KINDS
from comms.selectors import (
    approved_templates_for_compose,
    audience_reach,
    compose_studies_for_user,
    compose_study_sites,
)
from comms.services import audience_validate, message_draft_create, message_send
from comms.services.drafts import message_wording
from comms.services.sending import (
    ROUTE_APPROVAL,
    RoutingPreview,
    message_routing_preview,
    send_now_daily_limit,
)
from comms.services.templates import template_needs_due_date
from trialhub.models import Area, Membership, OrganizationKind, Raci, Study
from trialhub.permissions import membership_of
from trialhub.selectors import study_for_user


def sender_membership(user) -> Membership:
    """Sponsor and CRO people only; a site person gets the 404 of a page that is not theirs."""
    membership = membership_of(user)
    if membership is None or membership.organization.kind not in SENDER_ORGANIZATION_KINDS:
        raise Http404("Only sponsor and CRO people write to sites.")
    return membership


# --- compose ---------------------------------------------------------------------------------


def _compose_study(request: HttpRequest, raw_study_id: str | None):
    """The study written to (``?study=`` or the form's; default the first one the user
    writes on) and the studies offered: 404 when out of reach, 403 when the user sees the
    study but does not write on it, None when they write on no study at all."""
    sender_membership(request.user)
    studies = compose_studies_for_user(request.user)
    if not raw_study_id:
        return studies.first(), studies
    study = study_for_user(request.user, raw_study_id)
    if not studies.filter(pk=study.pk).exists():
        raise PermissionDenied("You read this study's messages but do not write to its sites.")
    return study, studies


def _compose_form(
    request: HttpRequest, study: Study, studies, *, study_sites=None, **kwargs
) -> ComposeForm:
    membership = membership_of(request.user)
    return ComposeForm(
        studies=studies,
        study_sites=compose_study_sites(study) if study_sites is None else study_sites,
        templates=approved_templates_for_compose(request.user, study),
        can_request_endorsement=membership.organization.kind == OrganizationKind.CRO,
        **kwargs,
    )


def _initial(request: HttpRequest, form: ComposeForm, study: Study) -> dict:
    """A GET's fields as the form's starting values; ``?template=`` fills in its category
    and wording (the "start from template" choice, with or without JavaScript)."""
    initial: dict = {
        name: field.initial for name, field in form.fields.items() if field.initial is not None
    }
    initial["study"] = study.pk
    for name in form.fields:
        if name in request.GET and name != "study":
            values = request.GET.getlist(name)
            initial[name] = values if name in MULTI_VALUE_FIELDS else values[-1]
    template_id = request.GET.get("template", "")
    template = (
        form.fields["template"].queryset.filter(pk=template_id).first()
        if template_id.isdigit()
        else None
    )
    initial.pop("template", None)
    if template is not None:
        initial.update(
            template=template.pk,
            category=template.category,
            subject=template.subject,
            body=template.body,
        )
    return initial


def _as_data(initial: dict) -> QueryDict:
    data = QueryDict(mutable=True)
    for name, value in initial.items():
        data.setlist(name, [str(item) for item in value] if isinstance(value, list) else [value])
    return data


@dataclass
class ComposePreview:
    """What the compose page tells before sending: reach today, routing, delivery."""

    category: str = ""
    people: int | None = None
    study_sites: int | None = None
    audience_error: str = ""
    routing: RoutingPreview | None = None
    template: MessageTemplate | None = None
    # Why a chosen template does not carry the message: "due_date" (none given yet) or
    # "wording" (changed, or the template changed since); empty when it does or none is chosen.
    template_note: str = ""
    delivery: str = ""
    area_label: str = ""
    sender_code_label: str = ""


DELIVERY_TEXT = {
    Tier.CRITICAL: "Critical: delivered at once, in-app and by email, even during quiet hours; "
    "acknowledgement required.",
    Tier.KEY: "Key: delivered at once (after a site's quiet hours), in-app and by email; "
    "acknowledgement required.",
    Tier.ROUTINE: "Routine: batched into each recipient's next digest.",
    Tier.INFO: "Info: in each recipient's next digest, never on its own.",
}


def compose_preview(user, study: Study, form: ComposeForm) -> ComposePreview:
    """The preview of a bound compose form, as far as its fields allow; writes nothing."""
    form.is_valid()
    cleaned = form.cleaned_data
    template = cleaned.get("template")
    preview = ComposePreview(template=template)
    audience = form.audience()
    if audience is not None:
        try:
            audience = audience_validate(study=study, audience=audience)
        except ValidationError as error:
            preview.audience_error = " ".join(error.messages)
        else:
            preview.people, preview.study_sites = audience_reach(
                study_id=study.id, audience=audience, on=timezone.localdate()
            )
    preview.category = template.category if template else cleaned.get("category", "")
    if not preview.category:
        return preview
    subject, body = message_wording(
        study=study,
        subject=cleaned.get("subject", ""),
        body=cleaned.get("body", ""),
        template=template,
        due_date=cleaned.get("due_date"),
    )
    routing = message_routing_preview(
        actor=user,
        study=study,
        category=preview.category,
        tier=cleaned.get("tier") or None,
        template=template,
        subject=subject,
        body=body,
    )
    preview.routing = routing
    preview.area_label = Area(routing.area).label.lower()
    preview.sender_code_label = Raci(routing.sender_code).label if routing.sender_code else ""
    if template is not None and routing.route == ROUTE_APPROVAL:
        missing_date = cleaned.get("due_date") is None and template_needs_due_date(template)
        preview.template_note = "due_date" if missing_date else "wording"
    preview.delivery = DELIVERY_TEXT[routing.tier]
    if routing.tier == Tier.ROUTINE and cleaned.get("send_now"):
        limit = send_now_daily_limit(study.id)
        preview.delivery = (
            f"Routine, send now: on its own, up to {limit} per site a day on this study; "
            "beyond that in the next digest."
        )
    return preview


def _compose_page(request, *, study, studies, form, preview, status=200) -> HttpResponse:
    return render(
        request,
        "comms/compose.html",
        {"study": study, "studies": studies, "form": form, "preview": preview},
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def compose(request: HttpRequest) -> HttpResponse:
    """GET: the compose form (``?study=``, ``?template=`` to start from a template).
    POST ``action``: ``preview`` (the page again with its preview), ``draft`` (save a draft)
    or ``send`` (save and send in one transaction: a refused send keeps nothing)."""
    source = request.POST if request.method == "POST" else request.GET
    study, studies = _compose_study(request, source.get("study"))
    if study is None:
        return render(request, "comms/compose_none.html")
    if request.method == "GET":
        study_sites = compose_study_sites(study)
        form = _compose_form(request, study, studies, study_sites=study_sites)
        form.initial = _initial(request, form, study)
        # The preview of what the page starts with, read from a bound copy of the form.
        bound = _compose_form(
            request, study, studies, study_sites=study_sites, data=_as_data(form.initial)
        )
        preview = compose_preview(request.user, study, bound)
        return _compose_page(request, study=study, studies=studies, form=form, preview=preview)
    form = _compose_form(request, study, studies, data=request.POST)
    action = request.POST.get("action", "send")
    if action == "preview" or not form.is_valid():
        preview = compose_preview(request.user, study, form)
        status = 200 if action == "preview" else 400
        return _compose_page(
            request, study=study, studies=studies, form=form, preview=preview, status=status
        )
    try:
        with transaction.atomic():
            message = message_draft_create(actor=request.user, study=study, **form.draft_kwargs())
            if action == "send":
                message = message_send(message=message, actor=request.user)
    except ValidationError as error:
        add_compose_errors(form, error)
        preview = compose_preview(request.user, study, form)
        return _compose_page(
            request, study=study, studies=studies, form=form, preview=preview, status=400
        )
    messages.success(request, _sent_note(request.user, message))
    return redirect("message-detail", message_id=message.id)


def _sent_note(user, message: Message) -> str:
    if message.status == MessageStatus.SENT:
        count = message.recipients_count
        return f"Sent to {count} recipient{'s' if count != 1 else ''}."
    if message.status == MessageStatus.PENDING_APPROVAL:
        routing = message_routing_preview(
            actor=user, study=message.study, category=message.category, tier=message.tier
        )
        return f"Waiting for approval by {routing.accountable_name}."
    return "Draft saved."


@login_required
@require_GET
def compose_preview_panel(request: HttpRequest) -> HttpResponse:
    """The preview panel alone, for htmx as the compose form changes."""
    study, studies = _compose_study(request, request.GET.get("study"))
    if study is None:
        raise Http404("You write to sites on no study.")
    form = _compose_form(request, study, studies, data=request.GET)
    preview = compose_preview(request.user, study, form)
    return render(request, "comms/compose_preview.html", {"study": study, "preview": preview})
