"""How the API shows model versions and training runs, and what it accepts to start or promote."""

from __future__ import annotations

from rest_framework import serializers

from inspections.api.fields import _username
from inspections.registry.models import ModelVersion, TrainingRun


class ModelVersionOutput(serializers.ModelSerializer):
    name = serializers.CharField(read_only=True)
    created_by = serializers.SerializerMethodField()
    promoted_by = serializers.SerializerMethodField(help_text="Username of who made it active last; null: the system.")
    retired_by = serializers.SerializerMethodField(
        help_text="Username of who ended its last time as active (by promoting another version or rolling back).")
    training_run = serializers.SerializerMethodField()
    weight_source = serializers.JSONField()
    classes = serializers.ListField(child=serializers.CharField())
    metrics = serializers.JSONField()

    class Meta:
        model = ModelVersion
        fields = ["id", "number", "name", "status", "backbone", "weight_source", "classes", "metrics", "notes",
                  "artifact_path", "created_at", "created_by", "promoted_at", "promoted_by", "retired_at",
                  "retired_by", "retirement", "training_run"]

    def get_created_by(self, version: ModelVersion) -> str | None:
        return _username(version.created_by)

    def get_promoted_by(self, version: ModelVersion) -> str | None:
        return _username(version.promoted_by)

    def get_retired_by(self, version: ModelVersion) -> str | None:
        return _username(version.retired_by)

    def get_training_run(self, version: ModelVersion) -> int | None:
        run = getattr(version, "training_run", None)
        return run.pk if run else None


class TrainingRunOutput(serializers.ModelSerializer):
    requested_by = serializers.SerializerMethodField()
    cancelled_by = serializers.SerializerMethodField(help_text="Username of who asked to cancel the run.")
    parameters = serializers.JSONField()
    gate_decision = serializers.JSONField(allow_null=True)

    class Meta:
        model = TrainingRun
        fields = ["id", "status", "progress", "phase", "parameters", "trigger", "requested_by", "created_at",
                  "started_at", "finished_at", "cancel_requested", "cancelled_at", "cancelled_by", "error", "snapshot",
                  "model_version", "gate_decision"]

    def get_requested_by(self, run: TrainingRun) -> str | None:
        return _username(run.requested_by)

    def get_cancelled_by(self, run: TrainingRun) -> str | None:
        return _username(run.cancelled_by)


class TrainingRunDetailOutput(TrainingRunOutput):
    class Meta(TrainingRunOutput.Meta):
        fields = [*TrainingRunOutput.Meta.fields, "log"]


class TrainingRunInput(serializers.Serializer):
    parameters = serializers.DictField(
        required=False, default=dict,
        help_text=(
            "Optional training parameters: backbone (auto, resnet50, efficientnet_lite0), weights "
            "(imagenet, none), finetune (auto, on, off), head_epochs, head_patience, finetune_epochs, "
            "finetune_blocks, augmented_views, batch_size, input_size, seed, time_budget_s, confidence_threshold, "
            "detection (auto: train the detection head when enough images have defect boxes; on, off), "
            "detection_min_images, detection_epochs."
        ),
    )


class PromoteInput(serializers.Serializer):
    repredict_review_queue = serializers.BooleanField(
        required=False, default=False,
        help_text="Also give the images waiting for review a fresh prediction from this version.",
    )
