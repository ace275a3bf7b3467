"""HTML pages of performance: the CSV upload of metric snapshots, with its template file.

Same rules as ``trialhub.views``: the study comes through ``study_for_user`` (404 when out of
reach), 403 only for people who see the study but may not upload its metrics, and every write
goes through ``metric_snapshots_upsert``. The upload is previewed first (the service runs in a
transaction rolled back at its end), then confirmed; the file waits in the session between the
two, tied to the preview by its digest.
"""

from __future__ import annotations

import csv
import datetime
import hashlib

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from performance.exports import csv_row
from performance.forms import (
    CSV_COLUMNS,
    MetricConfirmForm,
    MetricUploadForm,
    metric_rows_from_csv,
)
from performance.models import VALUE_FIELDS
from performance.permissions import metric_writable_study_ids
from performance.selectors import metric_snapshots_for_user
from performance.services import MetricRowsInvalid, UpsertResult, metric_snapshots_upsert
from sites.selectors import study_sites_for_user
from trialhub.models import Study
from trialhub.selectors import study_for_user


def _upload_study(user, study_id: int) -> Study:
    study = study_for_user(user, study_id)
    if study.id not in metric_writable_study_ids(user):
        raise PermissionDenied("Only the sponsor and CRO people of the study upload its metrics.")
    return study


def _session_key(study: Study) -> str:
    return f"metrics_upload:{study.id}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _previous_month(today: datetime.date) -> datetime.date:
    return (today.replace(day=1) - datetime.timedelta(days=1)).replace(day=1)


@login_required
def metrics_template(request: HttpRequest, study_id: int) -> HttpResponse:
    """The CSV to fill in: one row per study-site for the previous month, with the numbers
    already stored for it (blank when there are none)."""
    study = _upload_study(request.user, study_id)
    period = _previous_month(timezone.localdate())
    study_sites = study_sites_for_user(request.user, study).select_related("site")
    stored = {
        snapshot.study_site_id: snapshot
        for snapshot in metric_snapshots_for_user(request.user, study_id=study.id, period=period)
    }
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="{study.code}-metrics-{period:%Y-%m}.csv"'
    )
    writer = csv.writer(response)
    writer.writerow(CSV_COLUMNS)
    for study_site in study_sites.order_by("site__name", "id"):
        snapshot = stored.get(study_site.id)
        values = [getattr(snapshot, field) if snapshot else "" for field in VALUE_FIELDS]
        writer.writerow(csv_row([study_site.id, study_site.site.name, f"{period:%Y-%m}", *values]))
    return response


def _rows_of_study(user, study: Study, rows: list[dict]) -> list[dict]:
    """The rows with any study-site outside this study read as unknown: the page uploads one
    study's numbers, even for people who may upload for several."""
    own_ids = set(study_sites_for_user(user, study).values_list("id", flat=True))
    return [row if row["study_site"] in own_ids else {**row, "study_site": None} for row in rows]


def _upsert(user, study: Study, text: str, *, commit: bool) -> tuple[UpsertResult | None, list]:
    """Run the service on the file (rolled back unless ``commit``): its result, or the row
    errors as (line, field, message) sorted by line."""
    rows, lines = metric_rows_from_csv(text)
    try:
        with transaction.atomic():
            result = metric_snapshots_upsert(actor=user, rows=_rows_of_study(user, study, rows))
            transaction.set_rollback(not commit)
    except MetricRowsInvalid as invalid:
        errors = [
            (lines[index], field, message)
            for index, fields in invalid.row_errors.items()
            for field, message in fields.items()
        ]
        return None, errors
    return result, []


@login_required
def metrics_upload(request: HttpRequest, study_id: int) -> HttpResponse:
    """GET: the form. POST with a file: the preview (what would be created, updated or left
    unchanged, or every row error with its line). POST ``confirm``: the previewed file written."""
    study = _upload_study(request.user, study_id)
    key = _session_key(study)
    context = {"study": study, "form": MetricUploadForm(), "columns": CSV_COLUMNS}
    status = 200
    if request.method == "POST" and "digest" in request.POST:
        confirm = MetricConfirmForm(request.POST)
        text = request.session.get(key)
        if (
            not confirm.is_valid()
            or text is None
            or _digest(text) != confirm.cleaned_data["digest"]
        ):
            messages.error(request, "That preview has expired. Choose the file again.")
            return redirect("metrics-upload", study_id=study.id)
        result, errors = _upsert(request.user, study, text, commit=True)
        if result is not None:
            del request.session[key]
            messages.success(
                request,
                f"Metrics saved: {result.created} created, {result.updated} updated, "
                f"{result.unchanged} unchanged.",
            )
            return redirect("metrics-upload", study_id=study.id)
        context["errors"], status = errors, 400
    elif request.method == "POST":
        form = MetricUploadForm(request.POST, request.FILES)
        context["form"] = form
        if form.is_valid():
            text = form.cleaned_data["file"]
            result, errors = _upsert(request.user, study, text, commit=False)
            if result is not None:
                request.session[key] = text
                context["preview"] = result
                context["confirm"] = MetricConfirmForm(initial={"digest": _digest(text)})
                context["file_name"] = request.FILES["file"].name
            else:
                context["errors"] = errors
        status = 200 if "preview" in context else 400
    return render(request, "performance/metrics_upload.html", context, status=status)
