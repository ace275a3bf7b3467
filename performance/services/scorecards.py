"""Scorecard writes: a study's settings, and quarterly recognitions and their announcement."""

from __future__ import annotations

import datetime
import math
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from comms.models import Message
from comms.services import message_draft_create, message_send
from performance.models import Recognition, ScorecardConfig
from performance.permissions import can_manage_scorecard
from performance.scorecards import (
    DEFAULT_KPI_SETTINGS,
    EDITABLE_FIELDS,
    HIGHER,
    effective_settings,
    study_scorecard,
)
from trialhub.models import Study

MAX_WEIGHT = 10


def _check_manager(actor, study: Study) -> None:
    if not can_manage_scorecard(actor, study):
        raise PermissionDenied("Only the study's sponsor lead changes its scorecard.")


def _setting_errors(slug: str, values: dict) -> list[str]:
    default = DEFAULT_KPI_SETTINGS[slug]
    errors = []
    unknown = set(values) - set(EDITABLE_FIELDS)
    if unknown:
        errors.append(f"unknown settings: {', '.join(sorted(unknown))}")
    merged = {field: values.get(field, getattr(default, field)) for field in EDITABLE_FIELDS}
    if not isinstance(merged["enabled"], bool):
        errors.append("enabled must be true or false")
    for name in ("weight", "green", "red"):
        if isinstance(merged[name], bool) or not isinstance(merged[name], int | float):
            errors.append(f"{name} must be a number")
    if isinstance(merged["minimum_samples"], bool) or not isinstance(
        merged["minimum_samples"], int
    ):
        errors.append("minimum samples must be a whole number")
    if errors:
        return errors
    if not 0 <= merged["weight"] <= MAX_WEIGHT:
        errors.append(f"weight must be between 0 and {MAX_WEIGHT}")
    if merged["minimum_samples"] < 0:
        errors.append("minimum samples cannot be negative")
    if merged["green"] < 0 or merged["red"] < 0:
        errors.append("thresholds cannot be negative")
    if default.better == HIGHER and not merged["green"] > merged["red"]:
        errors.append("higher is better here: the green threshold must be above the red one")
    if default.better != HIGHER and not merged["green"] < merged["red"]:
        errors.append("lower is better here: the green threshold must be below the red one")
    return errors


def scorecard_config_update(
    *,
    study: Study,
    actor,
    kpis: dict[str, dict],
    minimum_kpis: int,
    now: datetime.datetime | None = None,
) -> ScorecardConfig:
    """Replace the study's scorecard settings (its sponsor lead only: ``PermissionDenied``).

    ``kpis`` maps KPI slugs to any of ``enabled``, ``weight``, ``green``, ``red`` and
    ``minimum_samples``; what is left out keeps its default, and only what differs from the
    defaults is stored. ``ValidationError`` keyed by KPI slug (and ``minimum_kpis``); nothing
    is written unless everything is valid.
    """
    _check_manager(actor, study)
    errors: dict[str, list[str]] = {}
    if not isinstance(kpis, dict):
        raise ValidationError({"kpis": "Give the settings as an object keyed by KPI."})
    for slug, values in kpis.items():
        if slug not in DEFAULT_KPI_SETTINGS:
            errors[str(slug)] = ["unknown KPI"]
        elif not isinstance(values, dict):
            errors[slug] = ["give the KPI's settings as an object"]
        elif problems := _setting_errors(slug, values):
            errors[slug] = problems
    if isinstance(minimum_kpis, bool) or not isinstance(minimum_kpis, int) or minimum_kpis < 1:
        errors["minimum_kpis"] = ["must be a whole number, at least 1"]
    if errors:
        raise ValidationError(errors)
    stored = {}
    for slug, values in kpis.items():
        default = DEFAULT_KPI_SETTINGS[slug]
        changed = {k: v for k, v in values.items() if v != getattr(default, k)}
        if changed:
            stored[slug] = changed
    settings = effective_settings(ScorecardConfig(kpis=stored, minimum_kpis=minimum_kpis))
    if not settings.counted:
        raise ValidationError({"kpis": ["count at least one KPI with a weight above 0"]})
    if minimum_kpis > len(settings.counted):
        raise ValidationError(
            {"minimum_kpis": [f"only {len(settings.counted)} KPIs count: ask for at most that"]}
        )
    with transaction.atomic():
        config, _ = ScorecardConfig.objects.update_or_create(
            study=study,
            defaults={
                "kpis": stored,
                "minimum_kpis": minimum_kpis,
                "updated_at": now or timezone.now(),
                "updated_by": actor,
            },
        )
    return config


def quarter_start(day: datetime.date) -> datetime.date:
    return datetime.date(day.year, (day.month - 1) // 3 * 3 + 1, 1)


def quarter_label(quarter: datetime.date) -> str:
    return f"Q{(quarter.month - 1) // 3 + 1} {quarter.year}"


def recognitions_award(*, study: Study, quarter: datetime.date) -> list[Recognition]:
    """Recognise the top quartile of the study's scored sites at the quarter's last month.

    The quartile is ``ceil(scored sites / 4)`` places; a site tied with the last of them is
    recognised too. Sites without a composite (too little data) take no place. Re-running
    for a quarter replaces its unannounced recognitions (the numbers may have been
    re-uploaded); announced ones stay as they were said.
    """
    quarter = quarter_start(quarter)
    last_month = datetime.date(quarter.year, quarter.month + 2, 1)
    card = study_scorecard(study=study, period=last_month)
    scored = [row for row in card.rows if row.rank is not None]
    places = math.ceil(len(scored) / 4)
    top = [row for row in scored if row.rank <= places]
    with transaction.atomic():
        existing = Recognition.objects.select_for_update().filter(
            study_site__study=study, quarter=quarter
        )
        announced = {r.study_site_id for r in existing if r.announced_at is not None}
        existing.filter(announced_at__isnull=True).delete()
        Recognition.objects.bulk_create(
            [
                Recognition(
                    study_site_id=row.study_site_id,
                    quarter=quarter,
                    score=Decimal(str(row.score)),
                    rank=row.rank,
                    sites_ranked=len(scored),
                )
                for row in top
                if row.study_site_id not in announced
            ]
        )
    return list(
        Recognition.objects.filter(study_site__study=study, quarter=quarter).select_related(
            "study_site__site"
        )
    )


def recognitions_award_due(*, today: datetime.date) -> int:
    """Award the last complete quarter's recognitions on every study with snapshots in it
    (the daily beat task; idempotent, so late re-uploads of that quarter are picked up until
    the sponsor announces). Returns the number of recognitions standing for that quarter."""
    last_quarter = quarter_start(quarter_start(today) - datetime.timedelta(days=1))
    quarter_end = datetime.date(last_quarter.year, last_quarter.month + 2, 1)
    studies = Study.objects.filter(
        study_sites__metric_snapshots__period__gte=last_quarter,
        study_sites__metric_snapshots__period__lte=quarter_end,
    ).distinct()
    return sum(len(recognitions_award(study=study, quarter=last_quarter)) for study in studies)


def recognitions_announce(
    *, study: Study, quarter: datetime.date, actor, now: datetime.datetime | None = None
) -> Message:
    """Tell the recognised sites of a quarter (only them: other sites never learn who was
    recognised) with an info-tier ``recognition`` message from the sponsor lead.

    ``PermissionDenied`` for anyone but the study's sponsor lead; ``ValidationError`` when the
    quarter has no unannounced recognition.
    """
    _check_manager(actor, study)
    now = now or timezone.now()
    quarter = quarter_start(quarter)
    with transaction.atomic():
        pending = list(
            Recognition.objects.select_for_update()
            .filter(study_site__study=study, quarter=quarter, announced_at__isnull=True)
            .order_by("rank")
        )
        if not pending:
            raise ValidationError({"quarter": "There is no recognition left to announce."})
        label = quarter_label(quarter)
        message = message_draft_create(
            actor=actor,
            study=study,
            audience={"study_sites": [r.study_site_id for r in pending]},
            category="recognition",
            subject=f"{study.code}: your site is in the top quartile for {label}",
            body=(
                f"Thank you. Your site's scorecard on {study.code} placed it among the top "
                f"quarter of the study's sites for {label}. Your recognition is on your "
                "site's scorecard page in TrialHub."
            ),
            dedup_key=f"recognition-{study.id}-{quarter:%Y-%m}",
            now=now,
        )
        message = message_send(message=message, actor=actor, now=now)
        for recognition in pending:
            recognition.announcement, recognition.announced_at = message, now
        Recognition.objects.bulk_update(pending, ["announcement", "announced_at"])
    return message


__all__ = [
    "quarter_label",
    "quarter_start",
    "recognitions_announce",
    "recognitions_award",
    "recognitions_award_due",
    "scorecard_config_update",
]
