"""Smoke test of the world fixture and the core reach rules."""

import pytest

from sites.selectors import study_sites_for_user
from trialhub.selectors import role_assignments_for_user, studies_for_user, users_for_user


def codes(queryset):
    return sorted(study.code for study in queryset)


@pytest.mark.django_db
def test_reach_of_each_persona(world):
    assert codes(studies_for_user(world.sponsor_lead_a)) == ["A-001"]
    assert codes(studies_for_user(world.sponsor_lead_b)) == ["B-001"]
    assert codes(studies_for_user(world.cro_pm)) == ["A-001", "B-001"]
    assert codes(studies_for_user(world.cro_b_pm)) == ["B-001"]
    assert codes(studies_for_user(world.site_coord_1)) == ["A-001", "B-001"]
    assert codes(studies_for_user(world.site_coord_2)) == ["A-001"]
    assert codes(studies_for_user(world.no_org_user)) == []
    assert codes(studies_for_user(world.cra_2)) == [], "no assignment, no study"
    assert codes(studies_for_user(world.sponsor_a_admin)) == ["A-001"]


@pytest.mark.django_db
def test_site_user_sees_only_own_study_sites_and_people(world):
    sites = {ss.site_id for ss in study_sites_for_user(world.site_coord_1)}
    assert sites == {world.site_1.id}
    seen = {a.user_id for a in role_assignments_for_user(world.site_coord_1)}
    assert world.site_coord_2.id not in seen
    assert world.site_coord_3.id not in seen
    assert world.cra.id in seen
    people = {user.id for user in users_for_user(world.site_coord_1)}
    assert world.site_coord_3.id not in people
    assert world.cro_pm.id in people


@pytest.mark.django_db
def test_people_in_reach_include_partners_without_a_role_but_not_other_tenants(world):
    lead_a = {user.username for user in users_for_user(world.sponsor_lead_a)}
    assert {"cra_2", "coord_1", "coord_2", "cro_pm"} <= lead_a
    assert not {"cro_b_pm", "coord_3", "lead_b", "sponsor_b_admin"} & lead_a
    cro_b = {user.username for user in users_for_user(world.cro_b_pm)}
    assert "lead_a" not in cro_b and "coord_2" not in cro_b
    coord_2 = {user.username for user in users_for_user(world.site_coord_2)}
    assert "cra_2" not in coord_2, "site people see only those already on their studies"
