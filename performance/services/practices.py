"""Writes of the best-practices library: contributing a note, publishing it to the sponsor's
studies (an info-tier newsletter line in the sites' digests, sent through ``comms``) and
withdrawing a proposed one.

Who may contribute where is ``performance.selectors.practices.practice_sponsor_choices``;
who may publish to which study is ``practice_publishable_studies``.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from comms.models import Category, Message
from comms.services import message_draft_create, message_send
from performance.models import PracticeNote, PracticeStatus
from performance.selectors.practices import (
    practice_publishable_studies,
    practice_sponsor_choices,
)
from trialhub.models import Organization, Study
from trialhub.permissions import membership_of

MAX_TAGS = 8
TAG_MAX_LENGTH = PracticeNote._meta.get_field("tags").base_field.max_length
TITLE_MAX_LENGTH = PracticeNote._meta.get_field("title").max_length
BODY_MAX_LENGTH = PracticeNote._meta.get_field("body").max_length
AREA_MAX_LENGTH = PracticeNote._meta.get_field("therapeutic_area").max_length
SUBJECT_MAX_LENGTH = Message._meta.get_field("subject").max_length
SUBJECT_PREFIX = "Best practice: "
# The comms category a publication goes out as: info tier, digest only (PRODUCT.md tiers).
PUBLICATION_CATEGORY = Category.NEWSLETTER
PUBLICATION_AUDIENCE = {"all_sites": True}


def practice_tags_normalise(tags: Iterable[str] | str) -> list[str]:
    """Tags as stored: each stripped, inner spaces collapsed, lower-case; empty ones dropped,
    repeats kept once, in the order given. A string is split on commas. Raises
    ``ValidationError`` on ``tags`` for more than 8 or one longer than 40 characters."""
    if isinstance(tags, str):
        tags = tags.split(",")
    normalised: list[str] = []
    for tag in tags:
        tag = " ".join(str(tag).split()).lower()
        if tag and tag not in normalised:
            normalised.append(tag)
    too_long = [tag for tag in normalised if len(tag) > TAG_MAX_LENGTH]
    if too_long:
        raise ValidationError(
            {"tags": f"Keep each tag within {TAG_MAX_LENGTH} characters ({too_long[0][:20]}…)."}
        )
    if len(normalised) > MAX_TAGS:
        raise ValidationError({"tags": f"Give at most {MAX_TAGS} tags."})
    return normalised


@transaction.atomic
def practice_note_create(
    *,
    actor,
    sponsor: Organization,
    title: str,
    body: str,
    therapeutic_area: str = "",
    tags: Iterable[str] | str = (),
    now: datetime.datetime | None = None,
) -> PracticeNote:
    """Contribute a note to ``sponsor``'s library, as ``actor``'s organisation. It always
    starts proposed, whoever wrote it: the sponsor publishes it with ``practice_note_publish``.

    ``sponsor`` must be one of ``practice_sponsor_choices(actor)`` (the sponsor's own people;
    a CRO it engages; a recognised site working on its studies). Raises ``ValidationError``
    keyed by ``sponsor``, ``title``, ``body``, ``therapeutic_area`` or ``tags``.
    """
    now = now or timezone.now()
    errors: dict[str, str] = {}
    membership = membership_of(actor)
    if membership is None or not practice_sponsor_choices(actor).filter(pk=sponsor.pk).exists():
        errors["sponsor"] = "You cannot contribute to this sponsor's library."
    title, body, therapeutic_area = title.strip(), body.strip(), therapeutic_area.strip()
    if not title:
        errors["title"] = "Give the practice a title."
    elif len(title) > TITLE_MAX_LENGTH:
        errors["title"] = f"Keep the title within {TITLE_MAX_LENGTH} characters."
    if not body:
        errors["body"] = "Describe the practice."
    elif len(body) > BODY_MAX_LENGTH:
        errors["body"] = f"Keep the text within {BODY_MAX_LENGTH} characters."
    if len(therapeutic_area) > AREA_MAX_LENGTH:
        errors["therapeutic_area"] = f"Keep the area within {AREA_MAX_LENGTH} characters."
    try:
        tags = practice_tags_normalise(tags)
    except ValidationError as error:
        errors.update({field: messages[0] for field, messages in error.message_dict.items()})
    if errors:
        raise ValidationError(errors)
    return PracticeNote.objects.create(
        sponsor=sponsor,
        title=title,
        body=body,
        therapeutic_area=therapeutic_area,
        tags=tags,
        author=actor,
        author_organization=membership.organization,
        status=PracticeStatus.PROPOSED,
        created_at=now,
    )


@dataclass(frozen=True)
class PracticePublication:
    """What ``practice_note_publish`` did: the note, and one comms message per study newly
    published to (``sent``, or ``pending_approval`` when the matrix routes it for approval)."""

    note: PracticeNote
    messages: list[Message]


def practice_message_wording(note: PracticeNote) -> tuple[str, str]:
    """The subject and body of the message announcing ``note`` to a study's sites."""
    subject = f"{SUBJECT_PREFIX}{note.title}"
    if len(subject) > SUBJECT_MAX_LENGTH:
        subject = subject[: SUBJECT_MAX_LENGTH - 1].rstrip() + "…"
    path = reverse("practice-detail", args=[note.pk])
    return subject, f"{note.body}\n\nRead it in the practice library: {path}"


@transaction.atomic
def practice_note_publish(
    *,
    note: PracticeNote,
    actor,
    studies: Iterable[Study],
    now: datetime.datetime | None = None,
) -> PracticePublication:
    """Publish ``note`` to ``studies`` (at least one, all of the note's sponsor) and tell
    each study's sites: one ``newsletter`` message (info tier, so a digest line, never a
    message of its own) per study to ``{"all_sites": true}``, written and sent by ``actor``
    through ``comms`` (``message_draft_create`` then ``message_send``), so routing and
    approval apply as to any message.

    Only the sponsor's organisation admins, or its sponsor leads on each of ``studies``,
    publish (``PermissionDenied`` otherwise). The first call sets the status, ``published_at``
    and ``published_by``; a later call adds further studies and tells only their sites —
    a study the note is published to already is a ``studies`` error, so nothing is sent
    twice. A study whose sites nobody would receive the message is a ``studies`` error too;
    nothing is half-written.
    """
    now = now or timezone.now()
    note = PracticeNote.objects.select_for_update().get(pk=note.pk)
    membership = membership_of(actor)
    if membership is None or membership.organization_id != note.sponsor_id:
        raise PermissionDenied("Only the sponsor publishes its practice notes.")
    studies = sorted(set(studies), key=lambda study: study.code)
    if not studies:
        raise ValidationError({"studies": "Choose at least one study."})
    foreign = [study.code for study in studies if study.sponsor_id != note.sponsor_id]
    if foreign:
        raise ValidationError(
            {"studies": f"Not a study of {note.sponsor.name}: {', '.join(foreign)}."}
        )
    allowed = set(
        practice_publishable_studies(actor, note, timezone.localdate(now)).values_list(
            "pk", flat=True
        )
    )
    if any(study.pk not in allowed for study in studies):
        raise PermissionDenied("Only the sponsor lead of each study publishes to it.")
    already = set(note.published_studies.values_list("pk", flat=True))
    repeated = [study.code for study in studies if study.pk in already]
    if repeated:
        raise ValidationError({"studies": f"Already published to {', '.join(repeated)}."})
    if note.status != PracticeStatus.PUBLISHED:
        note.status = PracticeStatus.PUBLISHED
        note.published_at = now
        note.published_by = actor
        note.save(update_fields=["status", "published_at", "published_by"])
    note.published_studies.add(*studies)
    subject, body = practice_message_wording(note)
    sent = [
        _announce(note=note, study=study, actor=actor, subject=subject, body=body, now=now)
        for study in studies
    ]
    return PracticePublication(note=note, messages=sent)


def _announce(*, note, study: Study, actor, subject: str, body: str, now) -> Message:
    try:
        message = message_draft_create(
            actor=actor,
            study=study,
            audience=PUBLICATION_AUDIENCE,
            category=PUBLICATION_CATEGORY,
            subject=subject,
            body=body,
            now=now,
        )
        return message_send(message=message, actor=actor, now=now)
    except ValidationError as error:
        # The caller chose studies, not a message: report the problem under ``studies``.
        problems = "; ".join(error.messages)
        raise ValidationError({"studies": f"{study.code}: {problems}"}) from error


@transaction.atomic
def practice_note_withdraw(*, note: PracticeNote, actor) -> None:
    """Delete a proposed note, by a person of the organisation that contributed it
    (``PermissionDenied`` for anyone else). A published note stays: ``ValidationError``."""
    note = PracticeNote.objects.select_for_update().get(pk=note.pk)
    membership = membership_of(actor)
    if membership is None or membership.organization_id != note.author_organization_id:
        raise PermissionDenied("Only the organisation that contributed a note withdraws it.")
    if note.status != PracticeStatus.PROPOSED:
        raise ValidationError({"status": "A published note cannot be withdrawn."})
    note.delete()
