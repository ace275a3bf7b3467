"""Forms of the practice library pages. They parse and present; the services validate the
rules, and their ``ValidationError``s go back on the form (``add_service_errors``)."""

from __future__ import annotations

from django import forms

from performance.services.practices import MAX_TAGS, TAG_MAX_LENGTH


class PracticeFilterForm(forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=100, help_text="Title or text.")
    therapeutic_area = forms.ChoiceField(label="Therapeutic area", required=False)
    tag = forms.CharField(label="Tag", required=False, max_length=TAG_MAX_LENGTH)

    def __init__(self, *args, therapeutic_areas: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["therapeutic_area"].choices = [
            ("", "Any area"),
            *((area, area) for area in therapeutic_areas),
        ]


class PracticeNoteForm(forms.Form):
    """A new note. The sponsor is chosen only when the contributor has more than one."""

    sponsor = forms.TypedChoiceField(label="Sponsor library", coerce=int)
    title = forms.CharField(label="Title", max_length=200)
    body = forms.CharField(
        label="The practice", max_length=5000, widget=forms.Textarea(attrs={"rows": 8})
    )
    therapeutic_area = forms.CharField(label="Therapeutic area", required=False, max_length=120)
    tags = forms.CharField(
        label="Tags",
        required=False,
        help_text=f"Comma-separated, at most {MAX_TAGS}, e.g. recruitment, data entry.",
    )

    def __init__(self, *args, sponsors, **kwargs):
        super().__init__(*args, **kwargs)
        sponsors = list(sponsors)
        field = self.fields["sponsor"]
        field.choices = [(sponsor.pk, sponsor.name) for sponsor in sponsors]
        self.sponsors = {sponsor.pk: sponsor for sponsor in sponsors}
        if len(sponsors) == 1:
            field.widget = forms.HiddenInput()
            field.initial = sponsors[0].pk

    def clean_sponsor(self):
        return self.sponsors[self.cleaned_data["sponsor"]]

    def clean_tags(self) -> list[str]:
        return [tag for tag in self.cleaned_data["tags"].split(",") if tag.strip()]


class PracticePublishForm(forms.Form):
    studies = forms.MultipleChoiceField(
        label="Publish to the sites of",
        widget=forms.CheckboxSelectMultiple,
        help_text="Each study's sites get the note as a line in their next digest.",
    )

    def __init__(self, *args, studies, **kwargs):
        super().__init__(*args, **kwargs)
        self.studies = {str(study.pk): study for study in studies}
        self.fields["studies"].choices = [
            (str(study.pk), f"{study.code} · {study.title}") for study in self.studies.values()
        ]

    def clean_studies(self):
        return [self.studies[pk] for pk in self.cleaned_data["studies"]]
