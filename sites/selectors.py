"""Reads of sites and study-sites with tenancy applied (see ``trialhub.selectors``)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.http import Http404

from sites.models import Site, StudySite, TrainingRecord
from trialhub.models import OrganizationKind, Study
from trialhub.permissions import membership_of
from trialhub.selectors import studies_for_user


def study_sites_for_user(
    user: AbstractBaseUser | None, study: Study | None = None
) -> QuerySet[StudySite]:
    """Study-sites of the user's studies; a site's people see only their own site's rows."""
    membership = membership_of(user)
    if membership is None:
        return StudySite.objects.none()
    study_sites = StudySite.objects.filter(study__in=studies_for_user(user))
    if membership.organization.kind == OrganizationKind.SITE:
        study_sites = study_sites.filter(site__organization=membership.organization)
    if study is not None:
        study_sites = study_sites.filter(study=study)
    return study_sites.select_related("site", "study__sponsor")


def study_site_for_user(user: AbstractBaseUser | None, study_site_id: int | str) -> StudySite:
    try:
        return study_sites_for_user(user).get(pk=int(study_site_id))
    except (StudySite.DoesNotExist, TypeError, ValueError):
        raise Http404("No such study-site.") from None


def sites_for_user(user: AbstractBaseUser | None) -> QuerySet[Site]:
    """Sites taking part in the user's studies (a site user: their own site only)."""
    return Site.objects.filter(id__in=study_sites_for_user(user).values("site_id")).select_related(
        "organization"
    )


def site_for_user(user: AbstractBaseUser | None, site_id: int | str) -> Site:
    try:
        return sites_for_user(user).get(pk=int(site_id))
    except (Site.DoesNotExist, TypeError, ValueError):
        raise Http404("No such site.") from None


def own_site_for_user(user: AbstractBaseUser | None) -> Site | None:
    """The site a site user works at (None for sponsor and CRO people)."""
    membership = membership_of(user)
    if membership is None or membership.organization.kind != OrganizationKind.SITE:
        return None
    return Site.objects.filter(organization=membership.organization).first()


def training_records_for_user(
    user: AbstractBaseUser | None, site: Site | None = None
) -> QuerySet[TrainingRecord]:
    records = TrainingRecord.objects.filter(study_site__in=study_sites_for_user(user))
    if site is not None:
        records = records.filter(study_site__site=site)
    return records.select_related("user", "study_site__study", "study_site__site")
