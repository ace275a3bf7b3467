"""Sponsor–CRO coordination: status updates, the meeting log and its action items.

The caller has resolved the study (or the action item) through a coordination selector, so
whatever reaches these services is in the actor's reach; they answer "may you?" with
``PermissionDenied`` and bad input with a ``ValidationError`` keyed by field. An action item's
errors are keyed ``action_items.<index>.<field>`` (``action_item_error_key``).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from trialhub.models import ActionItem, Engagement, Meeting, Study, StudyStatusUpdate
from trialhub.permissions import (
    READ_COORDINATION,
    WRITE_COORDINATION,
    coordination_capabilities,
    membership_of,
)

MAX_ACTION_ITEMS = 30


def action_item_error_key(index: int, field: str) -> str:
    """The key of an error on the ``index``-th (from 0) action item given to ``meeting_create``."""
    return f"action_items.{index}.{field}"


def _require_writer(actor, study: Study, today: datetime.date, what: str) -> None:
    if WRITE_COORDINATION not in coordination_capabilities(actor, study, today):
        raise PermissionDenied(
            f"Only the sponsor lead, the CRO project manager or an organisation admin {what}."
        )


@transaction.atomic
def status_update_create(
    *,
    study: Study,
    actor,
    period_start: datetime.date,
    period_end: datetime.date,
    highlights: str,
    risks: str = "",
    asks: str = "",
    now: datetime.datetime | None = None,
) -> StudyStatusUpdate:
    """Record a status update on the study for a period that has begun, authored by ``actor``
    for their organisation (a coordination writer; ``PermissionDenied`` otherwise)."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    _require_writer(actor, study, today, "posts status updates")
    errors: dict[str, str] = {}
    if not highlights.strip():
        errors["highlights"] = "Say what happened in the period."
    if period_end < period_start:
        errors["period_end"] = "The period ends before it starts."
    if period_start > today:
        errors["period_start"] = "A status update reports on a period that has begun."
    if errors:
        raise ValidationError(errors)
    return StudyStatusUpdate.objects.create(
        study=study,
        period_start=period_start,
        period_end=period_end,
        highlights=highlights.strip(),
        risks=risks.strip(),
        asks=asks.strip(),
        author=actor,
        author_organization=membership_of(actor).organization,
        created_at=now,
    )


def _owner_organization_ids(study: Study) -> set[int]:
    cros = Engagement.objects.filter(study=study).values_list("cro_id", flat=True)
    return {study.sponsor_id, *cros}


def _action_item_errors(
    index: int, item: Mapping[str, Any], held_on: datetime.date, organization_ids: set[int]
) -> dict[str, str]:
    errors = {}
    if not str(item.get("description") or "").strip():
        errors["description"] = "Say what is to be done."
    owner = item.get("owner")
    owner_membership = membership_of(owner) if owner is not None else None
    if owner is None:
        errors["owner"] = "Choose who owns this action item."
    elif (
        not owner.is_active
        or owner_membership is None
        or owner_membership.organization_id not in organization_ids
    ):
        errors["owner"] = "The owner must work for the sponsor or a CRO engaged on the study."
    due_date = item.get("due_date")
    if due_date is None:
        errors["due_date"] = "Give a due date."
    elif due_date < held_on:
        errors["due_date"] = "The due date comes before the meeting."
    return {action_item_error_key(index, field): message for field, message in errors.items()}


@transaction.atomic
def meeting_create(
    *,
    study: Study,
    actor,
    held_on: datetime.date,
    title: str,
    attendees: str = "",
    notes: str = "",
    action_items: Sequence[Mapping[str, Any]] = (),
    now: datetime.datetime | None = None,
) -> Meeting:
    """Log a meeting that has taken place with its action items, all or nothing.

    ``action_items`` are mappings of ``description``, ``owner`` (a user of the study's sponsor
    or an engaged CRO) and ``due_date`` (not before the meeting); their errors are keyed by
    ``action_item_error_key``. Only coordination writers log meetings."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    _require_writer(actor, study, today, "logs meetings")
    errors: dict[str, str] = {}
    if not title.strip():
        errors["title"] = "Give the meeting a title."
    if held_on > today:
        errors["held_on"] = "A meeting is logged once it has taken place."
    if len(action_items) > MAX_ACTION_ITEMS:
        errors["action_items"] = f"At most {MAX_ACTION_ITEMS} action items per meeting."
    organization_ids = _owner_organization_ids(study)
    for index, item in enumerate(action_items):
        errors |= _action_item_errors(index, item, held_on, organization_ids)
    if errors:
        raise ValidationError(errors)
    meeting = Meeting.objects.create(
        study=study,
        held_on=held_on,
        title=title.strip(),
        attendees=attendees.strip(),
        notes=notes.strip(),
        recorded_by=actor,
        recorded_by_organization=membership_of(actor).organization,
        created_at=now,
    )
    ActionItem.objects.bulk_create(
        ActionItem(
            meeting=meeting,
            description=str(item["description"]).strip(),
            owner=item["owner"],
            due_date=item["due_date"],
        )
        for item in action_items
    )
    return meeting


def may_set_done(actor, action_item: ActionItem, capabilities: frozenset[str]) -> bool:
    """Whether ``actor``, with these coordination capabilities on the item's study, may mark
    the item done or undone: any writer, and its owner while they read the study."""
    if WRITE_COORDINATION in capabilities:
        return True
    return READ_COORDINATION in capabilities and action_item.owner_id == actor.pk


@transaction.atomic
def action_item_set_done(
    *, action_item: ActionItem, actor, done: bool, now: datetime.datetime | None = None
) -> ActionItem:
    """Mark an action item done (recording who and when) or open again. Setting the state it
    already has changes nothing, so a double submit keeps the first time."""
    now = now or timezone.now()
    item = (
        ActionItem.objects.select_for_update(of=("self",))
        .select_related("meeting__study", "owner__membership__organization", "done_by")
        .get(pk=action_item.pk)
    )
    capabilities = coordination_capabilities(actor, item.meeting.study, timezone.localdate(now))
    if not may_set_done(actor, item, capabilities):
        raise PermissionDenied("Only the owner or a study writer may mark this action item.")
    if item.done == done:
        return item
    item.done = done
    item.done_at = now if done else None
    item.done_by = actor if done else None
    item.save(update_fields=["done", "done_at", "done_by"])
    return item
