"""``manage.py seed_demo``: idempotent, and the demo world PRODUCT.md promises."""

from __future__ import annotations

import datetime
import io

import pytest
from django.apps import apps
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from guardian.models import UserObjectPermission

from sites.models import MILESTONE_FIELDS, Site, StudySite, StudySiteStatus
from trialhub.models import (
    Area,
    Engagement,
    MatrixRevision,
    Membership,
    Organization,
    Raci,
    ResponsibilityEntry,
    RoleAssignment,
    Study,
)
from trialhub.selectors import studies_for_user

User = get_user_model()
SPONSOR_A, SPONSOR_B = "Sponsor A Pharma", "Sponsor B Biotech"
MERIDIAN, NORTHBRIDGE = "Meridian Clinical Research", "Northbridge CRO"
PERSONAS = ("sponsor_a", "sponsor_b", "cro_pm", "cra_1", "cra_2", "site_coord", "site_coord_2")
MERIDIAN_RESPONSIBLE = {
    "monitoring",
    "data_queries",
    "regulatory_documents",
    "training",
    "site_selection",
    "contracts_budgets",
    "payments",
    "protocol_amendments",
    "safety_comms",
}

pytestmark = pytest.mark.django_db


def _row_counts() -> dict[str, int]:
    models = [
        *apps.get_app_config("trialhub").get_models(),
        *apps.get_app_config("sites").get_models(),
        User,
        UserObjectPermission,
    ]
    return {model._meta.label: model.objects.count() for model in models}


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker):
    """Seed twice, once for the whole module, inside a transaction rolled back at the end."""
    with (
        django_db_blocker.unblock(),
        transaction.atomic(),
    ):
        call_command("seed_demo", stdout=io.StringIO())
        first = _row_counts()
        call_command("seed_demo", stdout=io.StringIO())
        yield {"first": first, "second": _row_counts()}
        transaction.set_rollback(True)


def _user(username: str):
    return User.objects.get(username=username)


def _sponsors_of_site(site: Site) -> set[str]:
    return set(StudySite.objects.filter(site=site).values_list("study__sponsor__name", flat=True))


def _site_of(username: str) -> Site:
    return Site.objects.get(organization__memberships__user__username=username)


def test_second_run_changes_no_row_counts(seeded):
    assert seeded["first"] == seeded["second"]
    assert seeded["first"]["trialhub.RoleAssignment"] > 0


def test_two_sponsors_and_two_cros(seeded):
    kinds = dict(
        Organization.objects.filter(kind__in=["sponsor", "cro"]).values_list("name", "kind")
    )
    assert kinds == {
        SPONSOR_A: "sponsor",
        SPONSOR_B: "sponsor",
        MERIDIAN: "cro",
        NORTHBRIDGE: "cro",
    }


def test_at_least_twelve_sites_in_four_countries_each_with_own_organisation(seeded):
    sites = Site.objects.select_related("organization")
    assert sites.count() >= 12
    assert len({site.country for site in sites}) >= 4
    assert all(site.organization.kind == "site" for site in sites)
    assert len({site.organization_id for site in sites}) == sites.count()


def test_three_studies_two_for_sponsor_a_one_for_sponsor_b(seeded):
    per_sponsor = dict(
        Study.objects.values_list("sponsor__name").annotate(n=Count("id")).order_by()
    )
    assert per_sponsor == {SPONSOR_A: 2, SPONSOR_B: 1}
    assert set(Study.objects.values_list("status", flat=True)) == {"enrolling"}


def test_meridian_on_every_study_northbridge_only_on_sponsor_b(seeded):
    def studies_of(cro: str) -> set[str]:
        return set(Engagement.objects.filter(cro__name=cro).values_list("study__code", flat=True))

    assert studies_of(MERIDIAN) == set(Study.objects.values_list("code", flat=True))
    assert studies_of(NORTHBRIDGE) == set(
        Study.objects.filter(sponsor__name=SPONSOR_B).values_list("code", flat=True)
    )


@pytest.mark.parametrize("username", [*PERSONAS, "admin"])
def test_persona_logs_in_with_demo_password(seeded, username):
    user = authenticate(username=username, password="demo")
    assert user is not None and user.username == username
    assert user.first_name and user.last_name and user.email.endswith("@example.org")


def test_admin_is_a_superuser_outside_every_organisation(seeded):
    admin = _user("admin")
    assert admin.is_superuser and admin.is_staff
    assert not Membership.objects.filter(user=admin).exists()


def test_sponsor_is_accountable_for_every_area_of_every_study(seeded):
    for study in Study.objects.all():
        accountable = ResponsibilityEntry.objects.filter(study=study, code=Raci.ACCOUNTABLE)
        assert set(accountable.values_list("organization_id", flat=True)) == {study.sponsor_id}
        assert set(accountable.values_list("area", flat=True)) == set(Area.values)


def test_meridian_responsible_for_nine_areas_and_consulted_on_recruitment(seeded):
    for study in Study.objects.all():
        codes = dict(
            ResponsibilityEntry.objects.filter(
                study=study, organization__name=MERIDIAN
            ).values_list("area", "code")
        )
        assert codes == {**dict.fromkeys(MERIDIAN_RESPONSIBLE, "R"), "recruitment_comms": "C"}


def test_matrix_agreement_is_a_revision_by_the_sponsor_lead(seeded):
    for study in Study.objects.all():
        authors = set(study.matrix_revisions.values_list("changed_by__username", flat=True))
        lead = "sponsor_a" if study.sponsor.name == SPONSOR_A else "sponsor_b"
        assert authors == {lead}
        assert study.matrix_revisions.count() == 1 + study.engagements.count() + 1


def test_exactly_one_site_keeps_quiet_hours_and_it_is_in_sponsor_b_study(seeded):
    quiet = Site.objects.filter(quiet_hours_enabled=True)
    assert quiet.count() == 1
    assert SPONSOR_B in _sponsors_of_site(quiet.get())


def test_digest_schedules_vary(seeded):
    assert set(Site.objects.values_list("digest_frequency", flat=True)) == {"daily", "weekly"}


def test_site_coord_works_for_both_sponsors_site_coord_2_for_sponsor_a_only(seeded):
    assert _sponsors_of_site(_site_of("site_coord")) == {SPONSOR_A, SPONSOR_B}
    assert _sponsors_of_site(_site_of("site_coord_2")) == {SPONSOR_A}


def test_some_study_sites_changed_cra_twice_in_the_last_twelve_months(seeded):
    year_ago = timezone.localdate() - datetime.timedelta(days=365)
    changes = StudySite.objects.annotate(
        cra_changes=Count(
            "role_assignments",
            filter=Q(role_assignments__role="cra", role_assignments__end_date__gt=year_ago),
        )
    )
    assert changes.filter(cra_changes__gte=2).count() >= 2
    reasons = set(RoleAssignment.objects.filter(role="cra").values_list("end_reason", flat=True))
    assert {"CRA left the company", "Workload rebalancing"} <= reasons


@pytest.mark.parametrize("username", ["cra_1", "cra_2"])
def test_cra_monitors_sites_of_both_sponsors(seeded, username):
    sponsors = set(
        _user(username)
        .role_assignments.active()
        .filter(role="cra")
        .values_list("study__sponsor__name", flat=True)
    )
    assert sponsors == {SPONSOR_A, SPONSOR_B}


@pytest.mark.parametrize(
    ("username", "sponsors"),
    [
        ("sponsor_a", {SPONSOR_A: 2}),
        ("sponsor_b", {SPONSOR_B: 1}),
        ("cro_pm", {SPONSOR_A: 2, SPONSOR_B: 1}),
        ("site_coord", {SPONSOR_A: 1, SPONSOR_B: 1}),
        ("site_coord_2", {SPONSOR_A: 2}),
        ("admin", {}),
    ],
)
def test_personas_reach_the_right_studies(seeded, username, sponsors):
    studies = studies_for_user(_user(username))
    reached = dict(studies.values_list("sponsor__name").annotate(n=Count("id")).order_by())
    assert reached == sponsors


def test_study_site_milestones_fit_status_and_lie_in_the_past(seeded):
    today = timezone.localdate()
    reached = {
        StudySiteStatus.ACTIVATED: "activated_on",
        StudySiteStatus.ENROLLING: "first_patient_in_on",
        StudySiteStatus.CLOSED: "closed_on",
    }
    for study_site in StudySite.objects.all():
        dates = [getattr(study_site, field) for field in MILESTONE_FIELDS]
        assert all(date <= today for date in dates if date), f"{study_site}: future milestone"
        field = reached.get(study_site.status)
        if field:
            assert getattr(study_site, field) is not None, f"{study_site} lacks {field}"
        assert study_site.closed_on is None or study_site.status == StudySiteStatus.CLOSED
    for study in Study.objects.all():
        assert 6 <= study.study_sites.count() <= 8


def test_matrix_history_is_dated_like_a_real_study(seeded):
    """Backdated through the services' ``now``: the agreement predates the study's start."""
    for study in Study.objects.all():
        revisions = MatrixRevision.objects.filter(study=study).order_by("changed_at")
        assert revisions.count() >= 3
        assert all(rev.changed_at.date() < study.planned_start for rev in revisions), study.code
        assert revisions.last().changed_by.username in {"sponsor_a", "sponsor_b"}
