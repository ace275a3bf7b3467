"""Celery tasks of performance: thin wrappers over ``performance.services``."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from performance.services.scorecards import recognitions_award_due


@shared_task(name="performance.tasks.award_recognitions")
def award_recognitions() -> int:
    """Daily: the last complete quarter's top-quartile recognitions, on every study."""
    return recognitions_award_due(today=timezone.localdate())
