"""HTML pages of communications: the prioritised inbox (every user), the approvals queue and
the sent messages with their delivery progress (sponsor and CRO people).

Same rules as ``trialhub.views``: objects come through the ``comms.selectors`` helpers (404
when out of reach), writes through ``comms.services`` (403 only for "visible but not
allowed"). htmx enhances plain forms: without JavaScript every action is a POST and a
redirect; with it, the acknowledged row is swapped in place and the header counts follow
out of band.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from comms.forms import STATE_LABELS, ApproveForm, InboxFilterForm, RejectForm
from comms.models import (
    ACK_TIERS,
    PIN_NONE,
    Delivery,
    DeliveryKind,
    DeliveryState,
    Message,
    MessageStatus,
)
from comms.permissions import SENDER_ORGANIZATION_KINDS, can_endorse
from comms.rendering import render_placeholders
from comms.selectors import (
    INBOX_STATES,
    audience_reach_counts,
    endorsement_requests_for_user,
    inbox_digest_lines,
    inbox_for_user,
    inbox_item_for_user,
    message_for_user,
    message_progress,
    message_site_progress,
    messages_for_user,
    pending_approvals_for_user,
)
from comms.services import (
    delivery_acknowledge,
    delivery_mark_read,
    message_approve,
    message_endorse,
    message_reject,
)
from sites.models import StudySite
from trialhub.forms import add_service_errors
from trialhub.models import Membership
from trialhub.permissions import membership_of
from trialhub.selectors import studies_for_user
from trialhub.views.common import paginate

INBOX_PER_PAGE = 25
APPROVALS_PER_PAGE = 25
SENT_PER_PAGE = 25
ENDORSEMENT_REQUESTS_SHOWN = 50
# How a reader names a delivery state (the inbox's filter vocabulary).
STATE_NAMES = {state: STATE_LABELS[name] for name, state in INBOX_STATES.items()}
ROLE_WORDS = {"site_coordinator": "coordinators", "principal_investigator": "investigators"}
AUDIENCE_SITES_SHOWN = 4


def _sender_membership(user) -> Membership:
    """Sponsor and CRO people only: a site person (or someone without an organisation) gets
    the same 404 as for a page that does not exist."""
    membership = membership_of(user)
    if membership is None or membership.organization.kind not in SENDER_ORGANIZATION_KINDS:
        raise Http404("Only sponsor and CRO people have this page.")
    return membership


def _forbidden(request: HttpRequest, error: PermissionDenied) -> HttpResponse:
    return render(request, "comms/forbidden.html", {"reason": str(error)}, status=403)


def _next_url(request: HttpRequest, default: str) -> str:
    """Where to go back to after a POST: the form's ``next`` when it is on this site."""
    candidate = request.POST.get("next") or request.GET.get("next")
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


# --- inbox -----------------------------------------------------------------------------------


def _present(items: Iterable[Delivery], now: datetime.datetime, lines: dict | None = None) -> None:
    """What the inbox templates show of each item, set on the item: its title (placeholders
    filled for the recipient's site), pinned/unread/overdue flags and a digest's lines."""
    for item in items:
        message = item.message
        item.site_name = item.study_site.site.name if item.study_site_id else ""
        item.pinned = getattr(item, "pin_rank", PIN_NONE) != PIN_NONE
        item.unread = item.state == DeliveryState.DELIVERED
        item.state_label = STATE_NAMES.get(item.state, item.get_state_display())
        item.requires_ack = item.kind == DeliveryKind.MESSAGE and message.requires_ack
        # The delivery's own due time: later than the message's if quiet hours held it back.
        item.overdue = bool(
            item.requires_ack
            and item.state != DeliveryState.ACKNOWLEDGED
            and item.ack_due_at
            and item.ack_due_at < now
        )
        item.tier = message.tier if message else None
        if item.kind == DeliveryKind.DIGEST:
            count = item.digest.lines_count
            item.title = f"Digest · {count} update{'s' if count != 1 else ''}"
            item.lines = (lines or {}).get(item.digest_id, [])
        else:
            subject = render_placeholders(message.subject, site_name=item.site_name)
            if item.kind == DeliveryKind.ESCALATION:
                item.title = f"Not acknowledged at {item.site_name or 'a site'}: {subject}"
            else:
                item.title = subject


@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    """The user's inbox across every sponsor and study, pinned items first (PRODUCT.md)."""
    studies = studies_for_user(request.user).order_by("code")
    form = InboxFilterForm(request.GET or None, studies=studies)
    filters = form.filters() if form.is_bound else {}
    items = paginate(request, inbox_for_user(user=request.user, filters=filters), INBOX_PER_PAGE)
    _present(items, timezone.now(), inbox_digest_lines(items))
    return render(
        request,
        "comms/inbox.html",
        {
            "form": form,
            "items": items,
            "pinned": [item for item in items if item.pinned],
            "others": [item for item in items if not item.pinned],
            "filtered": any(value is not None for value in filters.values()),
            "next_url": request.get_full_path(),
        },
    )


@login_required
def inbox_item(request: HttpRequest, item_id: int) -> HttpResponse:
    """One inbox item in full; opening it marks it read (a digest: its lines too)."""
    item = inbox_item_for_user(request.user, item_id)
    delivery_mark_read(delivery=item, actor=request.user)
    now = timezone.now()
    _present([item], now, inbox_digest_lines([item]))
    message = item.message
    membership = membership_of(request.user)
    return render(
        request,
        "comms/inbox_item.html",
        {
            "item": item,
            "message": message,
            "body": render_placeholders(message.body, site_name=item.site_name) if message else "",
            "sender_page": bool(
                message and membership and membership.organization.kind in SENDER_ORGANIZATION_KINDS
            ),
            "next_url": request.get_full_path(),
        },
    )


@login_required
def inbox_item_row(request: HttpRequest, item_id: int) -> HttpResponse:
    """htmx: a digest row opened in place; reading it marks it read, and the header counts
    follow out of band. Without htmx, the item's page."""
    if not request.htmx:
        return redirect("inbox-item", item_id=item_id)
    item = inbox_item_for_user(request.user, item_id)
    delivery_mark_read(delivery=item, actor=request.user)
    item = inbox_item_for_user(request.user, item_id)  # its pin rank after reading
    _present([item], timezone.now(), inbox_digest_lines([item]))
    return render(
        request,
        "comms/_inbox_row_response.html",
        {"item": item, "expanded": True, "next_url": _next_url(request, reverse("inbox"))},
    )


@login_required
@require_POST
def inbox_acknowledge(request: HttpRequest, item_id: int) -> HttpResponse:
    """Acknowledge a key or critical message in one click. htmx gets the item's row (or the
    acknowledgement box of the item's page, ``fragment=detail``) and the header counts out of
    band; a plain form post goes back where it came from."""
    item = inbox_item_for_user(request.user, item_id)
    next_url = _next_url(request, reverse("inbox"))
    error = None
    try:
        delivery_acknowledge(delivery=item, actor=request.user)
    except ValidationError as exc:
        error = " ".join(exc.messages)
    if not request.htmx:
        if error:
            messages.error(request, error)
        else:
            messages.success(request, "Acknowledged.")
        return redirect(next_url)
    item = inbox_item_for_user(request.user, item_id)
    _present([item], timezone.now(), inbox_digest_lines([item]))
    template = (
        "comms/_ack_box_response.html"
        if request.POST.get("fragment") == "detail"
        else "comms/_inbox_row_response.html"
    )
    # 200 even with an error: htmx swaps only successful responses, and the error is shown
    # in the swapped fragment.
    return render(request, template, {"item": item, "ack_error": error, "next_url": next_url})


# --- approvals -------------------------------------------------------------------------------


def _study_site_names(messages_on_page: Iterable[Message]) -> dict[int, str]:
    """Site names of the study-sites named by the audiences on a page; one query, or none."""
    ids = {
        study_site_id
        for message in messages_on_page
        if isinstance(message.audience, dict)
        for study_site_id in message.audience.get("study_sites", [])
    }
    if not ids:
        return {}
    return dict(StudySite.objects.filter(id__in=ids).values_list("id", "site__name"))


def audience_summary(audience: dict, site_names: dict[int, str]) -> str:
    """An audience in words: "All sites · coordinators and investigators"."""
    if not isinstance(audience, dict):
        return "—"
    if audience.get("all_sites"):
        where = "All sites"
    elif "study_sites" in audience:
        names = sorted(
            site_names.get(item, f"study-site {item}") for item in audience["study_sites"]
        )
        where = ", ".join(names[:AUDIENCE_SITES_SHOWN])
        if len(names) > AUDIENCE_SITES_SHOWN:
            where += f" and {len(names) - AUDIENCE_SITES_SHOWN} more"
    elif "countries" in audience:
        where = f"Sites in {', '.join(audience['countries'])}"
    else:
        where = "—"
    roles = audience.get("roles") or list(ROLE_WORDS)
    who = " and ".join(ROLE_WORDS.get(role, role) for role in roles)
    return f"{where} · {who}"


def _approvals_page(
    request: HttpRequest, *, bound: tuple[int, str, object] | None = None, status: int = 200
) -> HttpResponse:
    user = request.user
    queue = paginate(request, pending_approvals_for_user(user), APPROVALS_PER_PAGE)
    reach = audience_reach_counts(messages=queue, on=timezone.localdate())
    endorsements = list(endorsement_requests_for_user(user)[:ENDORSEMENT_REQUESTS_SHOWN])
    site_names = _study_site_names([*queue, *endorsements])
    stray_errors: list[str] = []
    if bound and bound[0] not in {message.id for message in queue}:
        stray_errors = [error for errors in bound[2].errors.values() for error in errors]
    for message in queue:
        message.reach = reach[message.id]
        message.audience_text = audience_summary(message.audience, site_names)
        message.approve_form = ApproveForm(prefix=f"approve-{message.id}")
        message.reject_form = RejectForm(prefix=f"reject-{message.id}")
        if bound and bound[0] == message.id:
            setattr(message, f"{bound[1]}_form", bound[2])
    for message in endorsements:
        message.audience_text = audience_summary(message.audience, site_names)
    return render(
        request,
        "comms/approvals.html",
        {"queue": queue, "endorsements": endorsements, "stray_errors": stray_errors},
        status=status,
    )


@login_required
def approvals(request: HttpRequest) -> HttpResponse:
    """Messages waiting for the user's decision (the Accountable party's approver)."""
    _sender_membership(request.user)
    return _approvals_page(request)


DECISIONS = {"approve": ApproveForm, "reject": RejectForm}


@login_required
@require_POST
def message_decide(request: HttpRequest, message_id: int, decision: str) -> HttpResponse:
    """Approve (reason optional) or reject (reason required) a message pending approval."""
    _sender_membership(request.user)
    message = message_for_user(request.user, message_id)
    form = DECISIONS[decision](request.POST, prefix=f"{decision}-{message.id}")
    if form.is_valid():
        reason = form.cleaned_data["reason"]
        try:
            if decision == "approve":
                message_approve(message=message, actor=request.user, reason=reason)
            else:
                message_reject(message=message, actor=request.user, reason=reason)
        except PermissionDenied as error:
            return _forbidden(request, error)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            done = "Approved and sent" if decision == "approve" else "Rejected"
            messages.success(request, f"{done}: {message.subject}")
            return redirect("approvals")
    return _approvals_page(request, bound=(message.id, decision, form), status=400)


# --- sent messages ---------------------------------------------------------------------------


@login_required
def messages_sent(request: HttpRequest) -> HttpResponse:
    """The organisation's messages, newest first, each with its delivery progress (one
    aggregate query for the page)."""
    membership = _sender_membership(request.user)
    sent = paginate(
        request,
        messages_for_user(request.user)
        .filter(sender_organization=membership.organization)
        .order_by("-created_at", "-id"),
        SENT_PER_PAGE,
    )
    progress = message_progress(user=request.user, messages=sent)
    for message in sent:
        message.progress = progress[message.id]
    return render(request, "comms/messages_sent.html", {"sent": sent})


def _message_page(
    request: HttpRequest, message: Message, *, endorse_errors=(), status: int = 200
) -> HttpResponse:
    user = request.user
    now = timezone.now()
    may_endorse = (
        message.tier in ACK_TIERS
        and message.endorsed_by_id is None
        and message.status != MessageStatus.REJECTED
        and can_endorse(user, message, timezone.localdate(now))
    )
    return render(
        request,
        "comms/message_detail.html",
        {
            "message": message,
            "progress": message_progress(user=user, messages=[message])[message.id],
            "site_progress": message_site_progress(user=user, message=message, now=now),
            "decisions": message.decisions.select_related("decided_by"),
            "audience_text": audience_summary(message.audience, _study_site_names([message])),
            "may_endorse": may_endorse,
            "endorse_errors": endorse_errors,
            "overdue": bool(
                message.requires_ack
                and message.status == MessageStatus.SENT
                and message.ack_due_at
                and message.ack_due_at < now
            ),
        },
        status=status,
    )


@login_required
def message_detail(request: HttpRequest, message_id: int) -> HttpResponse:
    """A message with its progress, approval decisions and acknowledgement per site."""
    _sender_membership(request.user)
    return _message_page(request, message_for_user(request.user, message_id))


@login_required
@require_POST
def message_endorse_view(request: HttpRequest, message_id: int) -> HttpResponse:
    """The sponsor lead co-signs a key or critical message."""
    _sender_membership(request.user)
    message = message_for_user(request.user, message_id)
    try:
        message_endorse(message=message, actor=request.user)
    except PermissionDenied as error:
        return _forbidden(request, error)
    except ValidationError as error:
        return _message_page(request, message, endorse_errors=error.messages, status=400)
    messages.success(request, "Endorsed: sites see the message as co-signed by the sponsor.")
    return redirect("message-detail", message_id=message.id)
