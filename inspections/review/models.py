"""Predictions and the people who answer them: inference, the image's latest prediction,: models (fields and constraints; services do the writing)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from inspections.catalog.models import DefectClass, InspectionImage
from inspections.registry.models import ModelVersion


class Prediction(models.Model):
    """What the models in service said of one image: the classifier's answer (``model_version``),
    and beside it the anomaly model's score when one is active (``anomaly_version``). With no
    classifier active an anomaly model answers alone: ``model_version`` is then the anomaly version,
    and the class fields (``label``, ``confidence``, ``ood_score``, ``margin``) are empty."""

    # No index of its own: prediction_image_latest (image, newest first) serves every lookup by image.
    image = models.ForeignKey(InspectionImage, on_delete=models.CASCADE, related_name="predictions", db_index=False)
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="predictions",
        help_text="The classifier that answered; an anomaly model's answer alone names the anomaly version.",
    )
    label = models.ForeignKey(
        DefectClass, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="The predicted class; empty for an anomaly model's answer alone (no classifier was active).",
    )
    confidence = models.FloatField(null=True, blank=True)
    probabilities = models.JSONField(help_text="Class name -> probability, for every class of the model.")
    needs_review = models.BooleanField(db_index=True)
    margin = models.FloatField(
        null=True, blank=True, db_index=True,
        help_text="Top class probability minus the runner-up's: small means the model hesitated.",
    )
    ood_score = models.FloatField(null=True, blank=True)
    anomaly_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False,
        help_text="The anomaly model that scored the image; empty when none was active.",
    )
    anomaly_score = models.FloatField(
        null=True, blank=True,
        help_text="How unlike good steel the image is: the anomaly model's image score over its threshold "
                  "(above 1: reason anomaly); empty when no anomaly model was active.",
    )
    review_reasons = models.JSONField(
        default=list, blank=True,
        help_text="Codes of why it needs a person (mlcore.artefact.REVIEW_REASONS); empty: auto-accepted.",
    )
    frame_issue = models.CharField(
        max_length=16, blank=True, default="",
        help_text="With blank_frame, what the frame check found: dark, saturated or uniform "
                  "(mlcore.ood.FRAME_ISSUES); empty otherwise and for predictions made before it was recorded.",
    )
    latency_ms = models.FloatField(null=True, blank=True)
    boxes = models.JSONField(
        default=list, blank=True,
        help_text="Defect boxes the model found, best first: [{label, box: [x0, y0, x1, y1] as fractions "
                  "of width and height, score}]; empty when the version has no detection head.",
    )
    embedding = models.BinaryField(
        null=True, blank=True, editable=False,
        help_text="The image's descriptor from this model (float16, little-endian): what look-alike search compares.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["image", "model_version"], name="one_prediction_per_image_and_version"),
            models.CheckConstraint(condition=Q(confidence__gte=0) & Q(confidence__lte=1), name="prediction_confidence_0_1"),
            # A class comes with its confidence; an answer without a class is an anomaly model's alone.
            models.CheckConstraint(
                condition=Q(label__isnull=False, confidence__isnull=False, ood_score__isnull=False)
                | Q(label__isnull=True, confidence__isnull=True, anomaly_score__isnull=False),
                name="prediction_class_or_anomaly_score",
            ),
            models.CheckConstraint(
                condition=Q(anomaly_score__isnull=True, anomaly_version__isnull=True)
                | Q(anomaly_score__isnull=False, anomaly_version__isnull=False),
                name="prediction_anomaly_score_names_its_version",
            ),
        ]
        # Sized for a billion rows (make bench-tables, docs/benchmarks.md): the latest prediction of an
        # image is one index probe; look-alike search finds a version's descriptors without reading
        # the table. Time windows on created_at use a BRIN index (rows arrive in time order), made on
        # PostgreSQL by migration 0020 and so not listed here.
        indexes = [
            models.Index(fields=["image", "-created_at", "-id"], name="prediction_image_latest"),
            models.Index(fields=["model_version", "id"], condition=Q(embedding__isnull=False),
                         name="prediction_embedded_by_version"),
        ]

    def __str__(self) -> str:
        if self.label_id is None:
            return f"anomaly {self.anomaly_score:.2f} for image {self.image_id} by model {self.model_version_id}"
        return f"{self.label} {self.confidence:.2f} for image {self.image_id} by model {self.model_version_id}"


class ReviewDecision(models.TextChoices):
    LABEL = "label", "labelled"
    EXCLUDE = "exclude", "excluded"
    INCLUDE = "include", "included again"
    UNDO = "undo", "undone"


class Review(models.Model):
    """An append-only record of one human decision: a label, excluding the image (or including it
    again), or taking back an earlier decision (undo: the image returns to the state that decision
    found, the label included, which may be none)."""

    image = models.ForeignKey(InspectionImage, on_delete=models.PROTECT, related_name="reviews")
    decision = models.CharField(max_length=16, choices=ReviewDecision.choices, default=ReviewDecision.LABEL)
    label = models.ForeignKey(
        DefectClass, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="The class decided (an undo: the label restored, empty for unlabelled); empty for exclude/include.",
    )
    reason = models.CharField(max_length=500, blank=True, help_text="Why it was excluded.")
    previous_label = models.ForeignKey(DefectClass, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    previous_state = models.JSONField(
        default=dict, blank=True,
        help_text="The image's decision fields before this decision (review services DECIDED_FIELDS), so an "
                  "undo can restore them; empty for decisions made before it was recorded.",
    )
    bulk_id = models.UUIDField(null=True, blank=True, help_text="Shared by the reviews of one bulk decision.")
    undoes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="undone_by",
        help_text="For an undo: the decision it took back (each decision is undone at most once).",
    )
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews")
    prediction = models.ForeignKey(Prediction, null=True, blank=True, on_delete=models.PROTECT, related_name="reviews")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(decision__in=ReviewDecision.values), name="review_decision_valid"),
            models.CheckConstraint(
                condition=Q(decision=ReviewDecision.LABEL, label__isnull=False) | Q(decision=ReviewDecision.UNDO)
                | (Q(decision__in=[ReviewDecision.EXCLUDE, ReviewDecision.INCLUDE]) & Q(label__isnull=True)),
                name="review_label_only_for_label_decisions",
            ),
            models.CheckConstraint(
                condition=Q(decision=ReviewDecision.UNDO, undoes__isnull=False)
                | (~Q(decision=ReviewDecision.UNDO) & Q(undoes__isnull=True)),
                name="review_undo_names_what_it_undoes",
            ),
        ]
        indexes = [
            # A reviewer's last bulk decision (the look-alike groups page offers to undo it).
            models.Index(fields=["reviewer", "-created_at"], condition=Q(bulk_id__isnull=False),
                         name="review_bulk_by_reviewer"),
        ]

    def __str__(self) -> str:
        if self.decision == ReviewDecision.UNDO:
            return f"{self.reviewer} undid review {self.undoes_id} of image {self.image_id} (back to {self.label})"
        if self.decision != ReviewDecision.LABEL:
            return f"{self.reviewer} {self.get_decision_display()} image {self.image_id}"
        return f"{self.reviewer} labelled image {self.image_id} as {self.label} ({self.previous_label} before)"
