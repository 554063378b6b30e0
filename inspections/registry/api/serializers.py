"""How the API shows model versions and training runs, and what it accepts to start or promote."""

from __future__ import annotations

from collections.abc import Sequence

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from inspections.api.fields import _username
from inspections.registry.models import OVERRIDE_REASON_MAX_LENGTH, ModelVersion, ModelVersionKind, TrainingRun
from inspections.registry.selectors import training_run_timing
from inspections.registry.services.anomaly_training import ANOMALY_PARAMETERS
from mlcore.training.parameters import BOOL, CHOICE, FLOAT, INT, PARAMETERS, Parameter


class ModelVersionOutput(serializers.ModelSerializer):
    name = serializers.CharField(read_only=True)
    kind = serializers.ChoiceField(
        choices=ModelVersionKind.choices, read_only=True,
        help_text="classifier (names a defect class) or anomaly (scores how unlike good steel an image is, "
                  "learnt from no_defect images; its classes list is empty). One of each kind may be active.")
    created_by = serializers.SerializerMethodField()
    promoted_by = serializers.SerializerMethodField(help_text="Username of who made it active last; null: the system.")
    retired_by = serializers.SerializerMethodField(
        help_text="Username of who ended its last time as active (by promoting another version or rolling back).")
    training_run = serializers.SerializerMethodField()
    promotion_override_reason = serializers.SerializerMethodField(
        help_text="Why a person promoted it although the promotion gate refused it; null when it never was.")
    promotion_override_by = serializers.SerializerMethodField(
        help_text="Username of who promoted it over the gate's refusal; null when nobody did (or the system).")
    weight_source = serializers.JSONField()
    classes = serializers.ListField(child=serializers.CharField())
    metrics = serializers.JSONField()

    class Meta:
        model = ModelVersion
        fields = ["id", "number", "name", "kind", "status", "backbone", "weight_source", "classes", "metrics", "notes",
                  "artifact_path", "created_at", "created_by", "promoted_at", "promoted_by", "retired_at",
                  "retired_by", "retirement", "training_run", "promotion_override_reason", "promotion_override_by",
                  "promotion_override_at"]

    def get_created_by(self, version: ModelVersion) -> str | None:
        return _username(version.created_by)

    def get_promoted_by(self, version: ModelVersion) -> str | None:
        return _username(version.promoted_by)

    def get_retired_by(self, version: ModelVersion) -> str | None:
        return _username(version.retired_by)

    def get_promotion_override_reason(self, version: ModelVersion) -> str | None:
        return version.promotion_override_reason or None

    def get_promotion_override_by(self, version: ModelVersion) -> str | None:
        return _username(version.promotion_override_by) if version.promotion_override_at else None

    def get_training_run(self, version: ModelVersion) -> int | None:
        run = getattr(version, "training_run", None)
        return run.pk if run else None


class TrainingRunOutput(serializers.ModelSerializer):
    kind = serializers.ChoiceField(choices=ModelVersionKind.choices, read_only=True,
                                   help_text="What the run trains: a classifier, or an anomaly model.")
    requested_by = serializers.SerializerMethodField()
    cancelled_by = serializers.SerializerMethodField(help_text="Username of who asked to cancel the run.")
    parameters = serializers.JSONField()
    gate_decision = serializers.JSONField(allow_null=True)

    class Meta:
        model = TrainingRun
        fields = ["id", "kind", "status", "progress", "phase", "parameters", "trigger", "requested_by", "created_at",
                  "started_at", "finished_at", "cancel_requested", "cancelled_at", "cancelled_by", "error", "snapshot",
                  "model_version", "gate_decision"]

    def get_requested_by(self, run: TrainingRun) -> str | None:
        return _username(run.requested_by)

    def get_cancelled_by(self, run: TrainingRun) -> str | None:
        return _username(run.cancelled_by)


class TrainingPhaseOutput(serializers.Serializer):
    name = serializers.CharField(help_text="prepare, features, head, finetune, detection, evaluate, export or gate.")
    label = serializers.CharField()
    state = serializers.ChoiceField(choices=["done", "current", "next"])
    seconds = serializers.FloatField(allow_null=True, help_text="How long it took, or has taken so far; null: to come.")
    estimate_s = serializers.FloatField(
        allow_null=True, help_text="Current phase: seconds left; a phase to come: seconds it should take; null: unknown.")
    basis = serializers.CharField(help_text="Where the estimate comes from.")


class TrainingRunTimingOutput(serializers.Serializer):
    elapsed_s = serializers.FloatField(allow_null=True, help_text="Since the worker started it (to its end when ended).")
    waiting_s = serializers.FloatField(allow_null=True, help_text="A queued run: seconds since it was requested.")
    phases = TrainingPhaseOutput(many=True)
    remaining_s = serializers.FloatField(allow_null=True, help_text="A running run: the estimated seconds left.")
    remaining_is_lower_bound = serializers.BooleanField(help_text="A phase has no estimate: at least remaining_s.")
    finish_at = serializers.DateTimeField(allow_null=True, help_text="When a running run should end.")
    history_runs = serializers.IntegerField(help_text="Earlier succeeded runs the estimates draw on.")


class TrainingRunDetailOutput(TrainingRunOutput):
    timing = serializers.SerializerMethodField(
        help_text="Elapsed time and each phase's time; while it runs, the estimates of what is left (from the "
                  "phase's own progress and earlier runs' phase times).")

    class Meta(TrainingRunOutput.Meta):
        fields = [*TrainingRunOutput.Meta.fields, "timing", "log"]

    @extend_schema_field(TrainingRunTimingOutput)
    def get_timing(self, run: TrainingRun) -> dict:
        return training_run_timing(run=run)


def training_parameters_serializer(parameters: Sequence[Parameter]) -> type[serializers.Serializer]:
    """The documented shape of a run's ``parameters``: a field per parameter of mlcore's schema,
    with its type, limits or choices, help and default."""
    return type("TrainingParameters", (serializers.Serializer,), {param.name: _parameter_field(param)
                                                                  for param in parameters})


def _parameter_field(param: Parameter) -> serializers.Field:
    about = {"required": False, "help_text": f"{param.help}. Unset: the installation's default, else {param.default}."}
    if param.kind == INT:
        return serializers.IntegerField(min_value=param.minimum, max_value=param.maximum, **about)
    if param.kind == FLOAT:
        return serializers.FloatField(min_value=param.minimum, max_value=param.maximum, **about)
    if param.kind == BOOL:
        return serializers.BooleanField(**about)
    if param.kind == CHOICE:
        # Labelled with the parameter's name, so two parameters with the same choices (the modes) are
        # two documented enums, not one choice set under two names (drf_spectacular.W001).
        return serializers.ChoiceField(
            choices=[(choice, param.choice_labels.get(choice, f"{param.name} {choice}")) for choice in param.choices],
            **about)
    return serializers.CharField(**about)


@extend_schema_field(training_parameters_serializer(PARAMETERS))
class TrainingParametersField(serializers.DictField):
    """Any object on the way in: ``training_run_start`` checks it against mlcore's schema, so a bad
    parameter is ``invalid_parameter`` (400) in the words the page, the command and the CLI use."""


class TrainingRunInput(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=ModelVersionKind.choices, required=False, default=ModelVersionKind.CLASSIFIER,
        help_text="classifier (default): learn the defect classes from the labelled images; anomaly: learn what good "
                  "steel looks like from the images labelled no_defect (held-out good images and labelled defects "
                  "judge it).")
    parameters = TrainingParametersField(
        required=False, default=dict,
        help_text="Optional training parameters over the installation's defaults: "
                  f"{', '.join(param.name for param in PARAMETERS)}. An anomaly run takes "
                  f"{', '.join(ANOMALY_PARAMETERS)} instead.",
    )


class RollbackInput(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=ModelVersionKind.choices, required=False, default=ModelVersionKind.CLASSIFIER,
        help_text="Which kind's active version to roll back (default classifier).")


class PromoteInput(serializers.Serializer):
    repredict_review_queue = serializers.BooleanField(
        required=False, default=False,
        help_text="Also give the images waiting for review a fresh prediction from this version.",
    )
    override_reason = serializers.CharField(
        required=False, allow_null=True, allow_blank=False, max_length=OVERRIDE_REASON_MAX_LENGTH,
        help_text="Why this version goes live although the promotion gate refused it: required for such a "
                  "version (without it the answer is 409 `gate_refused` with the gate's reasons), recorded "
                  "with the promotion; not needed, and not recorded, for a version the gate passed.",
    )
