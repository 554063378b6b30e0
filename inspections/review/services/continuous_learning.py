"""The periodic retraining decision: start a run only when enough new human labels exist."""

from __future__ import annotations

import logging

from django.conf import settings

from inspections.errors import ApplicationError
from inspections.registry.models import TrainingRun, TrainingRunStatus, TrainingRunTrigger
from inspections.registry.services.training import training_run_start
from inspections.review.models import Review

logger = logging.getLogger(__name__)


def new_reviewed_labels_count() -> int:
    """Images whose label a person set or confirmed since the last successful run was requested."""
    last = TrainingRun.objects.filter(status=TrainingRunStatus.SUCCEEDED).order_by("-created_at").first()
    reviews = Review.objects.all()
    if last is not None:
        reviews = reviews.filter(created_at__gt=last.created_at)
    return reviews.values("image_id").distinct().count()


def training_run_start_if_due(*, minimum: int | None = None) -> TrainingRun | None:
    minimum = settings.STEELQC_RETRAIN_MIN_NEW_LABELS if minimum is None else minimum
    new_labels = new_reviewed_labels_count()
    if new_labels < minimum:
        logger.info("continuous learning: %d new reviewed labels, %d needed; no run", new_labels, minimum)
        return None
    try:
        run = training_run_start(requested_by=None, params={}, trigger=TrainingRunTrigger.SCHEDULE)
    except ApplicationError as error:
        logger.info("continuous learning: not started (%s)", error.message)
        return None
    logger.info("continuous learning: %d new reviewed labels; started run %s", new_labels, run.pk)
    return run
