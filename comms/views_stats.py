"""The message-load page of a study, for its sponsor and CRO people (``comms.stats``).

Thin: the study is resolved by ``comms.stats`` (404 when out of reach and for site people)
before the ``weeks`` form is read; an invalid form is shown with its errors (400).
"""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from comms.stats import (
    DEFAULT_WEEKS,
    MAX_WEEKS,
    TIERS,
    message_load_for_study,
    message_load_study_for_user,
)


class WeeksForm(forms.Form):
    weeks = forms.IntegerField(
        min_value=1,
        max_value=MAX_WEEKS,
        required=False,
        label="Weeks",
        help_text=f"The last 1–{MAX_WEEKS} ISO weeks (UTC), this one included.",
    )


@login_required
def message_load(request: HttpRequest, study_id: int) -> HttpResponse:
    study = message_load_study_for_user(request.user, study_id)
    form = WeeksForm(request.GET or None, initial={"weeks": DEFAULT_WEEKS})
    context = {"study": study, "form": form, "tiers": TIERS, "result": None}
    if form.is_bound and not form.is_valid():
        return render(request, "comms/message_load.html", context, status=400)
    weeks = (form.cleaned_data.get("weeks") if form.is_bound else None) or DEFAULT_WEEKS
    context["result"] = message_load_for_study(user=request.user, study=study, weeks=weeks)
    return render(request, "comms/message_load.html", context)
