"""Forms of the compose and templates pages. Shapes only: the services decide (drafting,
routing, template rules) and their ``ValidationError``s are put back on these forms."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from comms.models import TEMPLATE_PLACEHOLDERS, Category, MessageTemplate, Tier
from comms.services.audience import AUDIENCE_ROLES
from comms.services.templates import SEND_NOW_DAILY_LIMIT_RANGE
from trialhub.forms import DATE_INPUT

SCOPE_CHOICES = [
    ("all_sites", "All sites of the study"),
    ("study_sites", "Chosen sites"),
    ("countries", "Sites in chosen countries"),
]
ROLE_CHOICES = [
    ("site_coordinator", "Coordinators"),
    ("principal_investigator", "Investigators"),
]
PLACEHOLDER_HELP = "Placeholders: " + ", ".join(f"{{{name}}}" for name in TEMPLATE_PLACEHOLDERS)
# The compose form's fields that carry several values (checkboxes).
MULTI_VALUE_FIELDS = ("study_sites", "countries", "roles")


def add_compose_errors(form: forms.Form, error: ValidationError) -> None:
    """A service's field errors on the form: ``audience`` on the audience picker, keys the
    form lacks (``status``) as non-field errors."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error.messages)
        return
    for key, messages in error.message_dict.items():
        field = "audience_scope" if key == "audience" else key
        form.add_error(field if field in form.fields else None, messages)


class ComposeForm(forms.Form):
    """A message to the sites of one study. The study, its sites and countries and its
    approved templates are given by the view (resolved through the selectors)."""

    study = forms.ModelChoiceField(queryset=None, widget=forms.HiddenInput)
    template = forms.ModelChoiceField(
        queryset=MessageTemplate.objects.none(),
        required=False,
        label="Start from template",
        empty_label="No template",
        help_text="An approved template of the study: its category and wording.",
    )
    category = forms.ChoiceField(
        choices=[("", "Choose a category"), *Category.choices], required=False
    )
    tier = forms.ChoiceField(
        choices=[("", "The category's tier"), *Tier.choices],
        required=False,
        help_text="Lower it freely; raising it to key or critical needs the Accountable party.",
    )
    due_date = forms.DateField(
        required=False, widget=DATE_INPUT, help_text="Fills {due_date} in the wording."
    )
    subject = forms.CharField(required=False, max_length=200, help_text=PLACEHOLDER_HELP)
    body = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 8}))
    audience_scope = forms.ChoiceField(
        label="Audience", choices=SCOPE_CHOICES, initial="all_sites", widget=forms.RadioSelect
    )
    study_sites = forms.TypedMultipleChoiceField(
        label="Sites", coerce=int, required=False, widget=forms.CheckboxSelectMultiple
    )
    countries = forms.MultipleChoiceField(
        label="Countries", required=False, widget=forms.CheckboxSelectMultiple
    )
    roles = forms.MultipleChoiceField(
        label="Who at each site",
        choices=ROLE_CHOICES,
        initial=[role for role, _ in ROLE_CHOICES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    dedup_key = forms.CharField(
        required=False,
        max_length=120,
        help_text="Routine: reminders with the same key share one digest line.",
    )
    send_now = forms.BooleanField(
        required=False,
        label="Send now",
        help_text="Routine: deliver on its own instead of in the digest (limited per site a day).",
    )
    ack_due_at = forms.DateTimeField(
        required=False,
        label="Acknowledge by (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="Key and critical: default 48 h (key) or 24 h (critical) after sending.",
    )
    endorsement_requested = forms.BooleanField(
        required=False,
        label="Request sponsor endorsement",
        help_text="Key and critical: ask the sponsor lead to co-sign the message.",
    )

    def __init__(self, *args, studies, study_sites, templates, can_request_endorsement, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["study"].queryset = studies
        self.fields["template"].queryset = templates
        self.fields["study_sites"].choices = [
            (study_site.id, f"{study_site.site.name} ({study_site.site.country})")
            for study_site in study_sites
        ]
        countries = sorted({study_site.site.country for study_site in study_sites})
        self.fields["countries"].choices = [(country, country) for country in countries]
        if not can_request_endorsement:
            del self.fields["endorsement_requested"]

    def clean(self):
        cleaned = super().clean()
        scope = cleaned.get("audience_scope")
        if scope in ("study_sites", "countries") and not cleaned.get(scope):
            self.add_error(scope, "Choose at least one.")
        if not cleaned.get("roles") and "roles" not in self.errors:
            self.add_error("roles", "Choose coordinators, investigators or both.")
        return cleaned

    def audience(self) -> dict | None:
        """The audience JSON of PRODUCT.md, or None while the picker is incomplete."""
        cleaned = getattr(self, "cleaned_data", {})
        scope = cleaned.get("audience_scope")
        if scope is None or any(
            field in self.errors for field in ("audience_scope", "roles", scope)
        ):
            return None
        audience: dict = {"all_sites": True} if scope == "all_sites" else {scope: cleaned[scope]}
        roles = cleaned.get("roles") or []
        if set(roles) != set(AUDIENCE_ROLES):
            audience["roles"] = roles
        return audience

    def draft_kwargs(self) -> dict:
        """Keyword arguments of ``message_draft_create`` (after ``is_valid``)."""
        cleaned = self.cleaned_data
        return {
            "template": cleaned["template"],
            "category": cleaned["category"] or None,
            "tier": cleaned["tier"] or None,
            "due_date": cleaned["due_date"],
            "subject": cleaned["subject"],
            "body": cleaned["body"],
            "audience": self.audience(),
            "dedup_key": cleaned["dedup_key"],
            "send_now": cleaned["send_now"],
            "ack_due_at": cleaned["ack_due_at"],
            "endorsement_requested": cleaned.get("endorsement_requested", False),
        }


class TemplateForm(forms.Form):
    category = forms.ChoiceField(choices=[("", "Choose a category"), *Category.choices])
    name = forms.CharField(max_length=120)
    subject = forms.CharField(max_length=200, help_text=PLACEHOLDER_HELP)
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), help_text=PLACEHOLDER_HELP)


class CommsPolicyForm(forms.Form):
    send_now_daily_limit = forms.IntegerField(
        label="Send-now messages per site a day",
        min_value=SEND_NOW_DAILY_LIMIT_RANGE[0],
        max_value=SEND_NOW_DAILY_LIMIT_RANGE[1],
        help_text="Stand-alone routine messages a site receives per local day; more wait for "
        "the digest.",
    )
