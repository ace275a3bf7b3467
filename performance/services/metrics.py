"""Writes for performance: the idempotent, all-or-nothing upsert of metric snapshots."""

from __future__ import annotations

import datetime
import re
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.utils import timezone

from performance.models import COUNT_FIELDS, VALUE_FIELDS, MetricSnapshot
from performance.permissions import metric_writable_study_ids
from sites.selectors import study_sites_for_user

PERIOD_PATTERN = re.compile(r"^(\d{4})-(\d{2})$")
ROW_FIELDS = frozenset({"study_site", "period", *VALUE_FIELDS})
_MISSING = object()
_OPENED, _RESOLVED = VALUE_FIELDS.index("queries_opened"), VALUE_FIELDS.index("queries_resolved")
MAX_LAG_DAYS = Decimal("99999.9")


@dataclass(frozen=True)
class UpsertResult:
    created: int
    updated: int
    unchanged: int


class MetricRowsInvalid(ValidationError):
    """Row errors as ``{row index: {field: message}}``; nothing was written."""

    def __init__(self, row_errors: dict[int, dict[str, str]]):
        self.row_errors = row_errors
        super().__init__(
            {
                str(index): [f"{field}: {message}" for field, message in fields.items()]
                for index, fields in row_errors.items()
            }
        )


def _parse_count(value) -> tuple[int | None, str | None]:
    # The common cases first (a CSV cell of digits, a JSON integer): 13 calls a row.
    if type(value) is str and value.isascii() and value.isdigit():
        return int(value), None
    if type(value) is int:
        return (value, None) if value >= 0 else (None, "Must not be negative.")
    if isinstance(value, bool):
        return None, "Must be a whole number."
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        return None, "Must be a whole number."
    if value < 0:
        return None, "Must not be negative."
    return value, None


def _parse_lag(value) -> tuple[Decimal | None, str | None]:
    if value is None or value == "":
        return None, None
    if isinstance(value, bool):
        return None, "Must be a number of days."
    try:
        lag = Decimal(str(value).strip())
    except InvalidOperation:
        return None, "Must be a number of days."
    if not lag.is_finite():
        return None, "Must be a number of days."
    if lag < 0:
        return None, "Must not be negative."
    if lag > MAX_LAG_DAYS:
        return None, "Too large."
    return lag.quantize(Decimal("0.1")), None


def _parse_period(value, latest: datetime.date) -> tuple[datetime.date | None, str | None]:
    match = PERIOD_PATTERN.match(value) if isinstance(value, str) else None
    if match is None or not 1 <= int(match[2]) <= 12 or int(match[1]) < 1900:
        return None, "Must be a month as YYYY-MM."
    period = datetime.date(int(match[1]), int(match[2]), 1)
    if period > latest:
        return None, "Must not be later than the current month."
    return period, None


def _parse_row(row, latest: datetime.date) -> tuple[dict, dict[str, str]]:
    """Types and ranges of one row; the study-site is resolved later, for all rows at once."""
    if not isinstance(row, dict):
        return {}, {"non_field_errors": "Each snapshot must be an object."}
    values, errors = {}, {}
    if unknown := row.keys() - ROW_FIELDS:
        for field in sorted(unknown):
            errors[field] = "Unknown field."
    study_site_id, error = _parse_count(row.get("study_site"))
    if "study_site" not in row:
        errors["study_site"] = "This field is required."
    elif error:
        errors["study_site"] = "Unknown study-site."
    values["study_site_id"] = study_site_id
    if "period" not in row:
        errors["period"] = "This field is required."
    else:
        values["period"], error = _parse_period(row["period"], latest)
        if error:
            errors["period"] = error
    for field in COUNT_FIELDS:
        value = row.get(field, _MISSING)
        # Inline fast path (13 counts a row): a CSV cell of digits or a JSON integer.
        if (type(value) is str and value.isdigit() and value.isascii()) or (
            type(value) is int and value >= 0
        ):
            values[field] = int(value)
            continue
        if value is _MISSING:
            errors[field] = "This field is required."
            continue
        values[field], error = _parse_count(value)
        if error:
            errors[field] = error
    values["data_entry_lag_days"], error = _parse_lag(row.get("data_entry_lag_days"))
    if error:
        errors["data_entry_lag_days"] = error
    for part, whole in (("screen_failures", "screened"), ("discontinued", "enrolled")):
        if part not in errors and whole not in errors and values[part] > values[whole]:
            errors[part] = f"Cannot exceed {whole.replace('_', ' ')} ({values[whole]})."
    return values, errors


def _check_cumulative_queries(
    rows: list[tuple[int, dict]], existing: dict[tuple[int, datetime.date], tuple]
) -> dict[int, str]:
    """Queries resolved so far must not exceed queries opened so far, month by month, with
    the upload's rows in place of the stored ones. Errors go to the upload row at or before
    the month where the totals first cross."""
    months: dict[int, dict[datetime.date, tuple[int, int, int | None]]] = defaultdict(dict)
    for (study_site_id, period), stored in existing.items():
        months[study_site_id][period] = (stored[_OPENED], stored[_RESOLVED], None)
    for index, values in rows:
        months[values["study_site_id"]][values["period"]] = (
            values["queries_opened"],
            values["queries_resolved"],
            index,
        )
    errors: dict[int, str] = {}
    for by_period in months.values():
        opened = resolved = 0
        last_uploaded = None
        for period in sorted(by_period):
            month_opened, month_resolved, index = by_period[period]
            opened, resolved = opened + month_opened, resolved + month_resolved
            last_uploaded = index if index is not None else last_uploaded
            if resolved > opened and last_uploaded is not None:
                errors.setdefault(
                    last_uploaded,
                    f"Queries resolved so far ({resolved}) exceed queries opened so far "
                    f"({opened}) by {period:%Y-%m}.",
                )
                break
    return errors


def metric_snapshots_upsert(*, actor, rows: list[dict], now=None) -> UpsertResult:
    """Validate every row, then insert or update all of them in one statement, or nothing.

    Each row needs a study-site the actor can see and may upload metrics for (an out-of-reach
    id reads "Unknown study-site.", like a missing one), a period ``YYYY-MM`` not later than
    the current month, non-negative whole counts that do not contradict each other (also
    cumulatively, for queries), and a (study-site, period) not repeated in the upload.
    Raises ``PermissionDenied`` when the actor may upload metrics for no study at all, and
    ``MetricRowsInvalid`` (a ``ValidationError``) with every row's errors. Rows equal to the
    stored ones are left untouched (``unchanged``).
    """
    now = now or timezone.now()
    writable_study_ids = metric_writable_study_ids(actor)
    if not writable_study_ids:
        raise PermissionDenied("You may not upload metrics.")
    if not isinstance(rows, list) or not rows:
        raise ValidationError({"non_field_errors": "Send a non-empty list of snapshots."})
    latest = timezone.localtime(now).date().replace(day=1)

    parsed = [_parse_row(row, latest) for row in rows]
    row_errors: dict[int, dict[str, str]] = {
        index: errors for index, (_, errors) in enumerate(parsed) if errors
    }
    requested_ids = {values["study_site_id"] for values, _ in parsed if values.get("study_site_id")}
    study_site_study = dict(
        study_sites_for_user(actor).filter(id__in=requested_ids).values_list("id", "study_id")
    )
    seen: dict[tuple[int, datetime.date], int] = {}
    valid: list[tuple[int, dict]] = []
    for index, (values, errors) in enumerate(parsed):
        study_site_id = values.get("study_site_id")
        if "study_site" not in errors and study_site_id not in study_site_study:
            errors["study_site"] = "Unknown study-site."
        elif "study_site" not in errors and study_site_study[study_site_id] not in (
            writable_study_ids
        ):
            errors["study_site"] = "You may not upload metrics for this study."
        key = (study_site_id, values.get("period"))
        if "study_site" not in errors and "period" not in errors:
            if key in seen:
                errors["period"] = f"Repeats row {seen[key]} (same study-site and period)."
            else:
                seen[key] = index
        if errors:
            row_errors[index] = errors
        else:
            valid.append((index, values))

    # The stored rows of those study-sites as tuples of VALUE_FIELDS (not model instances).
    existing = {
        (study_site_id, period): tuple(stored)
        for study_site_id, period, *stored in MetricSnapshot.objects.filter(
            study_site_id__in=set(study_site_study)
        ).values_list("study_site_id", "period", *VALUE_FIELDS)
    }
    for index, message in _check_cumulative_queries(valid, existing).items():
        row_errors.setdefault(index, {})["queries_resolved"] = message
    if row_errors:
        raise MetricRowsInvalid(dict(sorted(row_errors.items())))
    return _upsert(actor=actor, rows=[values for _, values in valid], existing=existing, now=now)


_UPSERT_COLUMNS = ("study_site_id", "period", *VALUE_FIELDS)
_ARRAY_TYPES = {"study_site_id": "bigint", "period": "date", "data_entry_lag_days": "numeric"}
# One INSERT ... SELECT FROM unnest(one array per column) ON CONFLICT DO UPDATE for the whole
# upload: the statement is the same size whatever the number of rows, and PostgreSQL does the
# row building that Django's bulk_create would do value by value.
_UPSERT_SQL = (  # Identifiers are the model's constants; every value is a parameter.
    f"INSERT INTO {MetricSnapshot._meta.db_table} "  # noqa: S608
    f"({', '.join(_UPSERT_COLUMNS)}, created_at, updated_at, updated_by_id) "
    "SELECT *, %s, %s, %s FROM unnest("
    + ", ".join(f"%s::{_ARRAY_TYPES.get(column, 'integer')}[]" for column in _UPSERT_COLUMNS)
    + ") ON CONFLICT (study_site_id, period) DO UPDATE SET "
    + ", ".join(
        f"{column} = EXCLUDED.{column}" for column in (*VALUE_FIELDS, "updated_at", "updated_by_id")
    )
)


def _array_literal(values) -> str:
    """A PostgreSQL array literal of validated numbers and dates (``{1,2,NULL}``): built as
    one string, it spares the driver adapting 100,000 values one by one."""
    return "{" + ",".join("NULL" if value is None else str(value) for value in values) + "}"


def _upsert(*, actor, rows: list[dict], existing: dict, now) -> UpsertResult:
    created = updated = 0
    changed = []
    for values in rows:
        stored = existing.get((values["study_site_id"], values["period"]))
        if stored is not None and stored == tuple(values[field] for field in VALUE_FIELDS):
            continue
        created, updated = (created + 1, updated) if stored is None else (created, updated + 1)
        changed.append(values)
    if changed:
        arrays = [
            _array_literal(values[column] for values in changed) for column in _UPSERT_COLUMNS
        ]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_UPSERT_SQL, [now, now, actor.pk, *arrays])
    return UpsertResult(created=created, updated=updated, unchanged=len(rows) - len(changed))


__all__ = ["MetricRowsInvalid", "UpsertResult", "metric_snapshots_upsert"]
