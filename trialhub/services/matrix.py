"""The responsibility matrix: validated as a whole, written atomically, every change audited."""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Iterable, Mapping
from functools import reduce
from operator import or_

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from trialhub.models import (
    Area,
    MatrixChange,
    MatrixRevision,
    Raci,
    ResponsibilityEntry,
    Study,
)
from trialhub.permissions import EDIT_MATRIX, has_study_permission
from trialhub.selectors import study_parties

Cell = tuple[str, int]  # (area, organisation id)


def responsibility_matrix_validate(*, study: Study, entries: Iterable[Mapping]) -> dict[Cell, str]:
    """Check a whole matrix and return it as {(area, organisation id): code}.

    Every party (the sponsor and each engaged CRO) needs exactly one code per area, and each
    area exactly one Accountable party. Raises ``ValidationError`` keyed by ``entries`` (for
    malformed rows) and by area slug (for rule breaks in that area's row).
    """
    party_ids = {party.id: party.name for party in study_parties(study)}
    errors: dict[str, list[str]] = {}
    cells: dict[Cell, str] = {}
    for position, entry in enumerate(entries, start=1):
        area, organization, code = (entry.get(key) for key in ("area", "organization", "code"))
        problem = None
        if area not in Area.values:
            problem = f"unknown area {area!r}"
        elif organization not in party_ids:
            problem = f"organisation {organization!r} is not a party of this study"
        elif code not in Raci.values:
            problem = f"code must be one of R, A, C, I, not {code!r}"
        elif (area, organization) in cells:
            problem = f"{party_ids[organization]} has two codes for {area}"
        if problem:
            errors.setdefault("entries", []).append(f"Entry {position}: {problem}.")
        else:
            cells[(area, organization)] = code
    for area in Area.values:
        area_errors = [
            f"{name} has no code."
            for party_id, name in party_ids.items()
            if (area, party_id) not in cells
        ]
        accountable = Counter(code for (cell_area, _), code in cells.items() if cell_area == area)[
            Raci.ACCOUNTABLE
        ]
        if accountable != 1:
            area_errors.append(f"Exactly one party must be Accountable; {accountable} are.")
        if area_errors:
            errors[area] = area_errors
    if errors:
        raise ValidationError(errors)
    return cells


@transaction.atomic
def responsibility_matrix_set(
    *,
    study: Study,
    entries: Iterable[Mapping],
    actor,
    note: str = "",
    now: datetime.datetime | None = None,
) -> MatrixRevision | None:
    """Replace the study's whole matrix (sponsor lead only) and record who changed which cell.

    Nothing is written unless the whole matrix is valid. Returns the new revision, or None
    when nothing changed. Raises ``PermissionDenied`` for a user who may see but not edit.
    """
    if not has_study_permission(actor, EDIT_MATRIX, study):
        raise PermissionDenied("Only the sponsor lead can change the responsibility matrix.")
    Study.objects.select_for_update().filter(pk=study.pk).first()  # one writer at a time
    wanted = responsibility_matrix_validate(study=study, entries=entries)
    current = {
        (entry.area, entry.organization_id): entry.code
        for entry in ResponsibilityEntry.objects.filter(study=study)
    }
    changed = sorted(
        cell for cell in wanted.keys() | current.keys() if wanted.get(cell) != current.get(cell)
    )
    if not changed:
        return None
    # Delete before insert so the one-Accountable index never sees two A's mid-way.
    ResponsibilityEntry.objects.filter(study=study).filter(
        reduce(or_, (Q(area=area, organization_id=org_id) for area, org_id in changed))
    ).delete()
    ResponsibilityEntry.objects.bulk_create(
        ResponsibilityEntry(study=study, area=area, organization_id=organization_id, code=code)
        for (area, organization_id), code in wanted.items()
        if (area, organization_id) in changed
    )
    revision = MatrixRevision.objects.create(
        study=study, changed_by=actor, note=note, changed_at=now or timezone.now()
    )
    MatrixChange.objects.bulk_create(
        MatrixChange(
            revision=revision,
            area=area,
            organization_id=organization_id,
            old_code=current.get((area, organization_id), ""),
            new_code=wanted.get((area, organization_id), ""),
        )
        for area, organization_id in changed
    )
    return revision
