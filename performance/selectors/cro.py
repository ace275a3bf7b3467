"""The CRO scorecard with tenancy applied: the sponsor's view of its engaged CROs.

A study's sponsor people see every CRO engaged on it; a CRO's people see only their own
CRO's row, on studies they are engaged on; site people and everyone else get 404. The track
record (every study of the sponsor, CROs side by side) is for sponsor people only.
"""

from __future__ import annotations

import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.http import Http404

from performance.cro import CroScore, cro_scores, engaged_cros
from trialhub.models import OrganizationKind, Study
from trialhub.permissions import membership_of
from trialhub.selectors import studies_for_user, study_for_user

VIEWER_KINDS = frozenset({OrganizationKind.SPONSOR, OrganizationKind.CRO})


def cro_scorecard_for_user(
    user: AbstractBaseUser | None, study_id: int | str, *, now: datetime.datetime
) -> tuple[Study, list[CroScore]]:
    membership = membership_of(user)
    if membership is None or membership.organization.kind not in VIEWER_KINDS:
        raise Http404("No such study.")
    study = study_for_user(user, study_id)
    cros = engaged_cros([study])
    if membership.organization.kind == OrganizationKind.CRO:
        cros = [cro for cro in cros if cro.id == membership.organization_id]
    return study, cro_scores(studies=[study], cros=cros, now=now)


def cro_track_record_for_user(
    user: AbstractBaseUser | None, *, now: datetime.datetime
) -> tuple[list[Study], list[CroScore]]:
    """Every CRO engaged on the sponsor's studies the user sees, each over the studies it
    shares with the sponsor; 404 for anyone but sponsor people."""
    membership = membership_of(user)
    if membership is None or membership.organization.kind != OrganizationKind.SPONSOR:
        raise Http404("No track record here.")
    studies = list(studies_for_user(user).order_by("code"))
    return studies, cro_scores(studies=studies, cros=engaged_cros(studies), now=now)


__all__ = ["cro_scorecard_for_user", "cro_track_record_for_user"]
