"""Forms of the studies pages. They parse and present; the services validate the business rules
and their ``ValidationError``s are put back on the form (``add_service_errors``)."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from trialhub.models import Area, Raci, StudyRole, StudyStatus
from trialhub.services.coordination import MAX_ACTION_ITEMS

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def add_service_errors(form: forms.Form, error: ValidationError) -> None:
    """Put a service's ``ValidationError`` on the form: keyed errors on the field of that name,
    anything else (unknown keys, plain messages) as non-field errors."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error.messages)
        return
    for key, messages in error.message_dict.items():
        form.add_error(key if key in form.fields else None, messages)


class StudyFilterForm(forms.Form):
    q = forms.CharField(
        label="Search", required=False, max_length=100, help_text="Study code or title."
    )
    status = forms.ChoiceField(
        label="Status", required=False, choices=[("", "Any status"), *StudyStatus.choices]
    )


class MatrixForm(forms.Form):
    """The whole responsibility matrix as one form: a RACI select per (area, party) cell.

    Cells are optional here so that a missing code reaches the service, which reports the rule
    breaks per area row (``area_errors``) and malformed rows under ``entries``.
    """

    note = forms.CharField(
        label="Note",
        required=False,
        max_length=300,
        help_text="Why the matrix changes (kept in the change history).",
    )

    def __init__(self, *args, parties, entries, **kwargs):
        super().__init__(*args, **kwargs)
        self.parties = parties
        current = {(entry["area"], entry["organization"]): entry["code"] for entry in entries}
        choices = [("", "—"), *((code, code) for code in Raci.values)]
        for area, label in Area.choices:
            for party in parties:
                self.fields[self.cell_name(area, party.id)] = forms.ChoiceField(
                    label=f"{label} · {party.name}",
                    choices=choices,
                    required=False,
                    initial=current.get((area, party.id), ""),
                )
        self.area_errors: dict[str, list[str]] = {}

    @staticmethod
    def cell_name(area: str, organization_id: int) -> str:
        return f"cell__{area}__{organization_id}"

    def entries(self) -> list[dict]:
        """The submitted cells in the service's (and the API's) shape; blanks left out."""
        return [
            {"area": area, "organization": party.id, "code": code}
            for area in Area.values
            for party in self.parties
            if (code := self.cleaned_data.get(self.cell_name(area, party.id)))
        ]

    def add_service_errors(self, error: ValidationError) -> None:
        for key, messages in error.message_dict.items():
            if key in Area.values:
                self.area_errors[key] = messages
            else:
                self.add_error(None, messages)

    def rows(self) -> list[dict]:
        """One row per area: its label, its cells (party, bound field, shown code), its errors."""
        rows = []
        for area, label in Area.choices:
            cells = []
            errors = list(self.area_errors.get(area, []))
            for party in self.parties:
                field = self[self.cell_name(area, party.id)]
                cells.append({"party": party, "field": field, "code": field.value() or ""})
                errors += [f"{party.name}: {message}" for message in field.errors]
            rows.append({"area": area, "label": label, "cells": cells, "errors": errors})
        return rows


class PersonChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, user) -> str:
        name = user.get_full_name() or user.username
        return f"{name} — {user.membership.organization.name}"


class StudySiteChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, study_site) -> str:
        number = f" ({study_site.site_number})" if study_site.site_number else ""
        return f"{study_site.site.name}{number}"


class RoleAssignmentForm(forms.Form):
    """Assign a person to a role on the study or on one of its study-sites."""

    role = forms.ChoiceField(label="Role")
    user = PersonChoiceField(label="Person", queryset=None, empty_label="Choose a person…")
    study_site = StudySiteChoiceField(
        label="Site",
        queryset=None,
        required=False,
        empty_label="Whole study",
        help_text="CRAs, site coordinators and investigators are assigned to one site; "
        "sponsor and CRO management roles cover the whole study.",
    )
    start_date = forms.DateField(
        label="Start date",
        required=False,
        widget=DATE_INPUT,
        help_text="Leave empty to start today.",
    )

    def __init__(self, *args, roles, people, study_sites, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = [
            ("", "Choose a role…"),
            *((role, label) for role, label in StudyRole.choices if role in roles),
        ]
        self.fields["user"].queryset = people
        self.fields["study_site"].queryset = study_sites


class AssignmentEndForm(forms.Form):
    """End one assignment; the reason is kept in the history."""

    reason = forms.CharField(label="Reason", max_length=300)
    end_date = forms.DateField(
        label="End date",
        required=False,
        widget=DATE_INPUT,
        help_text="First day without the role; empty for today.",
    )


# --- Sponsor–CRO coordination ------------------------------------------------------------------

TEXTAREA = forms.Textarea(attrs={"rows": 3})


class StatusUpdateForm(forms.Form):
    """A status update for a period: highlights, risks, asks (the service checks the rules)."""

    period_start = forms.DateField(label="Period from", widget=DATE_INPUT)
    period_end = forms.DateField(label="Period to", widget=DATE_INPUT)
    highlights = forms.CharField(
        label="Highlights", widget=TEXTAREA, help_text="What happened in the period."
    )
    risks = forms.CharField(label="Risks", required=False, widget=TEXTAREA)
    asks = forms.CharField(
        label="Asks", required=False, widget=TEXTAREA, help_text="What you need from the others."
    )


class MeetingForm(forms.Form):
    held_on = forms.DateField(label="Held on", widget=DATE_INPUT)
    title = forms.CharField(label="Title", max_length=200)
    attendees = forms.CharField(
        label="Attendees",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Who took part.",
    )
    notes = forms.CharField(label="Notes", required=False, widget=TEXTAREA)


class ActionItemForm(forms.Form):
    """One row of a meeting's action items; untouched extra rows are skipped by the formset."""

    description = forms.CharField(label="Action", max_length=500)
    owner = PersonChoiceField(label="Owner", queryset=None, empty_label="Choose an owner…")
    due_date = forms.DateField(label="Due", widget=DATE_INPUT)

    def __init__(self, *args, owners, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = owners


ActionItemFormSet = forms.formset_factory(
    ActionItemForm, extra=3, max_num=MAX_ACTION_ITEMS, validate_max=True
)
