"""A message's audience: its JSON shape, and the people it reaches at send time."""

from __future__ import annotations

import datetime
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from sites.models import StudySite
from trialhub.models import RoleAssignment, Study, StudyRole

AUDIENCE_SCOPES = ("study_sites", "all_sites", "countries")
# The site roles an audience may name, in display order; without "roles" it reaches both.
AUDIENCE_ROLES = (StudyRole.SITE_COORDINATOR, StudyRole.PRINCIPAL_INVESTIGATOR)
NO_RECIPIENTS = "No one in this audience holds a site role yet."


class Recipient(NamedTuple):
    user_id: int
    study_site_id: int
    email: str


def _invalid(text: str) -> ValidationError:
    return ValidationError({"audience": text})


def audience_validate(*, study: Study, audience) -> dict:
    """Check an audience against PRODUCT.md's shape and return it normalised.

    Exactly one of ``{"study_sites": [ids]}``, ``{"all_sites": true}``,
    ``{"countries": ["DE", ...]}``, optionally with ``"roles"`` (a subset of the site roles).
    Study-site ids must belong to ``study``; an id of another study or tenant gets the same
    answer as one that does not exist. Raises ``ValidationError`` keyed by ``audience``.
    """
    if not isinstance(audience, dict):
        raise _invalid("Give an object with study_sites, all_sites or countries.")
    unknown = sorted(set(audience) - {*AUDIENCE_SCOPES, "roles"})
    if unknown:
        raise _invalid(f"Unknown audience keys: {', '.join(map(str, unknown))}.")
    scopes = [scope for scope in AUDIENCE_SCOPES if scope in audience]
    if len(scopes) != 1:
        raise _invalid("Choose exactly one of study_sites, all_sites or countries.")
    scope, value = scopes[0], audience[scopes[0]]
    if scope == "all_sites":
        if value is not True:
            raise _invalid("all_sites must be true.")
        normalised: dict = {"all_sites": True}
    elif scope == "study_sites":
        normalised = {"study_sites": _study_site_ids(study, value)}
    else:
        normalised = {"countries": _countries(value)}
    if "roles" in audience:
        roles = audience["roles"]
        if (
            not isinstance(roles, list)
            or not roles
            or not all(isinstance(role, str) for role in roles)
            or not set(roles) <= set(AUDIENCE_ROLES)
        ):
            raise _invalid(f"roles is a non-empty list of {' and '.join(AUDIENCE_ROLES)}.")
        normalised["roles"] = [role.value for role in AUDIENCE_ROLES if role in roles]
    return normalised


def _study_site_ids(study: Study, value) -> list[int]:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(item, int) and not isinstance(item, bool) for item in value)
    ):
        raise _invalid("study_sites is a non-empty list of study-site ids.")
    ids = sorted(set(value))
    found = set(StudySite.objects.filter(study=study, id__in=ids).values_list("id", flat=True))
    foreign = [str(item) for item in ids if item not in found]
    if foreign:
        raise _invalid(f"Not a study-site of {study.code}: {', '.join(foreign)}.")
    return ids


def _countries(value) -> list[str]:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(code, str) and len(code) == 2 and code.isalpha() for code in value)
    ):
        raise _invalid("countries is a non-empty list of two-letter ISO codes, e.g. DE.")
    return sorted({code.upper() for code in value})


def audience_assignments(
    *, study_id: int, audience: dict, on: datetime.date
) -> QuerySet[RoleAssignment]:
    """Site-role assignments active ``on`` that the audience reaches (one user may hold several)."""
    assignments = RoleAssignment.objects.active(on).filter(
        study_id=study_id,
        role__in=audience.get("roles") or AUDIENCE_ROLES,
        study_site__isnull=False,
        user__is_active=True,
    )
    if "study_sites" in audience:
        assignments = assignments.filter(study_site_id__in=audience["study_sites"])
    elif "countries" in audience:
        assignments = assignments.filter(study_site__site__country__in=audience["countries"])
    return assignments


def audience_recipients(*, study_id: int, audience: dict, on: datetime.date) -> list[Recipient]:
    """Distinct people the audience reaches ``on``, each with the study-site (the lowest id,
    when they hold roles at several) through which they are reached. One query."""
    rows = (
        audience_assignments(study_id=study_id, audience=audience, on=on)
        .order_by("user_id", "study_site_id")
        .distinct("user_id")
        .values_list("user_id", "study_site_id", "user__email")
    )
    return [Recipient(*row) for row in rows]
