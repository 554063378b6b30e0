"""Predicting pending images with the active model version, a micro-batch at a time.

A worker process loads the active version once and keeps it; before each batch it checks
which version is active and swaps when that changed, and reads the version's per-class
decision thresholds (no restart). Work is claimed with
``SELECT ... FOR UPDATE SKIP LOCKED`` so several workers never predict the same image, and a
unique constraint on (image, model version) makes a repeated task change nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from inspections.catalog.models import DefectClass, ImageStatus, InspectionImage
from inspections.catalog.services.classes import defect_classes_ensure
from inspections.queueing import inference_enqueue
from inspections.registry.models import ModelVersion, ModelVersionKind, ModelVersionStatus
from inspections.registry.services.classifiers import classifier_for_version, image_pixels
from inspections.review.models import Prediction
from inspections.review.prediction_events import images_done_announce
from inspections.review.services.latest_prediction import images_latest_prediction_refresh
from inspections.review.services.similarity import embedding_bytes

logger = logging.getLogger(__name__)


@dataclass
class _LoadedModel:
    version_id: int
    classifier: object  # mlcore.inference.Classifier
    classes: dict[str, DefectClass]


_loaded: _LoadedModel | None = None
_load_lock = threading.Lock()


def active_model() -> tuple[ModelVersion, _LoadedModel] | None:
    """The active version and its loaded classifier, loading or swapping it when needed."""
    global _loaded
    version = ModelVersion.objects.filter(status=ModelVersionStatus.ACTIVE, kind=ModelVersionKind.CLASSIFIER).first()
    if version is None:
        return None
    classifier = classifier_for_version(version=version)
    with _load_lock:
        if _loaded is None or _loaded.version_id != version.id:
            _loaded = _LoadedModel(
                version_id=version.id, classifier=classifier, classes=defect_classes_ensure(names=classifier.classes)
            )
        return version, _loaded


def _claim(*, version: ModelVersion, image_ids: list[int], batch_size: int) -> list[InspectionImage]:
    unpredicted = (
        InspectionImage.objects.select_for_update(skip_locked=True, of=("self",))
        .exclude(predictions__model_version=version)
        .exclude(status=ImageStatus.FAILED)  # a file that would not decode is not retried forever
    )
    claimed = list(unpredicted.filter(id__in=image_ids).order_by("id")[:batch_size])
    room = batch_size - len(claimed)
    if room > 0:
        # Fill the batch with other waiting images: under load this turns many single-image
        # tasks into a few batched forward passes; the later tasks then find nothing to do.
        claimed += list(
            unpredicted.filter(status=ImageStatus.PENDING).exclude(id__in=[i.id for i in claimed]).order_by("created_at", "id")[:room]
        )
    return claimed


def _margin(probabilities: dict[str, float], confidence: float) -> float:
    runner_up = sorted(probabilities.values())[-2] if len(probabilities) > 1 else 0.0
    return confidence - runner_up


def _predict_batch(*, version: ModelVersion, model: _LoadedModel, image_ids: list[int], batch_size: int) -> int | None:
    """Claim, predict and write one batch in one transaction; None when nothing was left to claim."""
    with transaction.atomic():
        batch = _claim(version=version, image_ids=image_ids, batch_size=batch_size)
        if not batch:
            return None
        arrays, decodable, failed = [], [], []
        for image in batch:
            try:
                arrays.append(image_pixels(image=image))
                decodable.append(image)
            except Exception as error:  # a stored file that no longer decodes: mark it, go on
                logger.warning("image %s cannot be decoded for inference: %s", image.id, error)
                failed.append(image.id)
        # Read for every batch (one small query), so a threshold an ML admin changed applies to
        # the next batch without reloading the model or restarting the worker.
        thresholds = ModelVersion.objects.filter(pk=version.pk).values_list("decision_thresholds", flat=True).first()
        started = time.perf_counter()
        results, features = (model.classifier.predict_with_features(arrays, class_thresholds=thresholds)
                             if arrays else ([], []))
        latency_ms = (time.perf_counter() - started) * 1000 / max(len(arrays), 1)
        Prediction.objects.bulk_create(
            [
                Prediction(
                    image=image, model_version=version, label=model.classes[result.label],
                    confidence=min(max(result.confidence, 0.0), 1.0), probabilities=result.probabilities,
                    needs_review=result.needs_review, ood_score=result.ood_score, latency_ms=latency_ms,
                    review_reasons=list(result.review_reasons), frame_issue=result.frame_issue or "",
                    margin=_margin(result.probabilities, result.confidence), boxes=result.boxes,
                    embedding=embedding_bytes(feature),
                )
                for image, result, feature in zip(decodable, results, features)
            ],
            ignore_conflicts=True,
        )
        images_latest_prediction_refresh(image_ids=[i.id for i in decodable])
        InspectionImage.objects.filter(id__in=[i.id for i in decodable]).update(status=ImageStatus.PREDICTED)
        if failed:
            InspectionImage.objects.filter(id__in=failed).update(status=ImageStatus.FAILED)
        finished = [i.id for i in decodable] + failed
        transaction.on_commit(lambda: images_done_announce(image_ids=finished))  # wakes ?wait= uploads
    return len(decodable)


def predictions_create(*, image_ids: list[int], batch_size: int | None = None) -> int:
    """Predict the given images, a batch (topped up with other pending images) per transaction,
    until none of them is left; returns how many predictions were written.

    With no active version nothing happens: the images stay ``pending`` and are queued again
    when a version is promoted.
    """
    batch_size = batch_size or settings.STEELQC_INFERENCE_BATCH_SIZE
    loaded = active_model()
    if loaded is None:
        logger.info("no active model version; %d image(s) stay pending", len(image_ids))
        return 0
    version, model = loaded
    written = 0
    # Bounded: each round claims at least one image or ends the loop; it also ends as soon as
    # every listed image has this version's prediction (or could not be decoded).
    for _ in range(len(image_ids) + 1):
        count = _predict_batch(version=version, model=model, image_ids=image_ids, batch_size=batch_size)
        if count is None:
            break
        written += count
        waiting = (InspectionImage.objects.filter(id__in=image_ids).exclude(status=ImageStatus.FAILED)
                   .exclude(predictions__model_version=version))
        if not waiting.exists():
            break
    return written


def pending_images_requeue(*, older_than_s: float, limit: int = 5000) -> int:
    """Queue again the images that have waited longer than ``older_than_s`` (lost messages,
    broker outages, a worker killed mid-batch). Returns how many were queued."""
    if not ModelVersion.objects.filter(status=ModelVersionStatus.ACTIVE).exists():
        return 0
    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    ids = list(
        InspectionImage.objects.filter(status=ImageStatus.PENDING, created_at__lt=cutoff)
        .order_by("created_at")
        .values_list("id", flat=True)[:limit]
    )
    return inference_enqueue(image_ids=ids)
