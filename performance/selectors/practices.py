"""Reads of the best-practices library with tenancy applied (PRODUCT.md "Performance":
sponsors, CROs and recognised sites contribute; the sponsor publishes; "sites see the notes of
the sponsors they work with").

Reach is by organisation, not by study role: the library belongs to a sponsor, not to one of
its studies. With no user, no membership or an anonymous user every function returns nothing.
"""

from __future__ import annotations

import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone

from performance.models import PracticeNote, PracticeStatus, Recognition
from sites.models import StudySite
from trialhub.models import (
    Engagement,
    Organization,
    OrganizationKind,
    RoleAssignment,
    Study,
    StudyRole,
)
from trialhub.permissions import membership_of
from trialhub.selectors import studies_for_user

# Roles whose holders publish their sponsor's notes to a study (organisation admins may too).
PUBLISHER_ROLES = frozenset({StudyRole.SPONSOR_LEAD})


def _partner_sponsor_ids(organization: Organization) -> QuerySet:
    """Ids of the sponsors an organisation works with: those engaging a CRO on some study,
    those whose studies a site takes part in; for a sponsor, itself."""
    if organization.kind == OrganizationKind.SPONSOR:
        return Organization.objects.filter(pk=organization.pk).values("pk")
    if organization.kind == OrganizationKind.CRO:
        return Engagement.objects.filter(cro=organization).values("study__sponsor_id")
    return StudySite.objects.filter(site__organization=organization).values("study__sponsor_id")


def practice_sponsor_choices(user: AbstractBaseUser | None) -> QuerySet[Organization]:
    """The sponsors to whose library ``user`` may contribute a note: a sponsor's people to
    their own; CRO people to every sponsor engaging their CRO on some study; site people,
    once their site holds at least one recognition (any of its study-sites), to every sponsor
    whose study their site takes part in. Nobody else anywhere."""
    membership = membership_of(user)
    if membership is None:
        return Organization.objects.none()
    organization = membership.organization
    if organization.kind == OrganizationKind.SITE and not (
        Recognition.objects.filter(study_site__site__organization=organization).exists()
    ):
        return Organization.objects.none()
    return Organization.objects.filter(
        kind=OrganizationKind.SPONSOR, pk__in=_partner_sponsor_ids(organization)
    ).order_by("name", "pk")


def practice_notes_for_user(
    user: AbstractBaseUser | None,
    *,
    q: str | None = None,
    therapeutic_area: str | None = None,
    tag: str | None = None,
) -> QuerySet[PracticeNote]:
    """The notes ``user`` may read, newest first (by publication, else contribution):

    - sponsor people: every note of their sponsor's library, proposed or published;
    - CRO and site people: the notes their own organisation contributed (to any library),
      plus the published notes of the sponsors they work with (``_partner_sponsor_ids``).

    Optional filters: ``q`` (in the title or text), ``therapeutic_area`` (exact, any case)
    and ``tag`` (one tag, normalised as tags are stored). The author, its organisation and
    the sponsor come in the same query.
    """
    membership = membership_of(user)
    if membership is None:
        return PracticeNote.objects.none()
    organization = membership.organization
    if organization.kind == OrganizationKind.SPONSOR:
        reach = Q(sponsor=organization)
    else:
        reach = Q(author_organization=organization) | Q(
            status=PracticeStatus.PUBLISHED, sponsor__in=_partner_sponsor_ids(organization)
        )
    notes = PracticeNote.objects.filter(reach)
    if q and q.strip():
        notes = notes.filter(Q(title__icontains=q.strip()) | Q(body__icontains=q.strip()))
    if therapeutic_area and therapeutic_area.strip():
        notes = notes.filter(therapeutic_area__iexact=therapeutic_area.strip())
    if tag and tag.strip():
        notes = notes.filter(tags__contains=[" ".join(tag.split()).lower()])
    return notes.select_related("sponsor", "author_organization", "author").order_by(
        Coalesce("published_at", "created_at").desc(), "-id"
    )


def practice_note_for_user(user: AbstractBaseUser | None, note_id: int | str) -> PracticeNote:
    """The note with this id if ``user`` may read it; ``Http404`` otherwise."""
    try:
        return practice_notes_for_user(user).get(pk=int(note_id))
    except (PracticeNote.DoesNotExist, TypeError, ValueError):
        raise Http404("No such practice note.") from None


def practice_therapeutic_areas(user: AbstractBaseUser | None) -> list[str]:
    """The distinct therapeutic areas of the notes ``user`` may read (for the filter)."""
    return list(
        practice_notes_for_user(user)
        .exclude(therapeutic_area="")
        .order_by("therapeutic_area")
        .values_list("therapeutic_area", flat=True)
        .distinct()
    )


def latest_published_practice_notes(
    user: AbstractBaseUser | None, *, limit: int = 3
) -> list[PracticeNote]:
    """The ``limit`` latest published notes ``user`` may read (the dashboard card)."""
    notes = practice_notes_for_user(user).filter(status=PracticeStatus.PUBLISHED)
    return list(notes.order_by("-published_at", "-id")[:limit])


def practice_publishable_studies(
    user: AbstractBaseUser | None, note: PracticeNote, on: datetime.date | None = None
) -> QuerySet[Study]:
    """The studies of the note's sponsor to which ``user`` may publish it: all of them for
    the sponsor's organisation admins, those where they are sponsor lead on ``on`` (today)
    for its other people; none for anyone else. Studies it is published to already are
    included (``practice_note_publish`` refuses them; the page leaves them out)."""
    membership = membership_of(user)
    if membership is None or membership.organization_id != note.sponsor_id:
        return Study.objects.none()
    studies = Study.objects.filter(sponsor_id=note.sponsor_id)
    if not membership.is_org_admin:
        leading = (
            RoleAssignment.objects.active(on or timezone.localdate())
            .filter(user=user, role__in=PUBLISHER_ROLES)
            .values("study_id")
        )
        studies = studies.filter(pk__in=leading)
    return studies.order_by("code")


def practice_published_studies_for_user(
    user: AbstractBaseUser | None, note: PracticeNote
) -> list[Study]:
    """The studies the note is published to, limited to those ``user`` sees (a site never
    learns of the sponsor's other studies)."""
    return list(
        note.published_studies.filter(pk__in=studies_for_user(user).values("pk")).order_by("code")
    )
