"""List pages run a number of queries that does not grow with the rows they show: each page is
measured with a little and with more data (STYLE.md "Tests")."""

from __future__ import annotations

import datetime
import itertools

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sites.models import StudySiteStatus
from sites.services import study_site_create, training_record_create
from tests.factories import member, new_study, site_org
from trialhub.models import StudyRole
from trialhub.selectors import responsibility_matrix
from trialhub.services import (
    engagement_create,
    responsibility_matrix_set,
    role_assignment_create,
    role_assignment_end,
)

pytestmark = pytest.mark.django_db
_serial = itertools.count()


def grow(world, count: int) -> None:
    """Add ``count`` of everything the pages list: sites on study A (each with a CRA history,
    a current CRA and a coordinator), studies of sponsor A that site 1 and the CRO work on,
    study-level team members, training records at site 1 and matrix revisions."""
    today = timezone.localdate()
    lead, pm = world.sponsor_lead_a, world.cro_pm
    for _ in range(count):
        n = next(_serial)
        organization, site = site_org(f"Extra site {n}", "IT", "Europe/Rome")
        study_site = study_site_create(
            study=world.study_a,
            site=site,
            enrolment_target=5,
            status=StudySiteStatus.STARTUP,
            selected_on=today - datetime.timedelta(days=200),
        )
        earlier = role_assignment_create(
            actor=pm,
            user=world.cra,
            role=StudyRole.CRA,
            study_site=study_site,
            start_date=today - datetime.timedelta(days=60),
        )
        role_assignment_end(assignment=earlier, actor=pm, reason="Handover")
        role_assignment_create(
            actor=pm, user=world.cra_2, role=StudyRole.CRA, study_site=study_site
        )
        coordinator = member(organization, f"extra_coord_{n}")
        role_assignment_create(
            actor=pm, user=coordinator, role=StudyRole.SITE_COORDINATOR, study_site=study_site
        )
        viewer = member(world.sponsor_a, f"extra_viewer_{n}")
        role_assignment_create(
            actor=lead, user=viewer, role=StudyRole.SPONSOR_VIEWER, study=world.study_a
        )

        study = new_study(world.sponsor_a, f"A-X{n:03d}", actor=world.sponsor_a_admin)
        engagement_create(study=study, cro=world.cro, actor=world.sponsor_a_admin)
        admin = world.sponsor_a_admin
        role_assignment_create(actor=admin, user=lead, role=StudyRole.SPONSOR_LEAD, study=study)
        role_assignment_create(actor=admin, user=pm, role=StudyRole.CRO_PM, study=study)
        extra_site_1 = study_site_create(study=study, site=world.site_1, enrolment_target=4)
        study_site_create(study=study, site=site, enrolment_target=3)
        role_assignment_create(
            actor=pm, user=world.cra, role=StudyRole.CRA, study_site=extra_site_1
        )
        role_assignment_create(
            actor=pm,
            user=world.site_coord_1,
            role=StudyRole.SITE_COORDINATOR,
            study_site=extra_site_1,
        )

        training_record_create(
            study_site=world.ss_a1,
            user=world.pi_1,
            kind="system",
            title=f"EDC module {n}",
            completed_on=today,
            actor=world.site_coord_1,
        )
        matrix = responsibility_matrix(world.study_a)
        flipped = "R" if n % 2 == 0 else "I"
        entries = [
            entry | {"code": flipped}
            if (entry["area"], entry["organization"]) == ("monitoring", world.cro.id)
            else entry
            for entry in matrix["entries"]
        ]
        responsibility_matrix_set(
            study=world.study_a, entries=entries, actor=lead, note=f"Revision {n}"
        )


def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as context:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(context.captured_queries)


PAGES = [
    ("sponsor dashboard", "sponsor_lead_a", lambda w: "/"),
    ("CRO PM dashboard", "cro_pm", lambda w: "/"),
    ("CRA dashboard", "cra", lambda w: "/"),
    ("site dashboard", "site_coord_1", lambda w: "/"),
    ("study list", "cro_pm", lambda w: "/studies/"),
    ("managed studies", "cro_pm", lambda w: "/assignments/"),
    ("study detail (sponsor)", "sponsor_lead_a", lambda w: f"/studies/{w.study_a.id}/"),
    ("study detail (CRA)", "cra", lambda w: f"/studies/{w.study_a.id}/"),
    ("study detail (site)", "site_coord_1", lambda w: f"/studies/{w.study_a.id}/"),
    ("matrix (editor)", "sponsor_lead_a", lambda w: f"/studies/{w.study_a.id}/matrix/"),
    ("matrix (reader)", "cra", lambda w: f"/studies/{w.study_a.id}/matrix/"),
    ("assignments (sponsor)", "sponsor_lead_a", lambda w: f"/studies/{w.study_a.id}/assignments/"),
    ("assignments (CRO)", "cro_pm", lambda w: f"/studies/{w.study_a.id}/assignments/"),
    ("site profile (coordinator)", "site_coord_1", lambda w: f"/sites/{w.site_1.id}/"),
    ("site profile (CRO)", "cro_pm", lambda w: f"/sites/{w.site_1.id}/"),
]


@pytest.mark.parametrize(("page", "persona", "url"), PAGES, ids=[page[0] for page in PAGES])
def test_query_count_does_not_grow_with_rows(world, client_as, page, persona, url):
    client = client_as(getattr(world, persona))
    grow(world, 3)
    small = count_queries(client, url(world))
    grow(world, 9)
    large = count_queries(client, url(world))
    assert large == small, f"{page}: {small} queries with 3 extra rows, {large} with 12"


def test_dashboard_without_organisation_is_cheap(world, client_as):
    assert count_queries(client_as(world.no_org_user), "/") <= 6
