"""Celery tasks of the tenancy core: thin wrappers over services."""

from __future__ import annotations

import datetime

from celery import shared_task
from django.utils import timezone

from trialhub.models import RoleAssignment
from trialhub.services import object_permissions_sync


@shared_task(name="trialhub.tasks.role_permissions_sync")
def role_permissions_sync(days: int = 2) -> int:
    """Bring object permissions in line with assignments that started or ended recently
    (future-dated starts and ends take effect without anyone touching them). Returns the
    number of (user, study) pairs synced."""
    today = timezone.localdate()
    since = today - datetime.timedelta(days=days)
    pairs = (
        RoleAssignment.objects.filter(start_date__range=(since, today))
        .union(RoleAssignment.objects.filter(end_date__range=(since, today)))
        .values_list("user_id", "study_id")
    )
    synced = 0
    for user_id, study_id in set(pairs):
        assignment = (
            RoleAssignment.objects.select_related("user", "study")
            .filter(user_id=user_id, study_id=study_id)
            .first()
        )
        object_permissions_sync(user=assignment.user, study=assignment.study)
        synced += 1
    return synced
