"""How the API shows images, uploads and classes, and what it accepts for them."""

from __future__ import annotations

import math

from django.conf import settings
from rest_framework import serializers

from inspections.catalog.limits import EXTERNAL_ID_MAX_LENGTH, SOURCE_MAX_LENGTH
from inspections.catalog.models import DefectClass
from inspections.catalog.services.classes import DESCRIPTION_MAX_LENGTH
from inspections.review.api.serializers import ImageOutput
from mlcore.readiness import ACTIVE, COLLECTING


class UploadErrorOutput(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.DictField()


class UploadResultOutput(serializers.Serializer):
    """One file of a multi-file upload: ``image`` when it was accepted, ``error`` when refused."""

    filename = serializers.CharField()
    created = serializers.BooleanField(required=False, help_text="false when the same bytes were already there")
    image = ImageOutput(required=False)
    error = UploadErrorOutput(required=False)


class MultiUploadOutput(serializers.Serializer):
    results = UploadResultOutput(many=True)
    wait_skipped = serializers.DictField(
        required=False, help_text="Only with ?wait= when the answer did not wait: {code, message}; code "
                                  "no_active_model (nothing predicts uploads until a version is active).")


class DefectClassOutput(serializers.ModelSerializer):
    """A class with its readiness (``catalog.selectors.defect_classes_with_readiness`` sets it)."""

    status = serializers.ChoiceField(
        source="readiness.status", choices=[ACTIVE, COLLECTING], read_only=True,
        help_text="active: the next training run includes it; collecting: too few labelled training or test "
                  "images yet (STEELQC_CLASS_MIN_TRAIN_IMAGES, STEELQC_CLASS_MIN_TEST_IMAGES), kept out of training",
    )
    images_needed = serializers.IntegerField(
        source="readiness.images_needed", read_only=True,
        help_text="more labelled images until the class is active, as the split will share them out; 0 when active",
    )

    class Meta:
        model = DefectClass
        fields = ["id", "name", "description", "active", "created_at", "status", "images_needed"]


# --- Inputs ----------------------------------------------------------------------------------

class UploadQuery(serializers.Serializer):
    wait = serializers.FloatField(
        required=False, default=0, min_value=0,
        help_text="Seconds to wait for the prediction before answering (0 to STEELQC_API_MAX_WAIT_SECONDS).",
    )

    def validate_wait(self, value: float) -> float:
        limit = settings.STEELQC_API_MAX_WAIT_SECONDS
        if not math.isfinite(value) or value > limit:
            raise serializers.ValidationError(f"Ensure this value is less than or equal to {limit}.")
        return value


class UploadInput(serializers.Serializer):
    file = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True, use_url=False),
        min_length=1, help_text="One or more image files (repeat the field for several).",
    )
    source = serializers.CharField(max_length=SOURCE_MAX_LENGTH, required=False, allow_blank=True, default="")
    external_id = serializers.CharField(max_length=EXTERNAL_ID_MAX_LENGTH, required=False, allow_blank=True, default="")

    def validate_file(self, files: list) -> list:
        limit = settings.STEELQC_API_MAX_FILES_PER_REQUEST
        if len(files) > limit:
            raise serializers.ValidationError(f"At most {limit} files per request; this one has {len(files)}.")
        return files


class DefectClassInput(serializers.Serializer):
    name = serializers.CharField(max_length=64)
    # The limit is the service's (one code, description_too_long, for every caller); stated here for the schema.
    description = serializers.CharField(
        required=False, allow_blank=True, default="",
        help_text=f"What the defect looks like; at most {DESCRIPTION_MAX_LENGTH} characters (after trimming), "
                  "longer is 400 description_too_long.")
