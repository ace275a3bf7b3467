"""Forms of the site pages: parse and present; ``sites.services`` validates the rules."""

from __future__ import annotations

from zoneinfo import available_timezones

from django import forms
from django.utils import timezone

from sites.models import DigestFrequency, StudySiteStatus, TrainingKind, Weekday
from trialhub.forms import DATE_INPUT, PersonChoiceField

TIME_INPUT = forms.TimeInput(attrs={"type": "time"}, format="%H:%M")


def time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in sorted(available_timezones())]


class SitePreferencesForm(forms.Form):
    """Time zone, digest schedule and quiet hours (what ``comms`` uses to time deliveries)."""

    time_zone = forms.ChoiceField(label="Time zone", choices=time_zone_choices)
    digest_frequency = forms.ChoiceField(
        label="Digest", choices=DigestFrequency.choices, help_text="Routine messages and news."
    )
    digest_hour = forms.TypedChoiceField(
        label="Digest hour",
        coerce=int,
        choices=[(hour, f"{hour:02d}:00") for hour in range(24)],
        help_text="Local time at the site.",
    )
    digest_weekday = forms.TypedChoiceField(
        label="Weekday", coerce=int, choices=Weekday.choices, help_text="For weekly digests."
    )
    quiet_hours_enabled = forms.BooleanField(
        label="Quiet hours",
        required=False,
        help_text="Key messages wait until the quiet period ends; critical ones never wait.",
    )
    quiet_hours_start = forms.TimeField(label="Quiet from", widget=TIME_INPUT)
    quiet_hours_end = forms.TimeField(label="Quiet until", widget=TIME_INPUT)


class StudySiteChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, study_site) -> str:
        return f"{study_site.study.code} — {study_site.study.title}"


class TrainingRecordForm(forms.Form):
    study_site = StudySiteChoiceField(label="Study", queryset=None, empty_label="Choose a study…")
    user = PersonChoiceField(label="Staff member", queryset=None, empty_label="Choose a person…")
    kind = forms.ChoiceField(label="Kind", choices=TrainingKind.choices)
    title = forms.CharField(label="Training", max_length=200)
    completed_on = forms.DateField(label="Completed on", widget=DATE_INPUT)

    def __init__(self, *args, study_sites, staff, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["study_site"].queryset = study_sites
        self.fields["user"].queryset = staff
        self.fields["completed_on"].widget.attrs["max"] = timezone.localdate().isoformat()


class StudySiteForm(forms.Form):
    """Status, enrolment target and milestone dates of one study-site."""

    status = forms.ChoiceField(label="Status", choices=StudySiteStatus.choices)
    enrolment_target = forms.IntegerField(label="Enrolment target", min_value=0)
    selected_on = forms.DateField(label="Selected", required=False, widget=DATE_INPUT)
    regulatory_approval_on = forms.DateField(
        label="Regulatory approval", required=False, widget=DATE_INPUT
    )
    contract_signed_on = forms.DateField(label="Contract signed", required=False, widget=DATE_INPUT)
    activated_on = forms.DateField(
        label="Activated (site initiation visit)", required=False, widget=DATE_INPUT
    )
    first_patient_in_on = forms.DateField(
        label="First patient in", required=False, widget=DATE_INPUT
    )
    last_patient_in_on = forms.DateField(label="Last patient in", required=False, widget=DATE_INPUT)
    closed_on = forms.DateField(label="Closed", required=False, widget=DATE_INPUT)
