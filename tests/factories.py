"""Factories and a small two-tenant world for tests, built through the services."""

from __future__ import annotations

import datetime
from types import SimpleNamespace

import factory
import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from sites.models import Site, StudySiteStatus
from sites.services import site_create, study_site_create
from trialhub.models import Membership, Organization, OrganizationKind, StudyRole
from trialhub.services import (
    engagement_create,
    role_assignment_create,
    study_create,
)

User = get_user_model()
PASSWORD = "test-pass-123"
# The people of ``build_world`` for role x endpoint tables, plus an anonymous visitor.
PERSONAS = (
    "sponsor_lead_a",
    "sponsor_viewer_a",
    "sponsor_lead_b",
    "cro_pm",
    "cro_b_pm",
    "cra",
    "site_coord_1",
    "site_coord_2",
    "no_org_user",
    "anonymous",
)


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    kind = OrganizationKind.SPONSOR
    name = factory.Sequence(lambda n: f"Organisation {n}")
    country = "DE"
    time_zone = "Europe/Berlin"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.org")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def organization(self, create, organization, **kwargs):
        if organization is not None:
            Membership.objects.create(
                user=self, organization=organization, is_org_admin=kwargs.get("admin", False)
            )
        self.save()


def status_cases(expected: dict[str, tuple[int, ...]]) -> list:
    """``pytest.param(endpoint, persona, status)`` for a table of statuses per endpoint,
    one column per persona in ``PERSONAS`` order."""
    return [
        pytest.param(endpoint, persona, status, id=f"{endpoint}-{persona}-{status}")
        for endpoint, statuses in expected.items()
        for persona, status in zip(PERSONAS, statuses, strict=True)
    ]


def member(organization: Organization, username: str, *, admin: bool = False):
    return UserFactory(username=username, organization=organization, organization__admin=admin)


def site_org(name: str, country: str, time_zone: str) -> tuple[Organization, Site]:
    organization = OrganizationFactory(
        kind=OrganizationKind.SITE, name=name, country=country, time_zone=time_zone
    )
    site = site_create(
        organization=organization,
        name=name,
        institution=f"{name} University Hospital",
        country=country,
        time_zone=time_zone,
    )
    return organization, site


def new_study(sponsor: Organization, code: str, actor=None):
    today = timezone.localdate()
    return study_create(
        sponsor=sponsor,
        code=code,
        title=f"Study {code}",
        phase="3",
        therapeutic_area="Oncology",
        enrolment_target=120,
        planned_start=today - datetime.timedelta(days=300),
        planned_end=today + datetime.timedelta(days=400),
        status="enrolling",
        actor=actor,
    )


def build_world() -> SimpleNamespace:
    """Two sponsors, a CRO engaged by both, a CRO engaged by sponsor B only, three sites.

    study_a (sponsor A): sites 1 and 2; study_b (sponsor B): sites 1 and 3.
    People hold the roles their names say; ``*_admin`` users are organisation admins.
    """
    w = SimpleNamespace()
    w.sponsor_a = OrganizationFactory(name="Sponsor A", kind=OrganizationKind.SPONSOR)
    w.sponsor_b = OrganizationFactory(name="Sponsor B", kind=OrganizationKind.SPONSOR)
    w.cro = OrganizationFactory(name="Shared CRO", kind=OrganizationKind.CRO, country="GB")
    w.cro_b = OrganizationFactory(name="B-only CRO", kind=OrganizationKind.CRO, country="FR")
    w.site_org_1, w.site_1 = site_org("Site One", "DE", "Europe/Berlin")
    w.site_org_2, w.site_2 = site_org("Site Two", "FR", "Europe/Paris")
    w.site_org_3, w.site_3 = site_org("Site Three", "ES", "Europe/Madrid")

    w.sponsor_a_admin = member(w.sponsor_a, "sponsor_a_admin", admin=True)
    w.sponsor_b_admin = member(w.sponsor_b, "sponsor_b_admin", admin=True)
    w.study_a = new_study(w.sponsor_a, "A-001", actor=w.sponsor_a_admin)
    w.study_b = new_study(w.sponsor_b, "B-001", actor=w.sponsor_b_admin)
    engagement_create(study=w.study_a, cro=w.cro, actor=w.sponsor_a_admin)
    engagement_create(study=w.study_b, cro=w.cro, actor=w.sponsor_b_admin)
    engagement_create(study=w.study_b, cro=w.cro_b, actor=w.sponsor_b_admin)

    enrolling = {"status": StudySiteStatus.ENROLLING}
    w.ss_a1 = study_site_create(study=w.study_a, site=w.site_1, enrolment_target=20, **enrolling)
    w.ss_a2 = study_site_create(study=w.study_a, site=w.site_2, enrolment_target=15, **enrolling)
    w.ss_b1 = study_site_create(study=w.study_b, site=w.site_1, enrolment_target=10, **enrolling)
    w.ss_b3 = study_site_create(study=w.study_b, site=w.site_3, enrolment_target=12, **enrolling)

    w.sponsor_lead_a = member(w.sponsor_a, "lead_a")
    w.sponsor_viewer_a = member(w.sponsor_a, "viewer_a")
    w.sponsor_lead_b = member(w.sponsor_b, "lead_b")
    w.cro_pm = member(w.cro, "cro_pm")
    w.cra = member(w.cro, "cra")
    w.cra_2 = member(w.cro, "cra_2")
    w.cro_b_pm = member(w.cro_b, "cro_b_pm")
    w.site_coord_1 = member(w.site_org_1, "coord_1")
    w.site_coord_2 = member(w.site_org_2, "coord_2")
    w.site_coord_3 = member(w.site_org_3, "coord_3")
    w.pi_1 = member(w.site_org_1, "pi_1")
    w.no_org_user = UserFactory(username="nobody")

    a, b = w.sponsor_a_admin, w.sponsor_b_admin
    assign = role_assignment_create
    assign(actor=a, user=w.sponsor_lead_a, role=StudyRole.SPONSOR_LEAD, study=w.study_a)
    assign(actor=a, user=w.sponsor_viewer_a, role=StudyRole.SPONSOR_VIEWER, study=w.study_a)
    assign(actor=b, user=w.sponsor_lead_b, role=StudyRole.SPONSOR_LEAD, study=w.study_b)
    assign(actor=a, user=w.cro_pm, role=StudyRole.CRO_PM, study=w.study_a)
    assign(actor=b, user=w.cro_pm, role=StudyRole.CRO_PM, study=w.study_b)
    assign(actor=b, user=w.cro_b_pm, role=StudyRole.CRO_PM, study=w.study_b)
    w.cra_assignment = assign(actor=w.cro_pm, user=w.cra, role=StudyRole.CRA, study_site=w.ss_a1)
    assign(actor=w.cro_pm, user=w.cra, role=StudyRole.CRA, study_site=w.ss_b1)
    coordinator = StudyRole.SITE_COORDINATOR
    assign(actor=w.cro_pm, user=w.site_coord_1, role=coordinator, study_site=w.ss_a1)
    assign(actor=w.cro_pm, user=w.site_coord_1, role=coordinator, study_site=w.ss_b1)
    assign(actor=w.cro_pm, user=w.site_coord_2, role=coordinator, study_site=w.ss_a2)
    assign(actor=w.cro_pm, user=w.site_coord_3, role=coordinator, study_site=w.ss_b3)
    assign(
        actor=w.cro_pm,
        user=w.pi_1,
        role=StudyRole.PRINCIPAL_INVESTIGATOR,
        study_site=w.ss_a1,
    )
    return w
