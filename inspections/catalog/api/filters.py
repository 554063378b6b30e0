"""Query parameters of ``GET images/``: validated here, applied by ``selectors.image_list``."""

from __future__ import annotations

from rest_framework import serializers

from inspections.catalog.limits import EXTERNAL_ID_MAX_LENGTH, SEARCH_MAX_LENGTH, SOURCE_MAX_LENGTH
from inspections.catalog.models import DefectClass, ImageStatus, Split
from inspections.registry.models import ModelVersion
from mlcore.artefact import REVIEW_REASONS


class ImageFilters(serializers.Serializer):
    q = serializers.CharField(required=False, allow_blank=True, max_length=SEARCH_MAX_LENGTH, help_text=(
        "Search: part of the file name or external id (case-insensitive); a whole number also finds the "
        "image with that id. The review queue's search box means the same."))
    status = serializers.ChoiceField(choices=ImageStatus.values, required=False)
    label = serializers.CharField(required=False, allow_blank=True, max_length=64,
                                  help_text="Class name of the current label; empty for unlabelled images.")
    needs_review = serializers.BooleanField(required=False, help_text="The latest prediction's needs_review flag.")
    model_version = serializers.IntegerField(required=False, min_value=1,
                                             help_text="Id of the version that made the image's latest prediction.")
    created_after = serializers.DateTimeField(required=False, help_text="ISO 8601; inclusive.")
    created_before = serializers.DateTimeField(required=False, help_text="ISO 8601; inclusive.")
    source = serializers.CharField(required=False, max_length=SOURCE_MAX_LENGTH)
    external_id = serializers.CharField(required=False, max_length=EXTERNAL_ID_MAX_LENGTH)
    split = serializers.ChoiceField(choices=Split.values, required=False)
    excluded = serializers.BooleanField(required=False, help_text="A person excluded it (not an inspection image).")
    order = serializers.ChoiceField(
        choices=["newest", "anomaly"], required=False,
        help_text="newest (default): newest first; anomaly: the highest anomaly_score first, then newest, "
                  "images without a score after every scored one.")
    review_reason = serializers.ChoiceField(
        choices=REVIEW_REASONS, required=False,
        help_text="A code among the latest prediction's review_reasons (suspect_label: the image's label is suspect).",
    )

    def validate_label(self, value: str) -> str:
        if value and not DefectClass.objects.filter(name=value).exists():
            raise serializers.ValidationError(f"No class named {value!r}.")
        return value

    def validate_model_version(self, value: int) -> int:
        if not ModelVersion.objects.filter(pk=value).exists():
            raise serializers.ValidationError(f"No model version with id {value}.")
        return value

    def validate(self, attrs: dict) -> dict:
        after, before = attrs.get("created_after"), attrs.get("created_before")
        if after and before and after > before:
            raise serializers.ValidationError({"created_before": "Must not be earlier than created_after."})
        return attrs

    def to_internal_value(self, data):
        if hasattr(data, "getlist"):
            # Repeated parameters are refused for every endpoint by ApiView. A plain dict: with a
            # QueryDict DRF reads an absent boolean as false.
            data = {name: data[name] for name in self.fields if name in data}
        return super().to_internal_value(data)

