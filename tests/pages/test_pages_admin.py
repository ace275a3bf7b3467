"""The Django admin for the platform administrator: every registered model opens, new studies
and engagements go through the services, and history cannot be edited or deleted."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from tests.factories import UserFactory
from trialhub.models import ResponsibilityEntry, RoleAssignment, Study

pytestmark = pytest.mark.django_db


@pytest.fixture
def platform_admin():
    return UserFactory(username="platform", is_staff=True, is_superuser=True)


def test_every_admin_page_opens(world, client_as, platform_admin):
    client = client_as(platform_admin)
    for model in admin.site._registry:
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        assert client.get(reverse(f"{name}_changelist")).status_code == 200, name
        instance = model._default_manager.first()
        if instance is not None:
            change = client.get(reverse(f"{name}_change", args=[instance.pk]))
            assert change.status_code == 200, name


def test_role_assignments_and_matrix_history_are_read_only(world, client_as, platform_admin):
    client = client_as(platform_admin)
    assignment = world.cra_assignment
    assert client.get(reverse("admin:trialhub_roleassignment_add")).status_code == 403
    delete = reverse("admin:trialhub_roleassignment_delete", args=[assignment.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert RoleAssignment.objects.filter(pk=assignment.pk).exists()
    assert client.get(reverse("admin:trialhub_responsibilityentry_add")).status_code == 403


def test_a_study_added_in_the_admin_gets_its_matrix(world, client_as, platform_admin):
    response = client_as(platform_admin).post(
        reverse("admin:trialhub_study_add"),
        {
            "sponsor": world.sponsor_a.id,
            "code": "A-777",
            "title": "Admin-made study",
            "phase": "2",
            "therapeutic_area": "Cardiology",
            "status": "planning",
            "enrolment_target": "50",
            "planned_start": "2026-01-01",
            "planned_end": "2027-01-01",
            "engagements-TOTAL_FORMS": "1",
            "engagements-INITIAL_FORMS": "0",
            "engagements-MIN_NUM_FORMS": "0",
            "engagements-MAX_NUM_FORMS": "1000",
            "engagements-0-cro": world.cro.id,
            "engagements-0-scope": "Monitoring",
            "engagements-0-start_date": "2026-01-01",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    study = Study.objects.get(code="A-777")
    entries = ResponsibilityEntry.objects.filter(study=study)
    assert entries.filter(organization=world.sponsor_a, code="A").count() == 10
    assert entries.filter(organization=world.cro, code="I").count() == 10
