"""Template context shared by every page."""

from trialhub.permissions import membership_of


def membership(request) -> dict:
    """The signed-in user's membership and organisation (None when anonymous)."""
    member = membership_of(getattr(request, "user", None))
    return {
        "membership": member,
        "organization": member.organization if member else None,
    }
