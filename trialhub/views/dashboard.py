"""The dashboard: one page per persona, chosen by organisation kind and roles, each list read
in a fixed number of queries (annotations, prefetches, correlated counts)."""

from __future__ import annotations

import datetime

from django.contrib.auth.decorators import login_required
from django.db.models import Count, OuterRef, Prefetch, Q, Sum
from django.db.models.functions import Coalesce, Greatest
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from sites.models import StudySite, StudySiteStatus
from sites.selectors import study_sites_for_user
from trialhub.models import Engagement, OrganizationKind, RoleAssignment, StudyRole
from trialhub.permissions import membership_of
from trialhub.selectors import role_assignments_for_user, studies_for_user
from trialhub.views.common import active_cra_exists, annotate_milestones, paginate, subquery_count

RECENT_CRA_CHANGE_DAYS = 90


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
                site_count=subquery_count(StudySite.objects.filter(study=OuterRef("pk"))),
                uncovered_count=subquery_count(
                    StudySite.objects.filter(study=OuterRef("pk"))
                    .exclude(status=StudySiteStatus.CLOSED)
                    .filter(~active_cra_exists())
                ),
            )
            .order_by("code"),
            25,
            "studies_page",
        )
        context["uncovered"] = paginate(
            request,
            study_sites_for_user(user)
            .exclude(status=StudySiteStatus.CLOSED)
            .filter(~active_cra_exists())
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
        annotate_milestones(assignment.study_site for assignment in my_sites)
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
    annotate_milestones(study_sites)
    return {"study_sites": study_sites}
