"""Reads of the registry domain."""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.db.models import QuerySet

from inspections.registry.models import ModelVersion, ModelVersionStatus, TrainingRun


def model_version_list() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.select_related(
        "created_by", "promoted_by", "retired_by", "promotion_override_by", "training_run__snapshot"
    ).order_by("-number")


def model_version_detail(*, version_id: int) -> ModelVersion | None:
    return model_version_list().filter(pk=version_id).first()


def model_version_file(*, version: ModelVersion, file_name: str) -> str | None:
    """Storage name of ``file_name`` (an ``mlcore.artefact`` name) in ``version``'s artefact; None when absent."""
    name = f"{version.artifact_path}/{file_name}"
    return name if default_storage.exists(name) else None


def training_run_list() -> QuerySet[TrainingRun]:
    return TrainingRun.objects.select_related(
        "requested_by", "cancelled_by", "model_version", "snapshot"
    ).order_by("-created_at", "-id")


def training_run_detail(*, run_id: int) -> TrainingRun | None:
    return training_run_list().filter(pk=run_id).first()


# --- Dashboard ---------------------------------------------------------------------------------

def active_model_version() -> ModelVersion | None:
    return ModelVersion.objects.filter(status=ModelVersionStatus.ACTIVE).first()
