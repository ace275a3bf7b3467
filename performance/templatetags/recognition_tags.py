"""``{% load recognition_tags %}`` then ``{% site_recognitions_card %}``: the site dashboard's
card of the site's latest announced recognitions (nothing when there are none)."""

from __future__ import annotations

from django import template

from performance.selectors.scorecards import is_site_user, recognitions_for_user
from performance.services.scorecards import quarter_label

register = template.Library()
CARD_LIMIT = 3


@register.inclusion_tag("performance/scorecards/_recognitions_card.html", takes_context=True)
def site_recognitions_card(context) -> dict:
    """A site's people see their own site's recognitions once the sponsor announced them (an
    unannounced one may still be replaced); one query, none for sponsor and CRO people."""
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    if not is_site_user(user):
        return {"recognitions": []}
    recognitions = list(
        recognitions_for_user(user)
        .filter(announced_at__isnull=False)
        .order_by("-quarter", "rank")[:CARD_LIMIT]
    )
    for recognition in recognitions:
        recognition.label = quarter_label(recognition.quarter)
    return {"recognitions": recognitions}
