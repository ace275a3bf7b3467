"""Metric snapshots: validation of an upload, idempotent upsert, tenancy, query counts."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from performance.models import COUNT_FIELDS, MetricSnapshot
from performance.services import MetricRowsInvalid, metric_snapshots_upsert
from sites.services import study_site_create
from tests.factories import site_org

pytestmark = pytest.mark.django_db
METRICS = "/api/v1/metrics/"
NOW = timezone.make_aware(datetime.datetime(2026, 6, 15, 12, 0))


def row(study_site, period="2026-05", **values):
    numbers = dict.fromkeys(COUNT_FIELDS, 1)
    numbers.update(screened=10, screen_failures=2, enrolled=8, queries_opened=5)
    numbers.update(queries_resolved=3, data_entry_lag_days="2.5")
    numbers.update(values)
    return {"study_site": getattr(study_site, "id", study_site), "period": period, **numbers}


def upsert(world, rows, actor=None):
    return metric_snapshots_upsert(actor=actor or world.sponsor_lead_a, rows=rows, now=NOW)


def row_errors(world, rows, actor=None) -> dict:
    with pytest.raises(MetricRowsInvalid) as invalid:
        upsert(world, rows, actor)
    assert not MetricSnapshot.objects.exists(), "an invalid upload must write nothing"
    return invalid.value.row_errors


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"screened": "ten"}, "screened", "whole number"),
        ({"crf_pages": 2.5}, "crf_pages", "whole number"),
        ({"enrolled": True}, "enrolled", "whole number"),
        ({"sae_late": -1}, "sae_late", "negative"),
        ({"data_entry_lag_days": "soon"}, "data_entry_lag_days", "number of days"),
        ({"data_entry_lag_days": -0.5}, "data_entry_lag_days", "negative"),
        ({"screen_failures": 11}, "screen_failures", "Cannot exceed screened"),
        ({"discontinued": 9}, "discontinued", "Cannot exceed enrolled"),
        ({"queries_resolved": 6}, "queries_resolved", "exceed queries opened"),
        ({"period": "2026-07"}, "period", "later than the current month"),
        ({"period": "2026-13"}, "period", "YYYY-MM"),
        ({"period": "May 2026"}, "period", "YYYY-MM"),
        ({"colour": "red"}, "colour", "Unknown field"),
    ],
)
def test_bad_row_gets_a_field_error_and_nothing_is_written(world, values, field, message):
    rows = [row(world.ss_a1), row(world.ss_a2, **values)]

    errors = row_errors(world, rows)

    assert list(errors) == [1], errors
    assert message in errors[1][field], errors


def test_missing_count_is_required(world):
    incomplete = row(world.ss_a1)
    del incomplete["monitoring_visits"]
    assert row_errors(world, [incomplete]) == {0: {"monitoring_visits": "This field is required."}}


def test_all_row_errors_are_collected(world):
    rows = [
        row(world.ss_a1, screened=-1),
        row(world.ss_a1, "2026-04"),
        row(world.ss_a2, period="x"),
    ]
    errors = row_errors(world, rows)
    assert set(errors) == {0, 2}
    assert set(errors[0]) == {"screened"}
    assert set(errors[2]) == {"period"}


def test_duplicate_study_site_and_period_in_one_upload(world):
    errors = row_errors(world, [row(world.ss_a1), row(world.ss_a2), row(world.ss_a1)])
    assert errors == {2: {"period": "Repeats row 0 (same study-site and period)."}}


def test_unknown_and_other_tenants_study_site_read_the_same(world):
    missing_id = max(world.ss_a1.id, world.ss_b3.id) + 1000
    errors = row_errors(world, [row(world.ss_a1), row(missing_id), row(world.ss_b3)])
    assert errors == {
        1: {"study_site": "Unknown study-site."},
        2: {"study_site": "Unknown study-site."},
    }


def test_queries_resolved_are_cumulative_across_months_and_stored_rows(world):
    upsert(world, [row(world.ss_a1, period="2026-03", queries_opened=5, queries_resolved=1)])
    # April resolves 6 with 2 opened: 7 resolved of 7 opened so far is fine ...
    upsert(world, [row(world.ss_a1, period="2026-04", queries_opened=2, queries_resolved=6)])
    # ... but lowering March's openings makes April's totals contradict.
    with pytest.raises(MetricRowsInvalid) as invalid:
        upsert(world, [row(world.ss_a1, period="2026-03", queries_opened=1, queries_resolved=1)])
    assert (
        "exceed queries opened so far (3) by 2026-04"
        in invalid.value.row_errors[0]["queries_resolved"]
    )
    # Rows of the same upload count together, whatever their order.
    result = upsert(
        world,
        [
            row(world.ss_a2, period="2026-05", queries_opened=0, queries_resolved=4),
            row(world.ss_a2, period="2026-04", queries_opened=4, queries_resolved=0),
        ],
    )
    assert result.created == 2


# --- upsert --------------------------------------------------------------------------------


def test_reupload_is_idempotent_and_a_changed_row_is_updated(world):
    rows = [row(world.ss_a1, period=f"2026-0{month}") for month in range(1, 6)]
    first = upsert(world, rows)
    stamps = dict(MetricSnapshot.objects.values_list("id", "updated_at"))

    again = upsert(world, rows, actor=world.cro_pm)
    rows[2]["enrolled"] = 9
    changed = upsert(world, rows, actor=world.cra)

    assert (first.created, first.updated, first.unchanged) == (5, 0, 0)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 5)
    assert (changed.created, changed.updated, changed.unchanged) == (0, 1, 4)
    assert MetricSnapshot.objects.count() == 5
    march = MetricSnapshot.objects.get(period=datetime.date(2026, 3, 1))
    assert march.enrolled == 9 and march.updated_by == world.cra
    assert march.data_entry_lag_days == 2.5
    untouched = MetricSnapshot.objects.exclude(pk=march.pk)
    assert all(s.updated_at == stamps[s.id] for s in untouched), "unchanged rows keep their stamp"


def test_site_people_and_viewers_may_not_upload(world):
    for person in (world.site_coord_1, world.sponsor_viewer_a, world.no_org_user):
        with pytest.raises(PermissionDenied):
            upsert(world, [row(world.ss_a1)], actor=person)
    assert not MetricSnapshot.objects.exists()


def test_sponsor_org_admin_uploads_for_any_of_its_studies(world):
    assert upsert(world, [row(world.ss_a2)], actor=world.sponsor_a_admin).created == 1


def test_database_refuses_contradictory_rows(world):
    from django.db import IntegrityError, transaction

    good = {field: 1 for field in COUNT_FIELDS}
    for bad in ({"screen_failures": 2}, {"crf_pages": -1}):
        with pytest.raises(IntegrityError), transaction.atomic():
            MetricSnapshot.objects.create(
                study_site=world.ss_a1, period=datetime.date(2026, 1, 1), **{**good, **bad}
            )
    with pytest.raises(IntegrityError), transaction.atomic():
        MetricSnapshot.objects.create(
            study_site=world.ss_a1, period=datetime.date(2026, 1, 2), **good
        )


# --- API -----------------------------------------------------------------------------------


def seed(world):
    """Two months for every study-site of both studies (written by sponsor org admins)."""
    for admin, study_sites in (
        (world.sponsor_a_admin, (world.ss_a1, world.ss_a2)),
        (world.sponsor_b_admin, (world.ss_b1, world.ss_b3)),
    ):
        rows = [row(ss, period=p) for ss in study_sites for p in ("2026-04", "2026-05")]
        metric_snapshots_upsert(actor=admin, rows=rows, now=NOW)


@pytest.mark.parametrize(
    ("persona", "visible"),
    [
        ("sponsor_lead_a", {"ss_a1", "ss_a2"}),
        ("sponsor_viewer_a", {"ss_a1", "ss_a2"}),
        ("sponsor_lead_b", {"ss_b1", "ss_b3"}),
        ("cro_pm", {"ss_a1", "ss_a2", "ss_b1", "ss_b3"}),
        ("cro_b_pm", {"ss_b1", "ss_b3"}),
        ("site_coord_1", {"ss_a1", "ss_b1"}),
        ("site_coord_2", {"ss_a2"}),
        ("no_org_user", set()),
    ],
)
def test_get_shows_each_persona_its_rows_only(world, api_as, persona, visible):
    seed(world)
    response = api_as(getattr(world, persona)).get(METRICS)

    assert response.status_code == 200, response.content
    got = {item["study_site"] for item in response.json()["results"]}
    assert got == {getattr(world, name).id for name in visible}
    assert response.json()["count"] == 2 * len(visible)


def test_get_shape_and_filters(world, api_as):
    seed(world)
    client = api_as(world.cro_pm)

    by_study = client.get(f"{METRICS}?study={world.study_b.id}").json()
    one = client.get(f"{METRICS}?study_site={world.ss_a1.id}&period=2026-05").json()

    assert {item["study"] for item in by_study["results"]} == {world.study_b.id}
    assert one["count"] == 1
    snapshot = one["results"][0]
    assert snapshot["period"] == "2026-05"
    assert snapshot["data_entry_lag_days"] == 2.5
    assert {k: snapshot[k] for k in ("study", "study_site", "screened", "screen_failures")} == {
        "study": world.study_a.id,
        "study_site": world.ss_a1.id,
        "screened": 10,
        "screen_failures": 2,
    }
    assert client.get(f"{METRICS}?period=2026-5x").status_code == 400


@pytest.mark.parametrize(
    ("persona", "target", "expected"),
    [
        ("sponsor_lead_a", "ss_a1", 201),
        ("cro_pm", "ss_b1", 201),
        ("cra", "ss_a1", 201),
        ("sponsor_lead_b", "ss_a1", 400),  # another sponsor's study-site: unknown
        ("cro_b_pm", "ss_a2", 400),  # a CRO not engaged on study A
        ("sponsor_viewer_a", "ss_a1", 403),
        ("site_coord_1", "ss_a1", 403),  # a site's people see their rows but never upload
        ("no_org_user", "ss_a1", 403),
        ("anonymous", "ss_a1", 401),
    ],
)
def test_post_persona_matrix(world, api_as, persona, target, expected):
    user = None if persona == "anonymous" else getattr(world, persona)
    response = api_as(user).post(METRICS, [row(getattr(world, target))], format="json")

    assert response.status_code == expected, response.content
    assert MetricSnapshot.objects.count() == (1 if expected == 201 else 0)
    if expected == 400:
        assert response.json() == {"0": {"study_site": ["Unknown study-site."]}}


def test_post_reports_errors_by_row_and_field_and_counts(world, api_as):
    client = api_as(world.sponsor_lead_a)
    rows = [row(world.ss_a1), row(world.ss_a2)]

    bad = client.post(METRICS, [rows[0], {**rows[1], "screened": -3}], format="json")
    created = client.post(METRICS, rows, format="json")
    again = client.post(METRICS, rows, format="json")
    not_a_list = client.post(METRICS, rows[0], format="json")

    assert bad.status_code == 400
    assert bad.json() == {"1": {"screened": ["Must not be negative."]}}
    assert (created.status_code, created.json()) == (
        201,
        {"created": 2, "updated": 0, "unchanged": 0},
    )
    assert (again.status_code, again.json()) == (200, {"created": 0, "updated": 0, "unchanged": 2})
    assert not_a_list.status_code == 400


# --- query counts --------------------------------------------------------------------------


def _more_study_sites(world, count: int, prefix: str = "Extra"):
    study_sites = []
    for number in range(count):
        _, site = site_org(f"{prefix} {number}", "IT", "Europe/Rome")
        study_sites.append(study_site_create(study=world.study_a, site=site, enrolment_target=5))
    return study_sites


def test_get_query_count_does_not_grow_with_rows(world, api_as):
    client = api_as(world.sponsor_lead_a)
    counts = []
    for batch, extra in (("First", 1), ("Second", 9)):
        study_sites = _more_study_sites(world, extra, prefix=batch)
        rows = [row(ss, period=p) for ss in study_sites for p in ("2026-03", "2026-04")]
        metric_snapshots_upsert(actor=world.sponsor_lead_a, rows=rows, now=NOW)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(METRICS)
        assert response.status_code == 200
        counts.append(len(queries))
    assert response.json()["count"] == 20
    assert counts[0] == counts[1], counts


def test_post_of_500_rows_uses_a_constant_number_of_queries(world, api_as):
    study_sites = _more_study_sites(world, 50)
    client = api_as(world.cro_pm)
    periods = [f"{year}-{month:02d}" for year in (2025, 2026) for month in range(1, 13)]

    def rows_for(count):
        return [row(ss, period=p) for ss in study_sites for p in periods[:10]][:count]

    counts = []
    for size in (5, 500):
        MetricSnapshot.objects.all().delete()
        with CaptureQueriesContext(connection) as queries:
            response = client.post(METRICS, rows_for(size), format="json")
        assert response.status_code == 201, response.content
        assert response.json()["created"] == size
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    assert counts[1] <= 12, counts
    assert MetricSnapshot.objects.count() == 500
