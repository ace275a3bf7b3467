"""Service rules of the tenancy core: matrix, role assignments, permissions, sites."""

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from sites.services import (
    site_preferences_update,
    study_site_update,
    training_record_create,
)
from trialhub.models import (
    Area,
    MatrixRevision,
    Raci,
    ResponsibilityEntry,
    RoleAssignment,
    StudyRole,
)
from trialhub.permissions import EDIT_MATRIX, has_study_permission
from trialhub.selectors import responsibility_matrix, studies_for_user
from trialhub.services import (
    responsibility_matrix_set,
    role_assignment_create,
    role_assignment_end,
)
from trialhub.tasks import role_permissions_sync

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate


def matrix_entries(study):
    return [dict(entry) for entry in responsibility_matrix(study)["entries"]]


def set_code(entries, area, organization, code):
    for entry in entries:
        if entry["area"] == area and entry["organization"] == organization.id:
            entry["code"] = code
    return entries


# --- responsibility matrix -------------------------------------------------------------


def test_new_study_starts_with_sponsor_accountable_everywhere(world):
    matrix = responsibility_matrix(world.study_a)
    sponsor_codes = {
        e["code"] for e in matrix["entries"] if e["organization"] == world.sponsor_a.id
    }
    assert sponsor_codes == {Raci.ACCOUNTABLE}
    assert [party.id for party in matrix["parties"]] == [world.sponsor_a.id, world.cro.id]
    assert len(matrix["entries"]) == 2 * len(Area.values)


def test_matrix_change_is_recorded_with_who_and_which_cells(world):
    entries = set_code(matrix_entries(world.study_a), Area.MONITORING, world.cro, Raci.RESPONSIBLE)
    revision = responsibility_matrix_set(
        study=world.study_a, entries=entries, actor=world.sponsor_lead_a, note="Kick-off"
    )
    change = revision.changes.get()
    assert (change.area, change.organization, change.old_code, change.new_code) == (
        Area.MONITORING,
        world.cro,
        Raci.INFORMED,
        Raci.RESPONSIBLE,
    )
    assert revision.changed_by == world.sponsor_lead_a and revision.note == "Kick-off"


def test_unchanged_matrix_writes_no_revision(world):
    before = MatrixRevision.objects.count()
    result = responsibility_matrix_set(
        study=world.study_a, entries=matrix_entries(world.study_a), actor=world.sponsor_lead_a
    )
    assert result is None
    assert MatrixRevision.objects.count() == before


def test_accountability_can_move_to_another_party(world):
    entries = matrix_entries(world.study_a)
    set_code(entries, Area.MONITORING, world.sponsor_a, Raci.CONSULTED)
    set_code(entries, Area.MONITORING, world.cro, Raci.ACCOUNTABLE)
    responsibility_matrix_set(study=world.study_a, entries=entries, actor=world.sponsor_lead_a)
    accountable = ResponsibilityEntry.objects.get(
        study=world.study_a, area=Area.MONITORING, code=Raci.ACCOUNTABLE
    )
    assert accountable.organization == world.cro


@pytest.mark.parametrize(
    "breakage, error_key",
    [
        (lambda w, e: set_code(e, Area.TRAINING, w.cro, Raci.ACCOUNTABLE), Area.TRAINING),
        (lambda w, e: set_code(e, Area.PAYMENTS, w.sponsor_a, Raci.INFORMED), Area.PAYMENTS),
        (lambda w, e: [x for x in e if x["area"] != Area.SAFETY_COMMS], Area.SAFETY_COMMS),
        (lambda w, e: [*e, {"area": "lunch", "organization": w.cro.id, "code": "R"}], "entries"),
        (lambda w, e: set_code(e, Area.TRAINING, w.cro, "X"), "entries"),
        (
            lambda w, e: [*e, {"area": Area.TRAINING, "organization": w.cro_b.id, "code": "I"}],
            "entries",
        ),
    ],
    ids=["two-accountable", "no-accountable", "missing-cells", "bad-area", "bad-code", "not-party"],
)
def test_invalid_matrix_is_refused_whole(world, breakage, error_key):
    before = list(ResponsibilityEntry.objects.filter(study=world.study_a).values_list())
    entries = breakage(world, matrix_entries(world.study_a))
    with pytest.raises(ValidationError) as error:
        responsibility_matrix_set(study=world.study_a, entries=entries, actor=world.sponsor_lead_a)
    assert error_key in error.value.message_dict
    after = list(ResponsibilityEntry.objects.filter(study=world.study_a).values_list())
    assert after == before, "nothing is half-written"


@pytest.mark.parametrize("persona", ["cro_pm", "sponsor_viewer_a", "site_coord_1"])
def test_only_the_sponsor_lead_edits_the_matrix(world, persona):
    with pytest.raises(PermissionDenied):
        responsibility_matrix_set(
            study=world.study_a,
            entries=matrix_entries(world.study_a),
            actor=getattr(world, persona),
        )


# --- role assignments ------------------------------------------------------------------


def test_ending_keeps_history_and_withdraws_access(world):
    role_assignment_end(assignment=world.cra_assignment, actor=world.cro_pm, reason="Left")
    ended = RoleAssignment.objects.get(pk=world.cra_assignment.pk)
    assert ended.end_date == TODAY() and ended.end_reason == "Left"
    assert ended.ended_by == world.cro_pm
    assert world.cra.has_perm("sites.view_studysite", world.ss_b1), "other site unaffected"
    assert not world.cra.has_perm("sites.view_studysite", world.ss_a1)
    assert [s.code for s in studies_for_user(world.cra)] == ["B-001"]


def test_new_cra_after_turnover_gets_access(world):
    role_assignment_end(assignment=world.cra_assignment, actor=world.cro_pm, reason="Rotation")
    role_assignment_create(
        actor=world.cro_pm, user=world.cra_2, role=StudyRole.CRA, study_site=world.ss_a1
    )
    assert world.cra_2.has_perm("trialhub.view_study", world.study_a)
    assert world.cra_2.has_perm("sites.change_studysite", world.ss_a1)
    cras = RoleAssignment.objects.filter(study_site=world.ss_a1, role=StudyRole.CRA)
    assert cras.count() == 2 and cras.active().count() == 1


def test_sponsor_lead_gets_matrix_permission_from_assignment(world):
    assert has_study_permission(world.sponsor_lead_a, EDIT_MATRIX, world.study_a)
    assert not has_study_permission(world.sponsor_viewer_a, EDIT_MATRIX, world.study_a)


def test_ending_twice_is_refused(world):
    role_assignment_end(assignment=world.cra_assignment, actor=world.cro_pm, reason="Left")
    with pytest.raises(ValidationError):
        role_assignment_end(assignment=world.cra_assignment, actor=world.cro_pm, reason="Again")


def test_end_needs_a_reason(world):
    with pytest.raises(ValidationError) as error:
        role_assignment_end(assignment=world.cra_assignment, actor=world.cro_pm, reason="  ")
    assert "reason" in error.value.message_dict


def test_overlapping_assignment_is_refused(world):
    with pytest.raises(ValidationError):
        role_assignment_create(
            actor=world.cro_pm, user=world.cra, role=StudyRole.CRA, study_site=world.ss_a1
        )


def test_several_cras_may_share_a_study_site(world):
    role_assignment_create(
        actor=world.cro_pm, user=world.cra_2, role=StudyRole.CRA, study_site=world.ss_a1
    )
    assert RoleAssignment.objects.active().filter(study_site=world.ss_a1, role="cra").count() == 2


@pytest.mark.parametrize(
    "kwargs, error_key",
    [
        ({"user": "cra_2", "role": StudyRole.CRA, "study": "study_a"}, "study_site"),
        ({"user": "cra_2", "role": StudyRole.CRO_VIEWER, "study_site": "ss_a1"}, "study_site"),
        (
            {"user": "site_coord_2", "role": StudyRole.SITE_COORDINATOR, "study_site": "ss_a1"},
            "user",
        ),
        ({"user": "cra_2", "role": StudyRole.SITE_COORDINATOR, "study_site": "ss_a1"}, "user"),
        ({"user": "cro_b_pm", "role": StudyRole.CRA, "study_site": "ss_a1"}, "user"),
        ({"user": "cra_2", "role": "chief", "study": "study_a"}, "role"),
    ],
    ids=[
        "cra-needs-site",
        "viewer-is-study-wide",
        "coord-of-other-site",
        "cro-as-coord",
        "cro-not-engaged",
        "unknown-role",
    ],
)
def test_assignment_must_fit_scope_and_organisation(world, kwargs, error_key):
    resolved = {
        key: getattr(world, value) if key != "role" else value for key, value in kwargs.items()
    }
    with pytest.raises(ValidationError) as error:
        role_assignment_create(actor=world.sponsor_lead_a, **resolved)
    assert error_key in error.value.message_dict


def test_cro_cannot_assign_another_cros_people(world):
    with pytest.raises(ValidationError):
        role_assignment_create(
            actor=world.cro_pm, user=world.cro_b_pm, role=StudyRole.CRA, study_site=world.ss_b1
        )


@pytest.mark.parametrize(
    "actor, role, scope",
    [
        ("cra", StudyRole.CRA, "ss_a1"),
        ("sponsor_viewer_a", StudyRole.CRA, "ss_a1"),
        ("cro_pm", StudyRole.SPONSOR_VIEWER, "study_a"),
        ("site_coord_1", StudyRole.PRINCIPAL_INVESTIGATOR, "ss_a1"),
    ],
)
def test_who_may_not_assign(world, actor, role, scope):
    target = {"cra": world.cra_2, "sponsor_viewer": world.sponsor_lead_a}.get(
        role, world.site_coord_1 if role == StudyRole.PRINCIPAL_INVESTIGATOR else world.cra_2
    )
    scope_kwarg = {"study_site" if scope.startswith("ss") else "study": getattr(world, scope)}
    with pytest.raises(PermissionDenied):
        role_assignment_create(actor=getattr(world, actor), user=target, role=role, **scope_kwarg)


def test_future_start_takes_effect_through_the_beat_task(world):
    starts = TODAY() + datetime.timedelta(days=1)
    role_assignment_create(
        actor=world.cro_pm,
        user=world.cra_2,
        role=StudyRole.CRA,
        study_site=world.ss_a1,
        start_date=starts,
    )
    assert not world.cra_2.has_perm("sites.view_studysite", world.ss_a1)
    assert list(studies_for_user(world.cra_2)) == []
    RoleAssignment.objects.filter(user=world.cra_2).update(start_date=TODAY())  # a day passes
    assert role_permissions_sync() >= 1
    cra_2 = type(world.cra_2).objects.get(pk=world.cra_2.pk)  # fresh permission cache
    assert cra_2.has_perm("sites.view_studysite", world.ss_a1)


# --- sites -----------------------------------------------------------------------------


def test_study_site_milestones_must_stay_in_order(world):
    with pytest.raises(ValidationError) as error:
        study_site_update(
            study_site=world.ss_a1,
            actor=world.cra,
            data={
                "activated_on": datetime.date(2026, 5, 1),
                "first_patient_in_on": datetime.date(2026, 4, 1),
            },
        )
    assert "first_patient_in_on" in error.value.message_dict


def test_cra_updates_own_study_site_but_not_another(world):
    study_site_update(study_site=world.ss_a1, actor=world.cra, data={"status": "activated"})
    world.ss_a1.refresh_from_db()
    assert world.ss_a1.status == "activated" and world.ss_a1.updated_by == world.cra
    with pytest.raises(PermissionDenied):
        study_site_update(study_site=world.ss_a2, actor=world.cra, data={"status": "closed"})


def test_site_preferences_by_coordinator_only(world):
    site_preferences_update(
        site=world.site_1,
        actor=world.site_coord_1,
        data={"time_zone": "Europe/Lisbon", "digest_frequency": "weekly", "digest_weekday": 2},
    )
    world.site_1.refresh_from_db()
    assert (world.site_1.time_zone, world.site_1.digest_frequency) == ("Europe/Lisbon", "weekly")
    with pytest.raises(PermissionDenied):
        site_preferences_update(site=world.site_1, actor=world.cra, data={"digest_hour": 9})
    with pytest.raises(PermissionDenied):
        site_preferences_update(site=world.site_1, actor=world.site_coord_2, data={})


def test_site_preferences_reject_bad_values(world):
    with pytest.raises(ValidationError) as error:
        site_preferences_update(
            site=world.site_1,
            actor=world.site_coord_1,
            data={"time_zone": "Mars/Olympus", "digest_hour": 25},
        )
    assert {"time_zone", "digest_hour"} <= set(error.value.message_dict)


def test_training_record_for_own_staff(world):
    record = training_record_create(
        study_site=world.ss_a1,
        user=world.pi_1,
        kind="protocol",
        title="Protocol v2 training",
        completed_on=TODAY(),
        actor=world.site_coord_1,
    )
    assert record.recorded_by == world.site_coord_1
    with pytest.raises(ValidationError):
        training_record_create(
            study_site=world.ss_a1,
            user=world.cra,
            kind="protocol",
            title="Protocol v2 training",
            completed_on=TODAY(),
            actor=world.site_coord_1,
        )
    with pytest.raises(PermissionDenied):
        training_record_create(
            study_site=world.ss_a2,
            user=world.site_coord_2,
            kind="system",
            title="EDC",
            completed_on=TODAY(),
            actor=world.site_coord_1,
        )
