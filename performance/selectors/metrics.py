"""Reads of metric snapshots with tenancy applied (see ``sites.selectors``)."""

from __future__ import annotations

import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from performance.models import MetricSnapshot
from sites.selectors import study_sites_for_user


def metric_snapshots_for_user(
    user: AbstractBaseUser | None,
    *,
    study_id: int | None = None,
    study_site_id: int | None = None,
    period: datetime.date | None = None,
) -> QuerySet[MetricSnapshot]:
    """Snapshots of the study-sites the user can see: sponsor and CRO people of a study see
    all its sites' rows, a site's people their own study-sites' rows, anyone else nothing."""
    snapshots = MetricSnapshot.objects.filter(
        study_site__in=study_sites_for_user(user).values("id")
    )
    if study_id is not None:
        snapshots = snapshots.filter(study_site__study_id=study_id)
    if study_site_id is not None:
        snapshots = snapshots.filter(study_site_id=study_site_id)
    if period is not None:
        snapshots = snapshots.filter(period=period)
    return snapshots.select_related("study_site").order_by("study_site_id", "period")
