"""Helpers the pages share: pagination, bulk permission checks, milestones, counting
subqueries. Reads start from the tenancy selectors; nothing here writes."""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from django.core.paginator import Page, Paginator
from django.db.models import Exists, Func, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest

from sites.models import MILESTONE_FIELDS, StudySite
from trialhub.models import RoleAssignment, StudyRole

MILESTONE_LABELS = {
    "selected_on": "Selected",
    "regulatory_approval_on": "Regulatory approval",
    "contract_signed_on": "Contract signed",
    "activated_on": "Activated (SIV)",
    "first_patient_in_on": "First patient in",
    "last_patient_in_on": "Last patient in",
    "closed_on": "Closed",
}


def paginate(request: HttpRequest, items, per_page: int, param: str = "page") -> Page:
    """A page of ``items`` chosen by the GET parameter ``param``; the page object carries what
    ``includes/pagination.html`` needs to keep the other GET parameters (filters) in its links."""
    page_obj = Paginator(items, per_page).get_page(request.GET.get(param))
    query = request.GET.copy()
    query.pop(param, None)
    page_obj.param = param
    page_obj.query_prefix = f"{query.urlencode()}&" if query else ""
    return page_obj


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


def annotate_milestones(study_sites: Iterable[StudySite]) -> None:
    for study_site in study_sites:
        study_site.next_milestone = next_milestone(study_site)
        study_site.last_milestone = last_milestone(study_site)


def active_cra_exists() -> Exists:
    return Exists(
        RoleAssignment.objects.active().filter(role=StudyRole.CRA, study_site=OuterRef("pk"))
    )


def subquery_count(rows) -> Coalesce:
    """``COUNT(*)`` of a correlated subquery (no join fan-out in the outer query)."""
    # Func, not Count: an aggregate would add a GROUP BY; this counts the whole subquery.
    counted = rows.order_by().annotate(count=Func("pk", function="COUNT")).values("count")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))
