"""The periodic retraining decision: start a run only when enough new human labels exist.

Each kind of model counts its own news since its own last successful run: the classifier, images a
person labelled (a decision taken back by an undo does not count, nor does the undo); an anomaly model, images a
person labelled ``no_defect`` (what it learns from), and only on a line that already uses an
anomaly model (anomaly mode is switched on by training the first one, never by the schedule).
One run at a time: the classifier's turn first, the anomaly model's at the next check.
"""

from __future__ import annotations

import logging

from django.conf import settings

from inspections.catalog.models import NO_DEFECT_CLASS
from inspections.errors import ApplicationError
from inspections.registry.models import (
    ModelVersion,
    ModelVersionKind,
    ModelVersionStatus,
    TrainingRun,
    TrainingRunStatus,
    TrainingRunTrigger,
)
from inspections.registry.services.training import training_run_start
from inspections.review.models import Review, ReviewDecision

logger = logging.getLogger(__name__)


def new_reviewed_labels_count(*, kind: str = ModelVersionKind.CLASSIFIER) -> int:
    """Images a person labelled since the last successful run of ``kind`` was requested (for an
    anomaly model: labelled ``no_defect``). A decision taken back by an undo is not news, nor is the undo."""
    last = (TrainingRun.objects.filter(status=TrainingRunStatus.SUCCEEDED, kind=kind)
            .order_by("-created_at").first())
    reviews = Review.objects.exclude(decision=ReviewDecision.UNDO).filter(undone_by__isnull=True)
    if kind == ModelVersionKind.ANOMALY:
        reviews = reviews.filter(label__name=NO_DEFECT_CLASS)
    if last is not None:
        reviews = reviews.filter(created_at__gt=last.created_at)
    return reviews.values("image_id").distinct().count()


def _active_anomaly_parameters() -> dict | None:
    """The training parameters of the active anomaly model's run (its successor learns the same way:
    a plant that chose a false-alarm rate keeps it), {} when it has no run; None when no anomaly
    model is active."""
    from inspections.registry.services.anomaly_training import ANOMALY_PARAMETERS

    active = ModelVersion.objects.filter(kind=ModelVersionKind.ANOMALY, status=ModelVersionStatus.ACTIVE).first()
    if active is None:
        return None
    run = TrainingRun.objects.filter(model_version=active).order_by("-created_at").first()
    return {name: value for name, value in (run.parameters if run else {}).items() if name in ANOMALY_PARAMETERS}


def _start(kind: str, new_labels: int, minimum: int, params: dict | None = None) -> TrainingRun | None:
    what = "good labels for the anomaly model" if kind == ModelVersionKind.ANOMALY else "reviewed labels"
    if new_labels < minimum:
        logger.info("continuous learning: %d new %s, %d needed; no run", new_labels, what, minimum)
        return None
    try:
        run = training_run_start(requested_by=None, params=params or {}, trigger=TrainingRunTrigger.SCHEDULE, kind=kind)
    except ApplicationError as error:
        logger.info("continuous learning: no %s run started (%s)", kind, error.message)
        return None
    logger.info("continuous learning: %d new %s; started %s run %s", new_labels, what, kind, run.pk)
    return run


def training_run_start_if_due(*, minimum: int | None = None, good_minimum: int | None = None) -> TrainingRun | None:
    """Start the run that is due, if any: the classifier's, else the active anomaly model's successor."""
    minimum = settings.STEELQC_RETRAIN_MIN_NEW_LABELS if minimum is None else minimum
    run = _start(ModelVersionKind.CLASSIFIER, new_reviewed_labels_count(), minimum)
    if run is not None:
        return run
    params = _active_anomaly_parameters()
    if params is None:
        return None
    good_minimum = settings.STEELQC_RETRAIN_MIN_NEW_GOOD_LABELS if good_minimum is None else good_minimum
    return _start(ModelVersionKind.ANOMALY, new_reviewed_labels_count(kind=ModelVersionKind.ANOMALY), good_minimum,
                  params)
