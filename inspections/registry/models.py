"""Model versions and how they come to be: training runs, dataset snapshots, the promotion: models (fields and constraints; services do the writing)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from inspections.catalog.models import DefectClass, InspectionImage, Split


class ModelVersionStatus(models.TextChoices):
    CANDIDATE = "candidate"
    ACTIVE = "active"
    RETIRED = "retired"


class ModelVersionKind(models.TextChoices):
    """What a version does: name a defect class (``classifier``), or say how unlike good steel an
    image is (``anomaly``, learnt from defect-free images alone). One of each may be active."""

    CLASSIFIER = "classifier"
    ANOMALY = "anomaly"


class Retirement(models.TextChoices):
    NONE = ""
    REPLACED = "replaced", "replaced"
    ROLLED_BACK = "rolled_back", "rolled back"


# A reason for promoting a version over the gate's refusal: a sentence or a paragraph, not a file.
OVERRIDE_REASON_MAX_LENGTH = 2000


class ModelVersion(models.Model):
    number = models.PositiveIntegerField(unique=True)
    kind = models.CharField(
        max_length=16, choices=ModelVersionKind.choices, default=ModelVersionKind.CLASSIFIER,
        help_text="classifier (names a defect class) or anomaly (scores how unlike good steel an image is).",
    )
    status = models.CharField(
        max_length=16, choices=ModelVersionStatus.choices, default=ModelVersionStatus.CANDIDATE, db_index=True
    )
    artifact_path = models.CharField(max_length=500, help_text="Location of the artefact directory in storage.")
    backbone = models.CharField(max_length=64)
    weight_source = models.JSONField(default=dict, help_text="kind, file name and sha256 of the pretrained weights.")
    classes = models.JSONField(default=list)
    metrics = models.JSONField(default=dict, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    promoted_at = models.DateTimeField(null=True, blank=True)
    promoted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Who made it active last (by hand, or the person whose training run the gate promoted).",
    )
    retired_at = models.DateTimeField(null=True, blank=True)
    retired_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Who ended its last time as the active version.",
    )
    retirement = models.CharField(max_length=16, choices=Retirement.choices, blank=True, default=Retirement.NONE)
    decision_thresholds = models.JSONField(
        default=dict, blank=True,
        help_text="Class name -> confidence threshold set by an ML admin (below it a prediction of that class "
                  "goes to review); classes not named use the version's default.",
    )
    thresholds_revision = models.PositiveIntegerField(
        default=0, help_text="Bumped on every change of decision_thresholds; clients send it back in If-Match.",
    )
    box_thresholds = models.JSONField(
        default=dict, blank=True,
        help_text="Class name -> box score threshold set by an ML admin (the model's boxes of that class scoring "
                  "below it are hidden in the review view and cannot be accepted); classes not named use the "
                  "detection's default.",
    )
    box_thresholds_revision = models.PositiveIntegerField(
        default=0, help_text="Bumped on every change of box_thresholds; clients send it back in If-Match.",
    )
    promotion_override_reason = models.CharField(
        max_length=OVERRIDE_REASON_MAX_LENGTH, blank=True, default="",
        help_text="Why a person promoted it although the promotion gate refused it (the latest such promotion); "
                  "empty when it never was.",
    )
    promotion_override_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Who promoted it over the gate's refusal.",
    )
    promotion_override_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            # One active version of each kind: the classifier in service and the anomaly model in service.
            models.UniqueConstraint(
                fields=["kind"], condition=Q(status=ModelVersionStatus.ACTIVE), name="one_active_model_version_per_kind"
            ),
            models.CheckConstraint(condition=Q(kind__in=ModelVersionKind.values), name="model_version_kind_valid"),
            models.CheckConstraint(condition=Q(status__in=ModelVersionStatus.values), name="model_version_status_valid"),
            models.CheckConstraint(condition=Q(retirement__in=Retirement.values), name="model_version_retirement_valid"),
            # An override is recorded whole: a reason always has its time, and a time its reason.
            models.CheckConstraint(
                condition=(Q(promotion_override_reason="") & Q(promotion_override_at__isnull=True))
                | (~Q(promotion_override_reason="") & Q(promotion_override_at__isnull=False)),
                name="model_version_override_recorded_whole",
            ),
        ]

    @property
    def name(self) -> str:
        return f"v{self.number}"

    def __str__(self) -> str:
        if self.kind == ModelVersionKind.ANOMALY:
            return f"{self.name} (anomaly, {self.backbone}, {self.status})"
        return f"{self.name} ({self.backbone}, {self.status})"


class ThresholdKind(models.TextChoices):
    """Which per-class threshold of a version a change set: the decision threshold (confidence below
    it goes to review) or the box threshold (the model's boxes scoring below it are hidden)."""

    DECISION = "decision"
    BOX = "box"


class DecisionThresholdChange(models.Model):
    """One change of one class's decision or box threshold on one version: append-only history."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="threshold_changes")
    kind = models.CharField(max_length=16, choices=ThresholdKind.choices, default=ThresholdKind.DECISION)
    class_name = models.CharField(max_length=100)
    old_threshold = models.FloatField()
    new_threshold = models.FloatField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now_add=True, db_index=True)
    note = models.CharField(max_length=500, blank=True)
    revision = models.PositiveIntegerField(help_text="The version's thresholds_revision this change produced.")

    class Meta:
        ordering = ["-changed_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(new_threshold__gte=0) & Q(new_threshold__lte=1), name="threshold_change_new_0_1"
            ),
            models.CheckConstraint(condition=Q(kind__in=ThresholdKind.values), name="threshold_change_kind_valid"),
        ]

    def __str__(self) -> str:
        return (f"{self.kind} {self.class_name} {self.old_threshold:g} -> {self.new_threshold:g} "
                f"on model {self.model_version_id}")


class DatasetSnapshot(models.Model):
    """The exact (image, label, split) triples one training run used, frozen before it starts."""

    created_at = models.DateTimeField(auto_now_add=True)
    image_count = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, help_text="label -> split -> count")
    checksum = models.CharField(max_length=64, help_text="sha256 over the sorted triples.")

    def __str__(self) -> str:
        return f"snapshot {self.pk} ({self.image_count} images)"


class DatasetSnapshotItem(models.Model):
    snapshot = models.ForeignKey(DatasetSnapshot, on_delete=models.CASCADE, related_name="items")
    image = models.ForeignKey(InspectionImage, on_delete=models.PROTECT, related_name="+")
    label = models.ForeignKey(DefectClass, on_delete=models.PROTECT, related_name="+")
    split = models.CharField(max_length=16, choices=Split.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["snapshot", "image"], name="snapshot_image_once"),
            models.CheckConstraint(
                condition=Q(split__in=[Split.TRAIN, Split.VAL, Split.TEST]), name="snapshot_item_split_assigned"
            ),
        ]


class TrainingRunStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


IN_PROGRESS_STATUSES = (TrainingRunStatus.QUEUED, TrainingRunStatus.RUNNING)


class TrainingRunTrigger(models.TextChoices):
    MANUAL = "manual", "a person"
    SCHEDULE = "schedule", "the continuous-learning schedule"
    COMMAND = "command", "the command line"


class TrainingRun(models.Model):
    status = models.CharField(
        max_length=16, choices=TrainingRunStatus.choices, default=TrainingRunStatus.QUEUED, db_index=True
    )
    kind = models.CharField(
        max_length=16, choices=ModelVersionKind.choices, default=ModelVersionKind.CLASSIFIER,
        help_text="What it trains: a classifier from the labelled images, or an anomaly model from the no_defect ones.",
    )
    progress = models.FloatField(default=0.0)
    phase = models.CharField(max_length=64, blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    trigger = models.CharField(max_length=16, choices=TrainingRunTrigger.choices, default=TrainingRunTrigger.MANUAL)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life from the worker running it.")
    finished_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    cancelled_at = models.DateTimeField(null=True, blank=True, help_text="When the cancellation was asked for.")
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error = models.TextField(blank=True)
    log = models.TextField(blank=True)
    snapshot = models.ForeignKey(DatasetSnapshot, null=True, blank=True, on_delete=models.PROTECT, related_name="runs")
    model_version = models.OneToOneField(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="training_run"
    )
    gate_decision = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(progress__gte=0) & Q(progress__lte=1), name="training_run_progress_0_1"),
            models.CheckConstraint(condition=Q(status__in=TrainingRunStatus.values), name="training_run_status_valid"),
            models.CheckConstraint(condition=Q(trigger__in=TrainingRunTrigger.values), name="training_run_trigger_valid"),
            models.CheckConstraint(condition=Q(kind__in=ModelVersionKind.values), name="training_run_kind_valid"),
            # Training runs one at a time: the database refuses a second queued or running run.
            models.UniqueConstraint(
                models.Value(1), condition=Q(status__in=IN_PROGRESS_STATUSES), name="one_training_run_in_progress"
            ),
        ]

    def __str__(self) -> str:
        return f"training run {self.pk} ({self.status})"


class VersionComparisonStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class VersionComparison(models.Model):
    """Two versions' predictions on one image set, computed by the inference worker: one row per
    pair of versions, the older (lower number) first. A new image set (``fingerprint``) starts the
    row over; the predictions are ~60 bytes per image, so they stay in the row."""

    older = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="+")
    newer = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="+")
    fingerprint = models.CharField(max_length=64, help_text="sha256 of the image set the predictions are for.")
    status = models.CharField(
        max_length=16, choices=VersionComparisonStatus.choices, default=VersionComparisonStatus.QUEUED
    )
    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(
        null=True, blank=True, help_text="When its message was last sent; empty while none is out (broker down)."
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    predictions = models.JSONField(
        null=True, blank=True,
        help_text="One row per image: id, true label, source, older's label and confidence, newer's label and confidence.",
    )
    error = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["older", "newer"], name="one_comparison_per_version_pair"),
            models.CheckConstraint(condition=~Q(older=models.F("newer")), name="comparison_of_two_versions"),
            models.CheckConstraint(
                condition=Q(status__in=VersionComparisonStatus.values), name="version_comparison_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"comparison of model {self.older_id} with {self.newer_id} ({self.status})"
