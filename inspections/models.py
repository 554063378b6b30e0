"""The inspection domain: images, defect classes, human reviews, predictions, model versions
and training runs. Models hold fields and constraints only; services do the writing."""

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
# The review queue's order (inspections.selectors.image_list_for_review says why), and the order of
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
        help_text="Set when the last training run found the current label suspect: the class the model suggests.",
    )
    suspect_score = models.FloatField(null=True, blank=True, help_text="How suspect the label is, 0..1.")
    suspect_cleared_label = models.ForeignKey(
        DefectClass, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The label a person decided while it was suspect: not flagged again until the label changes.",
    )
    boxes_version = models.PositiveIntegerField(
        default=0, help_text="Bumped on every change of the image's defect boxes; clients send it back (409 if stale).",
    )
    # The latest prediction's facts (newest created_at, then id), kept on the image so the review
    # queue and the prediction filters are index reads, not a subquery per image. Written only by
    # inspections.services.latest_prediction, in the transaction that changes what they follow.
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


class ModelVersionStatus(models.TextChoices):
    CANDIDATE = "candidate"
    ACTIVE = "active"
    RETIRED = "retired"


class Retirement(models.TextChoices):
    NONE = ""
    REPLACED = "replaced", "replaced"
    ROLLED_BACK = "rolled_back", "rolled back"


class ModelVersion(models.Model):
    number = models.PositiveIntegerField(unique=True)
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

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"], condition=Q(status=ModelVersionStatus.ACTIVE), name="one_active_model_version"
            ),
            models.CheckConstraint(condition=Q(status__in=ModelVersionStatus.values), name="model_version_status_valid"),
            models.CheckConstraint(condition=Q(retirement__in=Retirement.values), name="model_version_retirement_valid"),
        ]

    @property
    def name(self) -> str:
        return f"v{self.number}"

    def __str__(self) -> str:
        return f"{self.name} ({self.backbone}, {self.status})"


class DecisionThresholdChange(models.Model):
    """One change of one class's decision threshold on one version: append-only history."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="threshold_changes")
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
        ]

    def __str__(self) -> str:
        return f"{self.class_name} {self.old_threshold:g} -> {self.new_threshold:g} on model {self.model_version_id}"


class Prediction(models.Model):
    # No index of its own: prediction_image_latest (image, newest first) serves every lookup by image.
    image = models.ForeignKey(InspectionImage, on_delete=models.CASCADE, related_name="predictions", db_index=False)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="predictions")
    label = models.ForeignKey(DefectClass, on_delete=models.PROTECT, related_name="+")
    confidence = models.FloatField()
    probabilities = models.JSONField(help_text="Class name -> probability, for every class of the model.")
    needs_review = models.BooleanField(db_index=True)
    margin = models.FloatField(
        null=True, blank=True, db_index=True,
        help_text="Top class probability minus the runner-up's: small means the model hesitated.",
    )
    ood_score = models.FloatField()
    review_reasons = models.JSONField(
        default=list, blank=True,
        help_text="Codes of why it needs a person (mlcore.artefact.REVIEW_REASONS); empty: auto-accepted.",
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
        return f"{self.label} {self.confidence:.2f} for image {self.image_id} by model {self.model_version_id}"


class ReviewDecision(models.TextChoices):
    LABEL = "label", "labelled"
    EXCLUDE = "exclude", "excluded"
    INCLUDE = "include", "included again"


class Review(models.Model):
    """An append-only record of one human decision: a label, or excluding the image (or undoing that)."""

    image = models.ForeignKey(InspectionImage, on_delete=models.PROTECT, related_name="reviews")
    decision = models.CharField(max_length=16, choices=ReviewDecision.choices, default=ReviewDecision.LABEL)
    label = models.ForeignKey(
        DefectClass, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="The class decided; empty for exclude/include decisions.",
    )
    reason = models.CharField(max_length=500, blank=True, help_text="Why it was excluded.")
    previous_label = models.ForeignKey(DefectClass, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews")
    prediction = models.ForeignKey(Prediction, null=True, blank=True, on_delete=models.PROTECT, related_name="reviews")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(decision__in=ReviewDecision.values), name="review_decision_valid"),
            models.CheckConstraint(
                condition=Q(decision=ReviewDecision.LABEL, label__isnull=False)
                | (~Q(decision=ReviewDecision.LABEL) & Q(label__isnull=True)),
                name="review_label_only_for_label_decisions",
            ),
        ]

    def __str__(self) -> str:
        if self.decision != ReviewDecision.LABEL:
            return f"{self.reviewer} {self.get_decision_display()} image {self.image_id}"
        return f"{self.reviewer} labelled image {self.image_id} as {self.label} ({self.previous_label} before)"


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
            # Training runs one at a time: the database refuses a second queued or running run.
            models.UniqueConstraint(
                models.Value(1), condition=Q(status__in=IN_PROGRESS_STATUSES), name="one_training_run_in_progress"
            ),
        ]

    def __str__(self) -> str:
        return f"training run {self.pk} ({self.status})"


class AuthEventKind(models.TextChoices):
    LOGIN = "login", "logged in"
    LOGIN_FAILED = "login_failed", "login failed"
    LOCKOUT = "lockout", "locked out"
    UNLOCK = "unlock", "unlocked"
    LOGOUT = "logout", "logged out"
    TOKEN_CREATED = "token_created", "API token created"
    TOKEN_REVOKED = "token_revoked", "API token revoked"
    ROLE_ADDED = "role_added", "role added"
    ROLE_REMOVED = "role_removed", "role removed"
    TOKEN_NEW_ADDRESS = "token_new_ip", "API token used from a new address"


class AuthEvent(models.Model):
    """One authentication event; append-only (a database trigger refuses UPDATE and DELETE).

    ``user`` and ``actor`` are plain ids without a foreign-key constraint, and ``username`` keeps
    the name as it was: the trail outlives the accounts it speaks of and never changes when one
    is deleted.
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=16, choices=AuthEventKind.choices, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
        related_name="+", help_text="Whose account the event concerns.",
    )
    username = models.CharField(max_length=150, blank=True, help_text="The user name as given or as it was then.")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
        related_name="+", help_text="Who did it, when someone else than the user (an admin changing roles).",
    )
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    detail = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=AuthEventKind.values), name="auth_event_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.username or '-'} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class ApiTokenScope(models.TextChoices):
    """What a token may do, checked beside its owner's role (the effective right is both)."""

    READ = "read", "read only"
    UPLOAD = "upload", "read and upload"
    REVIEW = "review", "read and review"
    ADMIN = "admin", "everything the role allows"


class ApiToken(models.Model):
    """An API token. The secret itself is never stored: only its first characters (``prefix``,
    for lookup and display) and its SHA-256 (``digest``); a database dump holds no working key."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, db_index=True)
    digest = models.CharField(max_length=64, unique=True)
    scope = models.CharField(max_length=8, choices=ApiTokenScope.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(scope__in=ApiTokenScope.values), name="api_token_scope_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…) of {self.user}"

    @property
    def state(self) -> str:
        """live, revoked or expired."""
        from django.utils import timezone

        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "live"


class DriftAlert(models.Model):
    """One episode of a source sending images unlike training: opened when its share flagged
    ``foreign`` over the drift window passed the threshold, closed when it fell back. Rows are
    never edited except to close them; at most one is open per source (a database constraint)."""

    source = models.CharField(max_length=100, blank=True, help_text="The images' source ('' for none given).")
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The active version whose predictions were measured.",
    )
    opened_at = models.DateTimeField(db_index=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    window_hours = models.PositiveIntegerField()
    threshold = models.FloatField()
    foreign_share = models.FloatField(help_text="Share flagged foreign over the window when it opened.")
    image_count = models.PositiveIntegerField(help_text="Images over the window when it opened.")
    baseline_foreign_share = models.FloatField(null=True, blank=True)
    closed_foreign_share = models.FloatField(null=True, blank=True, help_text="The share when it closed.")
    closed_image_count = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["source"], condition=Q(closed_at__isnull=True),
                                    name="one_open_drift_alert_per_source"),
            models.CheckConstraint(condition=Q(foreign_share__gte=0) & Q(foreign_share__lte=1),
                                   name="drift_alert_share_0_1"),
        ]

    def __str__(self) -> str:
        state = "open" if self.closed_at is None else "closed"
        return f"drift alert for source {self.source or '(none)'} ({state})"


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
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
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


def retention_default_keep_days() -> int | None:
    """A new policy's ``keep_days``: the settings' default (``STEELQC_RETENTION_KEEP_DAYS``)."""
    return settings.STEELQC_RETENTION_KEEP_DAYS


class RetentionPolicy(models.Model):
    """What a line source keeps of the images it sends to ``classify/`` (``images/`` keeps all).

    Images with any review reason are always kept; of the confidently accepted rest a share
    ``sample_rate`` is kept, at most ``max_per_minute`` / ``max_per_day`` per source; the others
    leave no image and no row, only the per-minute counts (``LineMinute``). The row with a blank
    ``source`` is the default for sources without their own (settings give it when absent).

    ``keep_days``: how long an image of the source is kept when nobody needs it -- sampled,
    confidently accepted ``classify/`` images and plain uploads alike; blank keeps them forever.
    The retention sweep (``apply_retention``) deletes such an image, row and stored file, once it
    is older than that. Never deleted, whatever its age: an image with a label or any review
    (labelled, excluded, included again), a defect box from a person or an import, one in any
    dataset snapshot or with a train/val/test split, one in the open review queue (a prediction
    gave a review reason and no person has decided yet), and one not predicted (pending or failed).
    """

    source = models.CharField(max_length=100, blank=True, unique=True,
                              help_text="The line source this applies to; blank: every source without its own policy.")
    keep_flagged = models.BooleanField(
        default=True, editable=False,
        help_text="Images with a review reason are always kept (not switchable off: the review queue needs them).")
    sample_rate = models.FloatField(default=0.01, help_text="Share 0..1 of confidently accepted images kept.")
    max_per_minute = models.PositiveIntegerField(default=60, help_text="Sampled images kept per source per minute, at most.")
    max_per_day = models.PositiveIntegerField(default=5000, help_text="Sampled images kept per source per day, at most.")
    keep_days = models.PositiveIntegerField(
        null=True, blank=True, default=retention_default_keep_days,
        help_text="Days an image nobody needs is kept (blank: forever); labelled, reviewed, boxed, snapshotted "
                  "and queued images are never deleted.")
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
    )

    class Meta:
        ordering = ["source"]
        verbose_name_plural = "retention policies"
        constraints = [
            models.CheckConstraint(condition=Q(sample_rate__gte=0) & Q(sample_rate__lte=1),
                                   name="retention_policy_sample_rate_share"),
            models.CheckConstraint(condition=Q(keep_days__isnull=True) | Q(keep_days__gte=1),
                                   name="retention_policy_keep_days_positive"),
        ]

    def __str__(self) -> str:
        return f"retention for {self.source or '(default)'}"


class LineResolution(models.TextChoices):
    MINUTE = "minute", "minute"
    HOUR = "hour", "hour"
    DAY = "day", "day"


class LineMinute(models.Model):
    """Counts of what one source sent through ``classify/`` in one bucket of time under one model
    version, kept or not: small (one row per source, bucket and version), so it can hold what
    the image rows cannot. Buckets are minutes while recent; the periodic roll-up merges old
    minutes into hours and old hours into days (``resolution``; see ``services/line_rollup.py``)."""

    source = models.CharField(max_length=100, blank=True)
    resolution = models.CharField(max_length=6, choices=LineResolution.choices, default=LineResolution.MINUTE)
    minute = models.DateTimeField(help_text="The bucket's start: the minute, hour or (local) day it counts.")
    model_version = models.ForeignKey(ModelVersion, null=True, on_delete=models.SET_NULL, related_name="+")
    seen = models.PositiveIntegerField(default=0)
    kept = models.PositiveIntegerField(default=0)
    flagged = models.PositiveIntegerField(default=0, help_text="Images with any review reason.")
    per_class = models.JSONField(default=dict, help_text="Predicted class name -> count.")
    per_reason = models.JSONField(default=dict, help_text="Review reason -> count (an image may have several).")
    kept_per_class = models.JSONField(default=dict, help_text="Of the kept images: predicted class name -> count.")
    kept_per_reason = models.JSONField(default=dict, help_text="Of the kept images: review reason -> count.")
    confidence_histogram = models.JSONField(default=list, help_text="Ten counts: confidence 0-0.1, ..., 0.9-1.")
    latency_ms_sum = models.FloatField(default=0.0)
    latency_ms_max = models.FloatField(default=0.0)

    class Meta:
        ordering = ["-minute", "source"]
        constraints = [
            models.UniqueConstraint(fields=["source", "resolution", "minute", "model_version"],
                                    name="line_minute_unique", nulls_distinct=False),
            models.CheckConstraint(condition=Q(resolution__in=LineResolution.values),
                                   name="line_minute_resolution_valid"),
        ]
        indexes = [models.Index(fields=["minute", "source"])]

    def __str__(self) -> str:
        return f"{self.source or '(no source)'} {self.resolution} {self.minute:%Y-%m-%d %H:%M}: {self.seen} seen"


class RetentionTrigger(models.TextChoices):
    SCHEDULE = "schedule", "the periodic job"
    COMMAND = "command", "the command line"


class RetentionRun(models.Model):
    """One run of the retention sweep (or one dry run): what it deleted or would delete, per
    source, and what it kept because a person or a model version needs it. An audit record."""

    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    dry_run = models.BooleanField(default=False)
    trigger = models.CharField(max_length=16, choices=RetentionTrigger.choices)
    source_filter = models.CharField(max_length=100, null=True, blank=True,
                                     help_text="The one source swept (--source); empty: every source.")
    limit = models.PositiveIntegerField(null=True, blank=True, help_text="Most images this run could delete.")
    images_deleted = models.PositiveIntegerField(default=0, help_text="Deleted, or would be in a dry run.")
    bytes_freed = models.PositiveBigIntegerField(default=0, help_text="Their stored bytes (the rows' size_bytes).")
    files_deleted = models.PositiveIntegerField(default=0, help_text="Stored files removed, earlier runs' retries too.")
    files_failed = models.PositiveIntegerField(default=0, help_text="Files whose removal failed (a later run retries).")
    more_left = models.BooleanField(default=False, help_text="Stopped at its limit or time with expired images left.")
    per_source = models.JSONField(
        default=dict, blank=True,
        help_text="source -> {keep_days, cutoff, deleted, bytes, kept: {reason: count}}.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(trigger__in=RetentionTrigger.values), name="retention_run_trigger_valid"),
        ]

    def __str__(self) -> str:
        kind = "dry run" if self.dry_run else "run"
        return f"retention {kind} {self.pk}: {self.images_deleted} images, {self.bytes_freed} bytes"


class PendingFileDeletion(models.Model):
    """A stored file whose image row the retention sweep deleted, until the file is gone too.

    Written in the transaction that deletes the row, removed once storage confirms the delete:
    a failed or interrupted delete is retried by the next run, never forgotten."""

    name = models.CharField(max_length=255, unique=True, help_text="The storage name of the file.")
    sha256 = models.CharField(max_length=64, help_text="The deleted image's hash (a re-upload may reuse it).")
    size_bytes = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"pending deletion of {self.name}"
