"""What the platform knows of its images: the images themselves, defect classes, splits,: models (fields and constraints; services do the writing)."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Case, F, IntegerField, Q, Value, When

CLASS_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
NO_DEFECT_CLASS = "no_defect"  # the class of defect-free surfaces; created by migration 0007


class DefectClass(models.Model):
    """A defect class is data: the six NEU classes to start with, more added by QA later."""

    name = models.CharField(
        max_length=64,
        unique=True,
        validators=[RegexValidator(CLASS_NAME_PATTERN, "Lower-case letters, digits, '-' and '_' only.")],
    )
    description = models.TextField(blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "defect classes"
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(name__regex=CLASS_NAME_PATTERN), name="defect_class_name_format"),
        ]

    def __str__(self) -> str:
        return self.name


class ImageStatus(models.TextChoices):
    PENDING = "pending"
    PREDICTED = "predicted"
    FAILED = "failed"


class Split(models.TextChoices):
    TRAIN = "train"
    VAL = "val"
    TEST = "test"
    UNASSIGNED = "unassigned"


class LabelSource(models.TextChoices):
    NONE = ""
    IMPORT = "import", "dataset import"
    REVIEW = "review", "human review"


# An image waits for a person until a person decided its label; a suspect label waits again. An
# excluded image never waits. (The review queue's set; its partial index below holds just these.)
UNREVIEWED = ~Q(label_source=LabelSource.REVIEW) | Q(suspect_suggestion__isnull=False)
REVIEW_QUEUE_WAITING = Q(excluded=False) & UNREVIEWED
# The queue's third key: unlabelled images before labelled ones.
UNLABELLED_FIRST = Case(When(label__isnull=True, then=Value(0)), default=Value(1), output_field=IntegerField())
# The review queue's order (inspections.review.selectors.image_list_for_review says why), and the order of
# its partial index below: the two must be the same expressions for the index to serve the query.
REVIEW_QUEUE_ORDER = (
    F("needs_attention").desc(nulls_last=True), F("latest_margin").asc(nulls_last=True), UNLABELLED_FIRST.asc(),
    F("created_at").asc(), F("id").asc(),
)


def image_upload_to(instance: InspectionImage, filename: str) -> str:
    # Content-addressed: the same bytes always map to the same place.
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return f"images/{instance.sha256[:2]}/{instance.sha256}.{extension}"


class InspectionImage(models.Model):
    file = models.FileField(upload_to=image_upload_to, max_length=255)
    sha256 = models.CharField(max_length=64, unique=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    format = models.CharField(max_length=16)
    mode = models.CharField(max_length=16, blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    original_name = models.CharField(max_length=255, blank=True)
    source = models.CharField(max_length=100, blank=True, db_index=True)
    external_id = models.CharField(max_length=200, blank=True, db_index=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    status = models.CharField(max_length=16, choices=ImageStatus.choices, default=ImageStatus.PENDING, db_index=True)
    split = models.CharField(max_length=16, choices=Split.choices, default=Split.UNASSIGNED, db_index=True)
    label = models.ForeignKey(
        DefectClass, null=True, blank=True, on_delete=models.PROTECT, related_name="images",
        help_text="Current label: from the dataset import or the latest human review.",
    )
    label_source = models.CharField(max_length=16, choices=LabelSource.choices, blank=True, default=LabelSource.NONE)
    label_version = models.PositiveIntegerField(
        default=0, help_text="Bumped on every label change; reviewers send it back to detect concurrent edits."
    )
    excluded = models.BooleanField(
        default=False, db_index=True,
        help_text="A person said it is not an inspection image: out of the queue, training and evaluation.",
    )
    exclusion_reason = models.CharField(max_length=500, blank=True)
    suspect_suggestion = models.ForeignKey(
        DefectClass, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Set when the out-of-fold check of a training run whose version was promoted found the current "
                  "label suspect: the class that check suggests (not necessarily the model in service's answer).",
    )
    suspect_score = models.FloatField(null=True, blank=True, help_text="How suspect the label is, 0..1.")
    suspect_cleared_label = models.ForeignKey(
        DefectClass, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The label a person decided while it was suspect: not flagged again until the label changes.",
    )
    suspect_run = models.ForeignKey(
        "TrainingRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False,
        help_text="The training run whose out-of-fold check flagged the current suspect label.",
    )
    suspect_flagged_at = models.DateTimeField(null=True, blank=True, help_text="When that run flagged it.")
    boxes_version = models.PositiveIntegerField(
        default=0, help_text="Bumped on every change of the image's defect boxes; clients send it back (409 if stale).",
    )
    # The latest prediction's facts (newest created_at, then id), kept on the image so the review
    # queue and the prediction filters are index reads, not a subquery per image. Written only by
    # inspections.review.services.latest_prediction, in the transaction that changes what they follow.
    latest_prediction = models.ForeignKey(
        "Prediction", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False,
        editable=False, help_text="The image's latest prediction (the one users see).",
    )
    latest_needs_review = models.BooleanField(null=True, blank=True, editable=False)
    latest_margin = models.FloatField(null=True, blank=True, editable=False)
    latest_label = models.ForeignKey(
        DefectClass, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False,
        editable=False, help_text="The latest prediction's class.",
    )
    latest_model_version = models.ForeignKey(
        "ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False,
        editable=False, help_text="The version that made the latest prediction.",
    )
    latest_review_reasons = models.JSONField(null=True, blank=True, editable=False)
    latest_anomaly_score = models.FloatField(
        null=True, blank=True, editable=False,
        help_text="The latest prediction's anomaly score (null: none was scored): what the queue may order by.",
    )
    needs_attention = models.BooleanField(
        null=True, blank=True, editable=False,
        help_text="The queue's first key: the label is suspect, else the latest prediction's needs_review "
                  "(null: neither a suspect label nor a prediction).",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(sha256__regex=r"^[0-9a-f]{64}$"), name="image_sha256_hex"),
            models.CheckConstraint(condition=Q(status__in=ImageStatus.values), name="image_status_valid"),
            models.CheckConstraint(condition=Q(split__in=Split.values), name="image_split_valid"),
            models.CheckConstraint(
                condition=Q(label__isnull=False) | Q(label_source=LabelSource.NONE), name="image_label_source_needs_label"
            ),
        ]
        indexes = [
            models.Index(fields=["label", "split"]),
            # The retention sweep: a source's oldest images first (migration 0018 builds it concurrently).
            models.Index(fields=["source", "created_at"], name="image_source_created_at"),
            # The review queue ordered by anomaly score, most unlike good first (?order=anomaly).
            models.Index(F("latest_anomaly_score").desc(), "id", condition=Q(latest_anomaly_score__isnull=False),
                         name="image_anomaly_score"),
            # The queue's "reviewed so far" count, read from this index alone.
            models.Index(fields=["id"], condition=Q(label_source=LabelSource.REVIEW), name="image_reviewed"),
            # Finds the images to re-point when a prediction is deleted.
            models.Index(fields=["latest_prediction"], name="image_latest_prediction",
                         condition=Q(latest_prediction__isnull=False)),
            # The review queue in its order (REVIEW_QUEUE_ORDER), holding only the
            # images that wait for a person: page 1 reads 50 entries, the counts read this index alone.
            # PostgreSQL only (migration 0021 builds it concurrently; SQLite has no NULLS LAST in indexes).
            models.Index(
                *REVIEW_QUEUE_ORDER, condition=REVIEW_QUEUE_WAITING, include=["label", "suspect_suggestion", "latest_prediction"],
                name="image_review_queue",
            ),
        ]

    def __str__(self) -> str:
        return f"image {self.pk} ({self.sha256[:12]})"


class BoxSource(models.TextChoices):
    IMPORT = "import", "dataset import"
    PERSON = "person", "a person"
    MODEL = "model", "a model version"


class DefectBox(models.Model):
    """Where on an image a defect is. Coordinates are fractions of the image's width and height,
    origin at the top-left corner: ``0 <= x0 < x1 <= 1`` and ``0 <= y0 < y1 <= 1`` (the database
    refuses anything else, NaN included). A deleted box keeps its row (``deleted_at`` set) so ids
    stay stable and the history can point at it. The image-level label stays the frame's main
    defect; boxes may name other classes."""

    image = models.ForeignKey(InspectionImage, on_delete=models.CASCADE, related_name="boxes")
    label = models.ForeignKey(DefectClass, on_delete=models.PROTECT, related_name="+")
    x0 = models.FloatField()
    y0 = models.FloatField()
    x1 = models.FloatField()
    y1 = models.FloatField()
    source = models.CharField(max_length=16, choices=BoxSource.choices)
    model_version = models.ForeignKey(
        "ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="The version that proposed it, for boxes from a model.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(x0__gte=0) & Q(x0__lt=models.F("x1")) & Q(x1__lte=1), name="defect_box_x_inside"
            ),
            models.CheckConstraint(
                condition=Q(y0__gte=0) & Q(y0__lt=models.F("y1")) & Q(y1__lte=1), name="defect_box_y_inside"
            ),
            models.CheckConstraint(condition=Q(source__in=BoxSource.values), name="defect_box_source_valid"),
            models.CheckConstraint(
                condition=~Q(source=BoxSource.MODEL) | Q(model_version__isnull=False),
                name="defect_box_model_source_names_version",
            ),
        ]
        indexes = [models.Index(fields=["image", "deleted_at"])]

    def __str__(self) -> str:
        return f"{self.label} box {self.pk} on image {self.image_id}"


class BoxAction(models.TextChoices):
    DRAWN = "drawn"
    MOVED = "moved"
    RELABELLED = "relabelled"
    DELETED = "deleted"


class DefectBoxChange(models.Model):
    """One person's change of one box: append-only (a database trigger refuses UPDATE)."""

    box = models.ForeignKey(DefectBox, on_delete=models.CASCADE, related_name="changes")
    image = models.ForeignKey(InspectionImage, on_delete=models.CASCADE, related_name="box_changes")
    action = models.CharField(max_length=16, choices=BoxAction.choices)
    before = models.JSONField(null=True, blank=True, help_text="label and box before; null when drawn.")
    after = models.JSONField(null=True, blank=True, help_text="label and box after; null when deleted.")
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    changed_at = models.DateTimeField(auto_now_add=True, db_index=True)
    boxes_version = models.PositiveIntegerField(help_text="The image's boxes_version this change produced.")

    class Meta:
        ordering = ["-changed_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(action__in=BoxAction.values), name="defect_box_change_action_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.changed_by} {self.action} box {self.box_id}"
