"""The metrics upload page: template download, preview then confirm, errors by line, tenancy."""

from __future__ import annotations

import csv
import datetime
import io
from urllib.parse import quote

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from performance.forms import CSV_COLUMNS
from performance.models import COUNT_FIELDS, MetricSnapshot
from tests.performance.test_metrics import row

pytestmark = pytest.mark.django_db


def upload_url(study) -> str:
    return f"/studies/{study.id}/metrics/upload/"


def csv_text(rows: list[dict], columns=CSV_COLUMNS) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for values in rows:
        writer.writerow({"site_name": "ignored", **values})
    return out.getvalue()


def post_file(client, study, text: str, name: str = "metrics.csv"):
    upload = SimpleUploadedFile(name, text.encode(), content_type="text/csv")
    return client.post(upload_url(study), {"file": upload})


def preview_and_confirm(client, study, text: str):
    preview = post_file(client, study, text)
    assert preview.status_code == 200, preview.content.decode()
    digest = preview.context["confirm"]["digest"].value()
    return preview, client.post(upload_url(study), {"digest": digest}, follow=True)


def test_template_has_the_header_and_a_row_per_study_site_for_the_previous_month(world, client_as):
    response = client_as(world.sponsor_lead_a).get(
        f"/studies/{world.study_a.id}/metrics/template.csv"
    )

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(response.content.decode())))
    assert tuple(lines[0]) == CSV_COLUMNS
    previous = (timezone.localdate().replace(day=1) - datetime.timedelta(days=1)).strftime("%Y-%m")
    assert sorted((line[0], line[1], line[2]) for line in lines[1:]) == [
        (str(world.ss_a1.id), "Site One", previous),
        (str(world.ss_a2.id), "Site Two", previous),
    ]


def test_template_of_another_tenants_study_is_not_found(world, client_as):
    response = client_as(world.sponsor_lead_b).get(
        f"/studies/{world.study_a.id}/metrics/template.csv"
    )
    assert response.status_code == 404


def test_preview_writes_nothing_and_confirm_writes_the_rows(world, client_as):
    client = client_as(world.sponsor_lead_a)
    text = csv_text([row(world.ss_a1), row(world.ss_a2), row(world.ss_a2, period="2026-04")])

    preview = post_file(client, world.study_a, text)

    assert (preview.context["preview"].created, preview.context["preview"].updated) == (3, 0)
    assert b"create <strong>3</strong>" in preview.content
    assert not MetricSnapshot.objects.exists(), "the preview must not write"

    digest = preview.context["confirm"]["digest"].value()
    saved = client.post(upload_url(world.study_a), {"digest": digest}, follow=True)

    assert saved.status_code == 200
    assert b"3 created, 0 updated, 0 unchanged" in saved.content
    assert MetricSnapshot.objects.count() == 3
    assert MetricSnapshot.objects.filter(updated_by=world.sponsor_lead_a).count() == 3
    again = client.post(upload_url(world.study_a), {"digest": digest}, follow=True)
    assert b"preview has expired" in again.content, "a preview is confirmed once"


def test_reupload_is_idempotent(world, client_as):
    client = client_as(world.cro_pm)
    text = csv_text([row(world.ss_a1), row(world.ss_a2)])
    preview_and_confirm(client, world.study_a, text)
    stamps = dict(MetricSnapshot.objects.values_list("id", "updated_at"))

    preview, saved = preview_and_confirm(client, world.study_a, text)

    result = preview.context["preview"]
    assert (result.created, result.updated, result.unchanged) == (0, 0, 2)
    assert b"0 created, 0 updated, 2 unchanged" in saved.content
    assert dict(MetricSnapshot.objects.values_list("id", "updated_at")) == stamps


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ([c for c in CSV_COLUMNS if c != "enrolled"], "Missing columns: enrolled."),
        ([*CSV_COLUMNS, "colour"], "Unknown columns: colour."),
    ],
)
def test_bad_header_is_a_form_error_naming_the_columns(world, client_as, columns, message):
    response = post_file(
        client_as(world.sponsor_lead_a), world.study_a, csv_text([row(world.ss_a1)], columns)
    )
    assert response.status_code == 400
    assert message in response.context["form"].errors["file"][0]
    assert not MetricSnapshot.objects.exists()


def test_bad_number_is_reported_with_its_line_and_field(world, client_as):
    rows = [row(world.ss_a1), row(world.ss_a2), row(world.ss_a2, "2026-04", screened="ten")]

    response = post_file(client_as(world.sponsor_lead_a), world.study_a, csv_text(rows))

    assert response.status_code == 400
    assert response.context["errors"] == [(4, "screened", "Must be a whole number.")]
    assert b"Nothing was saved." in response.content
    assert "confirm" not in response.context


def test_another_tenants_or_studys_study_site_is_unknown_and_nothing_is_written(world, client_as):
    # The CRO PM may upload for study B too, but this page takes study A's rows only.
    rows = [row(world.ss_a1), row(world.ss_b3), row(world.ss_b1)]

    response = post_file(client_as(world.cro_pm), world.study_a, csv_text(rows))

    assert response.status_code == 400
    assert response.context["errors"] == [
        (3, "study_site", "Unknown study-site."),
        (4, "study_site", "Unknown study-site."),
    ]
    assert not MetricSnapshot.objects.exists()


def test_a_file_over_the_limit_is_refused(world, client_as, settings):
    from performance import forms

    text = csv_text([row(world.ss_a1)])
    original = forms.MAX_UPLOAD_BYTES
    forms.MAX_UPLOAD_BYTES = 10
    try:
        response = post_file(client_as(world.sponsor_lead_a), world.study_a, text)
    finally:
        forms.MAX_UPLOAD_BYTES = original
    assert response.status_code == 400
    assert "the limit is 5 MB" in response.context["form"].errors["file"][0]


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("sponsor_lead_a", 200),
        ("cro_pm", 200),
        ("cra", 200),
        ("sponsor_viewer_a", 403),  # sees the study, may not upload
        ("site_coord_1", 403),  # site people see the study: 403, never an upload
        ("sponsor_lead_b", 404),
        ("cro_b_pm", 404),
        ("no_org_user", 404),
    ],
)
def test_upload_page_persona_matrix(world, client_as, persona, expected):
    client = client_as(getattr(world, persona))
    for url in (upload_url(world.study_a), f"/studies/{world.study_a.id}/metrics/template.csv"):
        assert client.get(url).status_code == expected, url
    detail = client.get(f"/studies/{world.study_a.id}/")
    if detail.status_code == 200:
        assert (upload_url(world.study_a).encode() in detail.content) == (expected == 200)


def test_anonymous_is_sent_to_log_in(world, client_as):
    path = upload_url(world.study_a)
    response = client_as(None).get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={quote(path)}"


def test_upload_post_query_count_does_not_grow_with_rows(world, client_as):
    client = client_as(world.sponsor_lead_a)
    periods = [f"{year}-{month:02d}" for year in range(2010, 2020) for month in range(1, 13)]
    counts = []
    for size in (5, 200):
        rows = [row(ss, period=p) for p in periods for ss in (world.ss_a1, world.ss_a2)][:size]
        text = csv_text(rows)
        with CaptureQueriesContext(connection) as queries:
            response = post_file(client, world.study_a, text)
        assert response.status_code == 200, response.content.decode()
        assert response.context["preview"].created == size
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def test_blank_counts_from_the_template_are_errors(world, client_as):
    blank = {"study_site": world.ss_a1.id, "period": "2026-01", **dict.fromkeys(COUNT_FIELDS, "")}
    response = post_file(client_as(world.sponsor_lead_a), world.study_a, csv_text([blank]))
    assert response.status_code == 400
    assert (2, "screened", "Must be a whole number.") in response.context["errors"]
