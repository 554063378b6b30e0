"""Reads of the registry domain."""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.db.models import Case, QuerySet, Value, When

from inspections.catalog.models import Split
from inspections.registry.models import (
    DatasetSnapshotItem,
    ModelVersion,
    ModelVersionKind,
    ModelVersionStatus,
    TrainingRun,
    TrainingRunStatus,
)
from inspections.registry.run_timeline import EarlierRun, last_phase, phase_log_line, run_phases, run_timing


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


def model_version_check_image_files(*, version: ModelVersion, width: int, height: int, limit: int) -> list[str]:
    """Storage names of up to ``limit`` images of ``width`` x ``height`` that ``version`` never trained
    on: its training run's frozen test split first, then its validation split. Empty for a version
    without a run (registered from the command line)."""
    run = TrainingRun.objects.filter(model_version=version).only("snapshot_id").first()
    if run is None or run.snapshot_id is None:
        return []
    items = (DatasetSnapshotItem.objects.filter(snapshot_id=run.snapshot_id, split__in=[Split.TEST, Split.VAL],
                                                image__width=width, image__height=height)
             .annotate(test_first=Case(When(split=Split.TEST, then=Value(0)), default=Value(1)))
             .order_by("test_first", "id").values_list("image__file", flat=True)[:limit])
    return list(items)


def training_run_list() -> QuerySet[TrainingRun]:
    return TrainingRun.objects.select_related(
        "requested_by", "cancelled_by", "model_version", "snapshot"
    ).order_by("-created_at", "-id")


def training_run_detail(*, run_id: int) -> TrainingRun | None:
    return training_run_list().filter(pk=run_id).first()


EARLIER_RUNS_FOR_ESTIMATES = 10


def training_run_timing(*, run: TrainingRun, now=None) -> dict:
    """``run_timeline.run_timing`` for ``run``: its elapsed time and phases, and while it runs the
    estimates, from its own progress and the last few succeeded runs."""
    from django.utils import timezone

    earlier = []
    if run.status == TrainingRunStatus.RUNNING:
        rows = (TrainingRun.objects.filter(status=TrainingRunStatus.SUCCEEDED, kind=run.kind, started_at__isnull=False,
                                           finished_at__isnull=False, log__contains=phase_log_line(last_phase(run.kind)))
                .exclude(pk=run.pk).order_by("-finished_at")
                .values_list("log", "started_at", "finished_at", "snapshot__image_count")[:EARLIER_RUNS_FOR_ESTIMATES])
        earlier = [EarlierRun(phases=run_phases(log=log, started_at=started, finished_at=finished),
                              image_count=images or 0) for log, started, finished, images in rows]
    parameters = run.parameters or {}
    skipped = frozenset(name for name in ("finetune", "detection") if parameters.get(name) == "off")
    return run_timing(status=run.status, progress=run.progress, created_at=run.created_at, started_at=run.started_at,
                      finished_at=run.finished_at, log=run.log, skipped=skipped, earlier=earlier,
                      image_count=run.snapshot.image_count if run.snapshot_id else 0, now=now or timezone.now(),
                      kind=run.kind)


# --- Dashboard ---------------------------------------------------------------------------------

def model_in_service() -> bool:
    """Whether uploads get an answer: a classifier, or an anomaly model alone, is active."""
    return ModelVersion.objects.filter(status=ModelVersionStatus.ACTIVE).exists()


def active_model_version(*, kind: str = ModelVersionKind.CLASSIFIER) -> ModelVersion | None:
    """The version of ``kind`` in service: the classifier unless asked for the anomaly model."""
    return ModelVersion.objects.filter(status=ModelVersionStatus.ACTIVE, kind=kind).first()
