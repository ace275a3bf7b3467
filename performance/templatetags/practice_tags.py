"""``{% load practice_tags %}`` then ``{% practice_notes_card %}``: the latest published
practice notes the user can read, for dashboards (nothing when there are none)."""

from __future__ import annotations

from django import template

from performance.selectors.practices import latest_published_practice_notes

register = template.Library()


@register.inclusion_tag("performance/practices/_card.html", takes_context=True)
def practice_notes_card(context, limit: int = 3) -> dict:
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    return {"notes": latest_published_practice_notes(user, limit=limit)}
