"""How the API shows predictions and reviews, and what it accepts for a review."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from inspections.api.fields import _username
from inspections.catalog import selectors as catalog_selectors
from inspections.catalog.models import InspectionImage
from inspections.errors import ApplicationError
from inspections.review import selectors as review_selectors
from inspections.review.models import Prediction, Review
from inspections.review.reasons import image_review_reasons, prediction_explanation
from inspections.review.services.boxes import prediction_boxes_marked

# --- Outputs ---------------------------------------------------------------------------------

class PredictionOutput(serializers.ModelSerializer):
    label = serializers.CharField(
        source="label.name", allow_null=True, default=None,
        help_text="The predicted class; null when an anomaly model answered alone (no classifier was active).")
    model_version = serializers.IntegerField(source="model_version_id")
    model_version_number = serializers.IntegerField(source="model_version.number")
    probabilities = serializers.DictField(child=serializers.FloatField(), help_text="Class name -> probability, every class.")
    review_reasons = serializers.ListField(
        child=serializers.CharField(),
        help_text="Why it needs a person: foreign, low_confidence, blank_frame, anomaly; empty when auto-accepted.")
    review_explanation = serializers.SerializerMethodField(help_text="The reasons in words: [{code, text}].")
    frame_issue = serializers.SerializerMethodField(
        help_text="With blank_frame, what the frame check found: dark, saturated or uniform; else null.")
    anomaly_score = serializers.FloatField(
        allow_null=True, read_only=True,
        help_text="How unlike good steel the image is: the anomaly model's score over its threshold (above 1: reason "
                  "anomaly); null when no anomaly model was active.")
    anomaly_model_version = serializers.IntegerField(
        source="anomaly_version_id", allow_null=True, read_only=True,
        help_text="Id of the anomaly model that scored it; null when none was active.")
    boxes = serializers.SerializerMethodField(
        help_text="Where the model found defects, best first: [{label, box: [x0, y0, x1, y1] as fractions of "
                  "width and height (top-left origin), score, box_threshold (the class's box threshold on the "
                  "version), above_threshold (score >= box_threshold; the review view hides the others)}]; empty "
                  "for a version without a detection head.")

    class Meta:
        model = Prediction
        fields = ["id", "label", "confidence", "probabilities", "needs_review", "review_reasons",
                  "review_explanation", "frame_issue", "ood_score", "anomaly_score", "anomaly_model_version", "boxes",
                  "latency_ms", "model_version",
                  "model_version_number", "created_at"]

    @extend_schema_field(serializers.ListField(child=serializers.DictField(child=serializers.CharField())))
    def get_review_explanation(self, prediction: Prediction) -> list[dict]:
        return prediction_explanation(prediction)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_frame_issue(self, prediction: Prediction) -> str | None:
        return prediction.frame_issue or None

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_boxes(self, prediction: Prediction) -> list:
        return prediction_boxes_marked(boxes=prediction.boxes, version=prediction.model_version)


class ReviewOutput(serializers.ModelSerializer):
    decision = serializers.CharField(help_text="label, exclude, include (an exclusion undone) or undo (an earlier "
                                               "review taken back: `undoes`; `label` is the label restored).")
    label = serializers.CharField(source="label.name", allow_null=True, default=None,
                                  help_text="The class decided; null for exclude/include.")
    previous_label = serializers.CharField(source="previous_label.name", allow_null=True, default=None)
    reviewer = serializers.SerializerMethodField()

    class Meta:
        model = Review
        fields = ["id", "image", "decision", "label", "previous_label", "reason", "reviewer", "prediction",
                  "bulk_id", "undoes", "created_at"]
        extra_kwargs = {"bulk_id": {"help_text": "Shared by the reviews of one bulk decision (null for one image's)."},
                        "undoes": {"help_text": "For an undo: the id of the review it took back."}}

    def get_reviewer(self, review: Review) -> str:
        return _username(review.reviewer)


class ImageOutput(serializers.ModelSerializer):
    label = serializers.CharField(source="label.name", allow_null=True, default=None)
    uploaded_by = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    file_url = serializers.SerializerMethodField()
    prediction = serializers.SerializerMethodField(help_text="The latest prediction, or null while there is none.")

    class Meta:
        model = InspectionImage
        fields = ["id", "url", "file_url", "sha256", "original_name", "format", "mode", "width", "height",
                  "size_bytes", "source", "external_id", "uploaded_by", "created_at", "status", "split",
                  "label", "label_source", "label_version", "excluded", "exclusion_reason", "review_reasons",
                  "suspect_label", "prediction"]

    review_reasons = serializers.SerializerMethodField(
        help_text="Why the image needs a person: the latest prediction's reasons, plus suspect_label.")
    suspect_label = serializers.SerializerMethodField(
        help_text="When a training run's out-of-fold check found the label suspect: {suggested_label, score, "
                  "training_run, flagged_at} (the run and when it flagged it; that check is not the model in "
                  "service); else null.")

    def get_uploaded_by(self, image: InspectionImage) -> str | None:
        return _username(image.uploaded_by)

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_review_reasons(self, image: InspectionImage) -> list[str]:
        return image_review_reasons(image, review_selectors.image_latest_prediction(image=image))

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_suspect_label(self, image: InspectionImage) -> dict | None:
        if image.suspect_suggestion_id is None:
            return None
        return {"suggested_label": image.suspect_suggestion.name, "score": image.suspect_score,
                "training_run": image.suspect_run_id, "flagged_at": image.suspect_flagged_at}

    def get_url(self, image: InspectionImage) -> str:
        return self._absolute(reverse("inspections:api:image-detail", args=[image.pk]))

    def get_file_url(self, image: InspectionImage) -> str:
        return self._absolute(reverse("inspections:api:image-file", args=[image.pk]))

    @extend_schema_field(PredictionOutput(allow_null=True))
    def get_prediction(self, image: InspectionImage) -> dict | None:
        prediction = review_selectors.image_latest_prediction(image=image)
        return PredictionOutput(prediction).data if prediction else None

    def _absolute(self, path: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


class ImageDetailOutput(ImageOutput):
    reviews = serializers.SerializerMethodField(help_text="Review history, newest first.")
    box_count = serializers.SerializerMethodField(
        help_text="How many defect boxes the image has now; images/{id}/boxes/ lists them.")

    class Meta(ImageOutput.Meta):
        fields = [*ImageOutput.Meta.fields, "reviews", "boxes_version", "box_count"]

    def get_box_count(self, image: InspectionImage) -> int:
        return catalog_selectors.box_list_for_image(image=image).count()

    @extend_schema_field(ReviewOutput(many=True))
    def get_reviews(self, image: InspectionImage) -> list:
        reviews = getattr(image, "reviews_latest_first", None)
        if reviews is None:
            reviews = review_selectors.review_list_for_image(image=image)
        return ReviewOutput(reviews, many=True).data


class ReviewCreatedOutput(serializers.Serializer):
    review = ReviewOutput()
    image = ImageDetailOutput()


class ReviewInput(serializers.Serializer):
    """One decision: ``label`` (a class; labelling an excluded image includes it again), or
    ``exclude: true`` with a ``reason`` (not an inspection image), or ``exclude: false`` (undo)."""

    label = serializers.CharField(max_length=64, required=False, help_text="Name of an active defect class.")
    exclude = serializers.BooleanField(
        required=False, allow_null=True, default=None,
        help_text="true: not an inspection image (needs reason); false: include an excluded image again.")
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="",
                                   help_text="Why the image is excluded (camera fault, wrong material, test shot).")
    expected_version = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, default=None,
        help_text="The label_version you saw (required unless force is true); a different current version "
                  "answers 409.",
    )
    force = serializers.BooleanField(
        required=False, default=False,
        help_text="true: decide without expected_version, overwriting whatever the current label is.")

    def validate(self, attrs: dict) -> dict:
        has_label, exclude = "label" in attrs, attrs.get("exclude")
        if has_label == (exclude is not None):
            raise serializers.ValidationError({"label": ["Give either label or exclude, not both and not neither."]})
        if exclude is True and not attrs["reason"].strip():
            raise serializers.ValidationError({"reason": ["Say why the image is excluded."]})
        if attrs["expected_version"] is None and not attrs["force"]:
            # Without it a decision silently overwrites someone else's: the client must say which
            # version it saw, or that it means to overwrite.
            raise ApplicationError(
                "Send expected_version (the image's label_version you saw), or \"force\": true to overwrite "
                "whatever the current label is.", code="expected_version_required")
        return attrs
