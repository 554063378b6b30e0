"""The production line: classify/ at line rate, per-minute counts and their roll-up, retention, drift alerts, the line bridge's records: models (fields and constraints; services do the writing)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from inspections.registry.models import ModelVersion


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
    dropped = models.PositiveIntegerField(
        default=0, help_text="Frames dropped unclassified: their request's deadline had passed before a worker "
                             "took it (the client was answered 504 and sends them again). Not in `seen`.")
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


class BridgeFrameState(models.TextChoices):
    TAKEN = "taken", "taken: sent to be classified"
    DONE = "done", "done: classified"
    FAILED = "failed", "failed: refused, with its reason"


class BridgeFrameOrigin(models.TextChoices):
    FOLDER = "folder", "a file in a watched folder"
    MQTT = "mqtt", "an MQTT message"


class BridgeFrame(models.Model):
    """One frame the line bridge took (a file from a watched folder, or an MQTT message): the
    bridge's record that it was processed, so a restart never classifies it twice.

    Written ``taken`` (with the ``batch`` it was sent in) before it is sent to be classified, and
    ``done`` (with its ``result``) or ``failed`` (with its ``reason``) afterwards. The same bytes
    from the same source again are the same frame. Rows older than ``STEELQC_BRIDGE_KEEP_DAYS``
    are deleted by the bridge itself."""

    source = models.CharField(max_length=100)
    sha256 = models.CharField(max_length=64)
    name = models.CharField(max_length=255, help_text="The file's name in its folder (or the frame's, from MQTT).")
    origin = models.CharField(max_length=6, choices=BridgeFrameOrigin.choices, default=BridgeFrameOrigin.FOLDER)
    state = models.CharField(max_length=6, choices=BridgeFrameState.choices, default=BridgeFrameState.TAKEN)
    batch = models.CharField(max_length=64, help_text="The classify request it went in: its idempotency key's stem.")
    position = models.PositiveSmallIntegerField(default=0, help_text="Its place in that request.")
    result = models.JSONField(null=True, blank=True, help_text="What was published as its result.")
    reason = models.CharField(max_length=500, blank=True, help_text="Why it failed.")
    taken_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "sha256"], name="bridge_frame_once_per_source"),
            models.CheckConstraint(condition=Q(state__in=BridgeFrameState.values), name="bridge_frame_state_valid"),
            models.CheckConstraint(condition=Q(origin__in=BridgeFrameOrigin.values), name="bridge_frame_origin_valid"),
        ]
        indexes = [models.Index(fields=["source", "batch"], condition=Q(state="taken"), name="bridge_frame_taken")]

    def __str__(self) -> str:
        return f"{self.source}/{self.name} ({self.state})"


class BridgeMessage(models.Model):
    """A message the line bridge is to publish on MQTT (a result or an alert): written in the
    transaction that records what it says, deleted ``STEELQC_BRIDGE_KEEP_DAYS`` after the broker
    acknowledged it. The unpublished ones are the bridge's outbox, published in ``id`` order; at
    most ``STEELQC_MQTT_QUEUE_LIMIT`` wait (then the inlets stop taking frames until the broker
    is back). ``key`` makes each one unique (a result per frame, an alert per event)."""

    key = models.CharField(max_length=200, unique=True)
    topic = models.CharField(max_length=200)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["id"], condition=Q(published_at__isnull=True), name="bridge_message_outbox"),
                   models.Index(fields=["published_at"], name="bridge_message_published")]

    def __str__(self) -> str:
        return f"{self.topic} #{self.pk} ({'published' if self.published_at else 'waiting'})"
