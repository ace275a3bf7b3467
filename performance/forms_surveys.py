"""Forms of the survey pages. They parse input; the rules (who, when, once) are the services'."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from performance.models import SURVEY_SCORE_FIELDS
from performance.selectors.surveys import QUESTION_LABELS

SCORE_CHOICES = [
    (1, "1 – very poor"),
    (2, "2 – poor"),
    (3, "3 – fair"),
    (4, "4 – good"),
    (5, "5 – very good"),
]
QUESTION_HELP = {
    "communication_clarity": "How clear were the messages and instructions you received?",
    "support": "How well were you supported when you needed help?",
    "cra_responsiveness": "How quickly and helpfully did your CRA respond?",
}


class SurveyOpenForm(forms.Form):
    title = forms.CharField(
        max_length=200,
        help_text="For example “Q3 site feedback”.",
    )
    closes_on = forms.DateField(
        required=False,
        label="Last day for answers",
        help_text="Optional. Leave empty to keep it open until you close it.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )


class SurveyAnswerForm(forms.Form):
    communication_clarity = forms.TypedChoiceField(
        choices=SCORE_CHOICES, coerce=int, widget=forms.RadioSelect
    )
    support = forms.TypedChoiceField(choices=SCORE_CHOICES, coerce=int, widget=forms.RadioSelect)
    cra_responsiveness = forms.TypedChoiceField(
        choices=SCORE_CHOICES, coerce=int, widget=forms.RadioSelect
    )
    comment = forms.CharField(
        required=False,
        max_length=2000,
        label="Comment (optional)",
        help_text="Your answer is anonymous: your site's name is never shown with it.",
        widget=forms.Textarea(attrs={"rows": 4}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in SURVEY_SCORE_FIELDS:
            self.fields[field].label = QUESTION_LABELS[field]
            self.fields[field].help_text = QUESTION_HELP[field]
            self.fields[field].error_messages["required"] = "Choose a score from 1 to 5."

    def score_fields(self) -> list:
        return [self[field] for field in SURVEY_SCORE_FIELDS]


def add_service_errors(form: forms.Form, error: ValidationError) -> None:
    """A service's ``ValidationError`` on the form: on the field it names, else on the form."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, messages in error.message_dict.items():
        form.add_error(field if field in form.fields else None, messages)
