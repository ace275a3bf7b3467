"""Forms of the metrics pages. They read the CSV file and present it; the rules of a snapshot
(numbers, study-sites, contradictions) are ``performance.services``' to check."""

from __future__ import annotations

import csv
import io

from django import forms

from performance.models import VALUE_FIELDS

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
# The CSV's columns, in the template's order; ``site_name`` helps people and is ignored.
CSV_COLUMNS = ("study_site", "site_name", "period", *VALUE_FIELDS)
REQUIRED_COLUMNS = frozenset(CSV_COLUMNS) - {"site_name"}


def metric_rows_from_csv(text: str) -> tuple[list[dict], list[int]]:
    """The service's row dicts and the file line each came from.

    Raises ``ValidationError`` for what makes the file unreadable as a whole: a missing,
    unknown or repeated column, a line with more values than the header, no rows at all.
    """
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip() for name in reader.fieldnames or []]
    problems = []
    if missing := [name for name in CSV_COLUMNS if name in REQUIRED_COLUMNS - set(header)]:
        problems.append(f"Missing columns: {', '.join(missing)}.")
    if unknown := sorted({name for name in header if name not in CSV_COLUMNS}):
        problems.append(f"Unknown columns: {', '.join(unknown)}.")
    if repeated := sorted({name for name in header if header.count(name) > 1}):
        problems.append(f"Repeated columns: {', '.join(repeated)}.")
    if problems:
        raise forms.ValidationError(" ".join(problems), code="header")
    reader.fieldnames = header
    rows, lines = [], []
    try:
        for record in reader:
            if None in record:
                raise forms.ValidationError(
                    f"Line {reader.line_num} has more values than the header.", code="shape"
                )
            rows.append(_service_row(record))
            lines.append(reader.line_num)
    except csv.Error as error:
        raise forms.ValidationError(f"Line {reader.line_num}: {error}.", code="csv") from None
    if not rows:
        raise forms.ValidationError("The file has a header but no rows.", code="empty")
    return rows, lines


def _service_row(record: dict) -> dict:
    """One CSV record as the service's row: the study-site as an id when it reads as one,
    a blank data-entry lag as none (no visits entered), every other value as written."""
    row = {name: (value or "").strip() for name, value in record.items() if name != "site_name"}
    if row["study_site"].isdigit():
        row["study_site"] = int(row["study_site"])
    if not row["data_entry_lag_days"]:
        row["data_entry_lag_days"] = None
    return row


class MetricUploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8, with the template's header; at most 5 MB.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )

    def clean_file(self) -> str:
        """The file's text (its rows are parsed in ``clean``)."""
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"The file is {upload.size / 1024 / 1024:.1f} MB; the limit is 5 MB. "
                "Split it into several uploads.",
                code="too_large",
            )
        try:
            return upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError(
                "The file is not UTF-8 text. Save it as “CSV UTF-8”.", code="encoding"
            ) from None

    def clean(self):
        cleaned = super().clean()
        if "file" in cleaned:
            try:
                cleaned["rows"], cleaned["lines"] = metric_rows_from_csv(cleaned["file"])
            except forms.ValidationError as error:
                self.add_error("file", error)
        return cleaned


class MetricConfirmForm(forms.Form):
    """Confirms the previewed upload; ``digest`` ties it to the file kept in the session."""

    digest = forms.CharField(widget=forms.HiddenInput, max_length=64)
