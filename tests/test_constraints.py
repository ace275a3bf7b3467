"""The database enforces the invariants itself: these bypass the services on purpose."""

import datetime

import pytest
from django.db import IntegrityError, transaction

from sites.models import Site, StudySite
from tests.factories import OrganizationFactory
from trialhub.models import (
    Area,
    OrganizationKind,
    Raci,
    ResponsibilityEntry,
    RoleAssignment,
    Study,
    StudyRole,
)

pytestmark = pytest.mark.django_db


def raises_integrity(create):
    with pytest.raises(IntegrityError), transaction.atomic():
        create()


def test_second_accountable_in_an_area_is_refused(world):
    # The CRO is Informed; making it Accountable too would give the area two A's.
    cell = ResponsibilityEntry.objects.get(
        study=world.study_a, area=Area.MONITORING, organization=world.cro
    )
    cell.code = Raci.ACCOUNTABLE
    raises_integrity(cell.save)


def test_two_codes_for_one_party_in_an_area_are_refused(world):
    raises_integrity(
        lambda: ResponsibilityEntry.objects.create(
            study=world.study_a, area=Area.TRAINING, organization=world.cro, code=Raci.CONSULTED
        )
    )


def test_overlapping_assignment_of_same_user_role_and_site_is_refused(world):
    raises_integrity(
        lambda: RoleAssignment.objects.create(
            user=world.cra,
            role=StudyRole.CRA,
            study=world.study_a,
            study_site=world.ss_a1,
            start_date=world.cra_assignment.start_date + datetime.timedelta(days=3),
        )
    )


def test_overlapping_study_level_assignment_is_refused(world):
    raises_integrity(
        lambda: RoleAssignment.objects.create(
            user=world.cro_pm,
            role=StudyRole.CRO_PM,
            study=world.study_a,
            start_date=datetime.date(2020, 1, 1),
        )
    )


def test_consecutive_assignments_do_not_overlap(world):
    world.cra_assignment.end_date = world.cra_assignment.start_date + datetime.timedelta(days=1)
    world.cra_assignment.save()
    RoleAssignment.objects.create(
        user=world.cra,
        role=StudyRole.CRA,
        study=world.study_a,
        study_site=world.ss_a1,
        start_date=world.cra_assignment.end_date,
    )
    assert RoleAssignment.objects.filter(user=world.cra, study_site=world.ss_a1).count() == 2


def test_assignment_cannot_end_before_it_starts(world):
    world.cra_assignment.end_date = world.cra_assignment.start_date - datetime.timedelta(days=1)
    raises_integrity(world.cra_assignment.save)


def test_milestones_out_of_order_are_refused(world):
    world.ss_a1.activated_on = datetime.date(2026, 3, 1)
    world.ss_a1.first_patient_in_on = datetime.date(2026, 2, 1)
    raises_integrity(world.ss_a1.save)


def test_site_organisation_must_be_of_kind_site(world):
    raises_integrity(
        lambda: Site.objects.create(
            organization=OrganizationFactory(kind=OrganizationKind.CRO),
            name="Not a site",
            institution="CRO office",
            country="DE",
        )
    )


def test_study_owner_must_be_a_sponsor(world):
    raises_integrity(
        lambda: Study.objects.create(
            sponsor=world.cro,
            code="X-1",
            title="Owned by a CRO",
            phase="2",
            therapeutic_area="Any",
            enrolment_target=1,
            planned_start=datetime.date(2026, 1, 1),
            planned_end=datetime.date(2027, 1, 1),
        )
    )


def test_one_participation_per_site_and_study(world):
    raises_integrity(lambda: StudySite.objects.create(study=world.study_a, site=world.site_1))
