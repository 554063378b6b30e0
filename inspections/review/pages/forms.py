"""The review pages' forms: queue filters and a decision."""

from __future__ import annotations

from datetime import datetime, time

from django import forms
from django.utils import timezone

from inspections.catalog import selectors as catalog_selectors
from inspections.catalog.limits import SEARCH_MAX_LENGTH, SOURCE_MAX_LENGTH
from inspections.catalog.models import Split
from inspections.registry import selectors as registry_selectors
from inspections.review.reasons import REASON_TITLES

REVIEWED_CHOICES = [("unreviewed", "not yet reviewed"), ("reviewed", "reviewed"), ("all", "all")]
FILTER_NAMES = ("q", "predicted_label", "review_reason", "source", "created_after", "created_before", "model_version",
                "split", "reviewed", "order")
ORDER_CHOICES = [("", "needs a person first, most uncertain first"), ("anomaly", "anomaly score, highest first")]


class QueueFilterForm(forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=SEARCH_MAX_LENGTH, widget=forms.TextInput(attrs={
        "type": "search", "placeholder": "file name, external id or image id", "autocomplete": "off"}))
    predicted_label = forms.ChoiceField(label="Predicted class", required=False)
    review_reason = forms.ChoiceField(label="Reason", required=False, choices=[("", "any"), *REASON_TITLES.items()])
    source = forms.CharField(label="Source", required=False, max_length=SOURCE_MAX_LENGTH)
    created_after = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    created_before = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    model_version = forms.ChoiceField(label="Model version", required=False)
    split = forms.ChoiceField(label="Split", required=False, choices=[("", "any"), *Split.choices])
    reviewed = forms.ChoiceField(label="Reviewed", required=False, choices=REVIEWED_CHOICES)
    order = forms.ChoiceField(label="Order", required=False, choices=ORDER_CHOICES)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["predicted_label"].choices = [("", "any")] + [
            (c.name, c.name) for c in catalog_selectors.defect_class_list()
        ]
        self.fields["model_version"].choices = [("", "any")] + [
            (str(v.pk), f"{v.name} ({v.status})") for v in registry_selectors.model_version_list()
        ]

    def clean(self):
        cleaned = super().clean()
        after, before = cleaned.get("created_after"), cleaned.get("created_before")
        if after and before and after > before:
            raise forms.ValidationError("The start date is after the end date.")
        return cleaned

    def selector_filters(self) -> dict:
        """The selector's filter dict; invalid or empty fields are left out."""
        data = self.cleaned_data if self.is_valid() else {
            name: value for name, value in getattr(self, "cleaned_data", {}).items() if name not in self.errors
        }
        filters: dict = {"reviewed": data.get("reviewed") or "unreviewed"}
        for name in ("q", "predicted_label", "review_reason", "source", "split", "order"):
            if data.get(name):
                filters[name] = data[name]
        if data.get("model_version"):
            filters["model_version"] = int(data["model_version"])
        zone = timezone.get_current_timezone()
        if data.get("created_after"):
            filters["created_after"] = timezone.make_aware(datetime.combine(data["created_after"], time.min), zone)
        if data.get("created_before"):
            filters["created_before"] = timezone.make_aware(datetime.combine(data["created_before"], time.max), zone)
        return filters


def filter_query(params) -> str:
    """The filter part of a query string, to carry from the queue to each review page and back."""
    kept = params.copy()
    for name in list(kept.keys()):
        if name not in FILTER_NAMES or not kept.get(name):
            del kept[name]
    return kept.urlencode()


class ReviewDecisionForm(forms.Form):
    """The no-JavaScript decision form of the review view; the label is checked by the service."""

    label = forms.CharField(required=False, max_length=64)
    exclude = forms.ChoiceField(required=False, choices=[("", ""), ("true", "exclude"), ("false", "include again")])
    reason = forms.CharField(required=False, max_length=500)
    expected_version = forms.CharField(required=False)
    next = forms.CharField(required=False)

    def clean_expected_version(self) -> int | None:
        # An unreadable version means "I saw none": the decision then skips the conflict check.
        try:
            return int(self.cleaned_data["expected_version"])
        except (TypeError, ValueError):
            return None

    def clean_next(self) -> str:
        """Only a path on this site; anything else (another host, ``//host``) is dropped."""
        url = self.cleaned_data["next"]
        return url if url.startswith("/") and not url.startswith("//") else ""
