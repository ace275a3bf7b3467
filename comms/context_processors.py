"""Template context for every page: the signed-in user's inbox counts for the header."""

from __future__ import annotations

from django.utils.functional import SimpleLazyObject

from comms.selectors import inbox_counts


def inbox(request) -> dict:
    """``inbox_counts`` (``unread``, ``to_acknowledge``) for signed-in users, read lazily: one
    query, and only when a template shows them (fragments and anonymous pages pay nothing)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"inbox_counts": None}
    return {"inbox_counts": SimpleLazyObject(lambda: inbox_counts(user))}
