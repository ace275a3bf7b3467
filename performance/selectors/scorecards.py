"""Scorecards with tenancy applied.

Sponsor people of a study and the people of its engaged CROs see every study-site's row; a
site's people see only their own site's rows (with their real rank, never another site's
name or numbers); anyone else gets 404. A site's history spans every study of the site the
user can see: for a sponsor that is its own studies only.
"""

from __future__ import annotations

import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from performance.models import Recognition
from performance.scorecards import Scorecard, default_period, study_scorecard, study_settings
from sites.models import Site
from sites.selectors import study_sites_for_user
from trialhub.models import OrganizationKind, Study
from trialhub.permissions import membership_of
from trialhub.selectors import study_for_user


def is_site_user(user: AbstractBaseUser | None) -> bool:
    membership = membership_of(user)
    return membership is not None and membership.organization.kind == OrganizationKind.SITE


def visible_study_site_ids(user: AbstractBaseUser | None, study: Study) -> set[int] | None:
    """``None`` when the user sees every row of the study's scorecard, else the ids of the
    rows they may see (a site's own study-sites)."""
    if not is_site_user(user):
        return None
    return set(study_sites_for_user(user, study).values_list("id", flat=True))


def scorecard_for_user(
    user: AbstractBaseUser | None,
    study_id: int | str,
    *,
    period: datetime.date | None = None,
    today: datetime.date,
    trend_months: int = 0,
    with_totals: bool = False,
) -> Scorecard:
    """The study's scorecard as the user may see it; 404 outside the user's reach.

    A site user gets only its own rows, and no study totals (they are built from every site).
    """
    study = study_for_user(user, study_id)
    visible = visible_study_site_ids(user, study)
    return study_scorecard(
        study=study,
        period=period or default_period(study, today),
        study_site_ids=visible,
        trend_months=trend_months,
        with_totals=with_totals and visible is None,
    )


def site_history_for_user(
    user: AbstractBaseUser | None, site: Site, *, today: datetime.date, months: int = 12
) -> list[dict]:
    """The site's monthly scorecard rows in every study of it the user can see, newest study
    first: ``[{"study_site", "study", "sponsor", "period", "row", "ranked", "settings"}]``.
    Four queries per study plus two; ``site`` comes from ``sites.selectors.site_for_user``.
    """
    study_sites = (
        study_sites_for_user(user)
        .filter(site=site)
        .select_related("study__sponsor")
        .order_by("-study__planned_start", "study__code")
    )
    history = []
    for study_site in study_sites:
        study = study_site.study
        settings = study_settings(study)
        period = default_period(study, today)
        card = study_scorecard(
            study=study,
            period=period,
            study_site_ids={study_site.id},
            trend_months=months,
            settings=settings,
        )
        history.append(
            {
                "study_site": study_site,
                "study": study,
                "sponsor": study.sponsor,
                "period": card.period,
                "row": card.rows[0] if card.rows else None,
                "ranked": card.ranked,
                "settings": settings,
            }
        )
    return history


def recognitions_for_user(
    user: AbstractBaseUser | None, *, study: Study | None = None
) -> QuerySet[Recognition]:
    """Recognitions of the study-sites the user can see (a site: its own)."""
    recognitions = Recognition.objects.filter(study_site__in=study_sites_for_user(user, study))
    return recognitions.select_related("study_site__site", "study_site__study__sponsor")


__all__ = [
    "is_site_user",
    "recognitions_for_user",
    "scorecard_for_user",
    "site_history_for_user",
    "visible_study_site_ids",
]
