"""Forms of the scorecard pages. They parse input; the rules (thresholds, weights, who may
change them) are ``performance.services.scorecards``'."""

from __future__ import annotations

import datetime
import re

from django import forms
from django.core.exceptions import ValidationError

from performance.scorecards import DEFAULT_KPI_SETTINGS, EDITABLE_FIELDS, ScorecardSettings
from sites.models import StudySiteStatus

PERIOD_PATTERN = re.compile(r"^(\d{4})-(\d{2})$")
SORT_DIRECTIONS = (("asc", "Ascending"), ("desc", "Descending"))
BASE_SORTS = ("rank", "site", "country", "status", "score")
MONTH_CHOICES = ((6, "6 months"), (12, "12 months"), (24, "24 months"), (36, "36 months"))


def parse_period(text: str | None, today: datetime.date) -> datetime.date | None:
    """The first day of the month ``YYYY-MM`` names; ``ValidationError`` when it is not a
    month or lies after the current one; ``None`` for an empty value (the default period)."""
    text = (text or "").strip()
    if not text:
        return None
    match = PERIOD_PATTERN.match(text)
    if not match or not 1 <= int(match[2]) <= 12 or int(match[1]) < 1900:
        raise ValidationError("Give the month as YYYY-MM, for example 2026-09.")
    period = datetime.date(int(match[1]), int(match[2]), 1)
    if period > today.replace(day=1):
        raise ValidationError("There is no scorecard for a month after the current one yet.")
    return period


def safe_period(text: str | None, today: datetime.date) -> datetime.date | None:
    """``parse_period`` that turns a bad value into ``None`` (the form shows the error)."""
    try:
        return parse_period(text, today)
    except ValidationError:
        return None


class ScorecardFilterForm(forms.Form):
    """GET filters of the study scorecard (and its CSV): month, country, study-site status,
    sort column and direction, and the KPI whose distribution the chart shows."""

    period = forms.CharField(
        required=False,
        label="Month",
        help_text="YYYY-MM; empty for the latest month with numbers.",
        widget=forms.TextInput(attrs={"type": "month", "placeholder": "YYYY-MM"}),
    )
    country = forms.ChoiceField(required=False, label="Country")
    status = forms.ChoiceField(
        required=False,
        label="Site status",
        choices=[("", "All statuses"), *StudySiteStatus.choices],
    )
    kpi = forms.ChoiceField(required=False, label="Distribution of")
    sort = forms.ChoiceField(required=False, widget=forms.HiddenInput)
    dir = forms.ChoiceField(required=False, choices=SORT_DIRECTIONS, widget=forms.HiddenInput)

    def __init__(self, *args, today: datetime.date, countries, settings: ScorecardSettings, **kw):
        super().__init__(*args, **kw)
        self.today = today
        self.fields["country"].choices = [("", "All countries")] + [(c, c) for c in countries]
        kpi_choices = [(slug, setting.label) for slug, setting in settings.kpis.items()]
        self.fields["kpi"].choices = kpi_choices
        self.fields["sort"].choices = [(key, key) for key in (*BASE_SORTS, *settings.kpis)]

    def clean_period(self):
        return parse_period(self.cleaned_data.get("period"), self.today)

    def value(self, name: str, default=None):
        """The cleaned value of a field, or ``default`` when it is empty or invalid (an
        invalid filter shows its error and falls back; the page never fails on it)."""
        if not hasattr(self, "cleaned_data"):
            self.is_valid()
        return self.cleaned_data.get(name) or default


class HistoryMonthsForm(forms.Form):
    months = forms.TypedChoiceField(
        required=False, coerce=int, choices=MONTH_CHOICES, label="Months shown", empty_value=12
    )


class AwardForm(forms.Form):
    quarter = forms.ChoiceField(label="Quarter")

    def __init__(self, *args, quarters: list[tuple[datetime.date, str]], **kw):
        super().__init__(*args, **kw)
        self.fields["quarter"].choices = [(f"{q:%Y-%m-%d}", label) for q, label in quarters]

    def clean_quarter(self) -> datetime.date:
        return datetime.date.fromisoformat(self.cleaned_data["quarter"])


class AnnounceForm(forms.Form):
    quarter = forms.DateField(widget=forms.HiddenInput)


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


class ScorecardSettingsForm(forms.Form):
    """One row per KPI (counted, weight, green, red, minimum samples) and ``minimum_kpis``.

    Field names are ``<slug>-<setting>``; ``rows()`` gives the template one row per KPI with
    its fields and errors, ``kpis_payload()`` the service's ``kpis`` argument, and
    ``add_service_error`` puts the service's errors keyed by KPI slug on the offending row.
    """

    minimum_kpis = forms.IntegerField(
        min_value=1,
        label="Minimum KPIs with data for a composite score",
        help_text="A site gets no composite (and no rank) until this many counted KPIs have data.",
    )

    def __init__(self, *args, settings: ScorecardSettings, **kw):
        super().__init__(*args, **kw)
        self.row_errors: dict[str, list[str]] = {}
        self.fields["minimum_kpis"].initial = settings.minimum_kpis
        for slug, setting in settings.kpis.items():
            label = setting.label
            self.fields[f"{slug}-enabled"] = forms.BooleanField(
                required=False, initial=setting.enabled, label=f"Count {label} in the composite"
            )
            self.fields[f"{slug}-weight"] = forms.FloatField(
                min_value=0, initial=_number(setting.weight), label=f"Weight of {label}"
            )
            self.fields[f"{slug}-green"] = forms.FloatField(
                initial=_number(setting.green), label=f"Green threshold of {label}"
            )
            self.fields[f"{slug}-red"] = forms.FloatField(
                initial=_number(setting.red), label=f"Red threshold of {label}"
            )
            self.fields[f"{slug}-minimum_samples"] = forms.IntegerField(
                min_value=0,
                initial=setting.minimum_samples,
                label=f"Minimum sample of {label}",
            )
        for name, field in self.fields.items():
            if name != "minimum_kpis" and not isinstance(field, forms.BooleanField):
                field.widget.attrs["class"] = "input--narrow"
            if isinstance(field, forms.FloatField):
                field.widget.attrs["step"] = "any"

    def rows(self) -> list[dict]:
        rows = []
        for slug in DEFAULT_KPI_SETTINGS:
            errors = list(self.row_errors.get(slug, []))
            for name in EDITABLE_FIELDS:
                bound = self[f"{slug}-{name}"]
                errors.extend(f"{bound.label}: {error}" for error in bound.errors)
            if errors:
                # Every input of the row points at the row's errors.
                for name in EDITABLE_FIELDS:
                    attrs = self.fields[f"{slug}-{name}"].widget.attrs
                    attrs.update({"aria-invalid": "true", "aria-describedby": f"kpi-{slug}-errors"})
            fields = {name: self[f"{slug}-{name}"] for name in EDITABLE_FIELDS}
            rows.append({"slug": slug, "fields": fields, "errors": errors})
        return rows

    def kpis_payload(self) -> dict[str, dict]:
        data = self.cleaned_data
        return {
            slug: {
                "enabled": bool(data[f"{slug}-enabled"]),
                "weight": _number(data[f"{slug}-weight"]),
                "green": _number(data[f"{slug}-green"]),
                "red": _number(data[f"{slug}-red"]),
                "minimum_samples": data[f"{slug}-minimum_samples"],
            }
            for slug in DEFAULT_KPI_SETTINGS
        }

    def add_service_error(self, error: ValidationError) -> None:
        if not hasattr(error, "error_dict"):
            self.add_error(None, error)
            return
        for key, messages in error.message_dict.items():
            if key in DEFAULT_KPI_SETTINGS:
                self.row_errors.setdefault(key, []).extend(messages)
            elif key == "minimum_kpis":
                self.add_error("minimum_kpis", messages)
            else:
                self.add_error(None, messages)
        if self.row_errors:
            labels = ", ".join(DEFAULT_KPI_SETTINGS[slug].label for slug in self.row_errors)
            self.add_error(None, f"Some KPI settings are not valid ({labels}): see their rows.")
