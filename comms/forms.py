"""Forms of the communications pages: they parse input; the services decide."""

from __future__ import annotations

from django import forms

from comms.models import Tier
from comms.selectors import INBOX_STATES

STATE_LABELS = {"unread": "Unread", "read": "Read", "acknowledged": "Acknowledged"}


class InboxFilterForm(forms.Form):
    """The inbox filters; study and sponsor choices are limited to the user's own studies."""

    study = forms.TypedChoiceField(label="Study", required=False, coerce=int, empty_value=None)
    sponsor = forms.TypedChoiceField(label="Sponsor", required=False, coerce=int, empty_value=None)
    tier = forms.ChoiceField(label="Tier", required=False, choices=[("", "Any tier")])
    state = forms.ChoiceField(label="State", required=False, choices=[("", "Any state")])

    def __init__(self, data=None, *, studies, **kwargs):
        super().__init__(data, **kwargs)
        studies = list(studies)
        sponsors = {study.sponsor_id: study.sponsor.name for study in studies}
        self.fields["study"].choices = [("", "All studies")] + [
            (study.id, f"{study.code} — {study.sponsor.name}") for study in studies
        ]
        self.fields["sponsor"].choices = [("", "All sponsors")] + sorted(
            sponsors.items(), key=lambda choice: choice[1]
        )
        self.fields["tier"].choices += Tier.choices
        self.fields["state"].choices += [(state, STATE_LABELS[state]) for state in INBOX_STATES]

    def filters(self) -> dict:
        """The valid filters (an invalid one is shown as an error and not applied)."""
        self.is_valid()
        return {
            name: self.cleaned_data.get(name) or None
            for name in self.fields
            if name in getattr(self, "cleaned_data", {})
        }


class ApproveForm(forms.Form):
    reason = forms.CharField(
        label="Reason (optional)",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class RejectForm(forms.Form):
    reason = forms.CharField(
        label="Reason",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="The sender sees why.",
        error_messages={"required": "Say why the message is rejected."},
    )
