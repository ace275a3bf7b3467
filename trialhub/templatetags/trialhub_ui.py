"""Small presentation helpers for the server-rendered pages."""

from __future__ import annotations

from django import template
from django.conf import settings

from trialhub.models import RoleAssignment
from trialhub.permissions import ASSIGNABLE_ROLES, ORG_ADMIN_ASSIGNABLE_ROLES, membership_of

register = template.Library()


@register.filter
def person(user) -> str:
    """A person's display name: full name, else username; "—" for nobody."""
    if user is None:
        return "—"
    return user.get_full_name() or user.username


@register.simple_tag
def demo_logins_shown() -> bool:
    """The log-in page hints at the demo accounts only in development."""
    return settings.DEBUG


@register.simple_tag(takes_context=True)
def assigns_roles(context) -> bool:
    """Whether to show the Assignments navigation entry: organisation admins whose kind hands
    out roles, and holders of a role that may (sponsor leads, CRO project managers); one query,
    cached on the user."""
    user = context.get("user")
    membership = membership_of(user)
    if membership is None:
        return False
    if not hasattr(user, "_trialhub_assigns_roles"):
        user._trialhub_assigns_roles = bool(
            membership.is_org_admin and ORG_ADMIN_ASSIGNABLE_ROLES[membership.organization.kind]
        ) or (
            RoleAssignment.objects.active()
            .filter(user=user, role__in=list(ASSIGNABLE_ROLES))
            .exists()
        )
    return user._trialhub_assigns_roles
