"""Onboarding organisations and their people (the platform administrator's job)."""

from __future__ import annotations

from zoneinfo import available_timezones

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from trialhub.models import Membership, Organization, OrganizationKind

User = get_user_model()


def validate_time_zone(value: str) -> None:
    if value not in available_timezones():
        raise ValidationError({"time_zone": f"Unknown time zone {value!r}; use an IANA name."})


def organization_create(*, kind: str, name: str, country: str, time_zone: str) -> Organization:
    """Create a tenant. The country is an ISO 3166-1 alpha-2 code."""
    if kind not in OrganizationKind.values:
        raise ValidationError({"kind": f"Unknown organisation kind {kind!r}."})
    validate_time_zone(time_zone)
    if len(country) != 2 or not country.isalpha():
        raise ValidationError({"country": "Use a two-letter ISO country code, e.g. DE."})
    return Organization.objects.create(
        kind=kind, name=name, country=country.upper(), time_zone=time_zone
    )


@transaction.atomic
def member_create(
    *,
    organization: Organization,
    username: str,
    password: str | None,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
    job_title: str = "",
    is_org_admin: bool = False,
    password_hash: str | None = None,
):
    """Create a user and their membership in one step: every user belongs to one organisation.

    ``password_hash`` (from ``make_password``) may stand in for ``password`` when many users
    share one, as in demo data: hashing is deliberately slow.
    """
    if User.objects.filter(username=username).exists():
        raise ValidationError({"username": f"The username {username!r} is taken."})
    user = User.objects.create_user(
        username=username,
        password=password,
        first_name=first_name,
        last_name=last_name,
        email=email,
    )
    if password_hash is not None:
        user.password = password_hash
        user.save(update_fields=["password"])
    Membership.objects.create(
        user=user, organization=organization, job_title=job_title, is_org_admin=is_org_admin
    )
    return user
