"""``{% load survey_tags %}``: the site dashboard's card of surveys waiting for an answer."""

from __future__ import annotations

from django import template
from django.utils import timezone

from performance.selectors.surveys import surveys_to_answer_for_user

register = template.Library()


@register.inclusion_tag("performance/surveys/_site_surveys_card.html", takes_context=True)
def site_surveys_card(context) -> dict:
    """Open surveys the signed-in site person has not answered yet (renders nothing when
    there are none, and for sponsor and CRO people); one query."""
    user = context.get("user")
    if user is None and context.get("request") is not None:
        user = context["request"].user
    return {"surveys": surveys_to_answer_for_user(user, now=timezone.now())}
