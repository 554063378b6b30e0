"""Predicting pending images with the models in service, a micro-batch at a time.

The models in service are the active classifier and the active anomaly model, either of which may
be absent (a line with only good images starts with an anomaly model alone). A prediction is
recorded under the classifier, with the anomaly model's score beside it; without a classifier
under the anomaly model, with no class (``Prediction``'s docstring).

A worker process loads the active versions once and keeps them; before each batch it checks
which versions are active and swaps when that changed, and reads the classifier's per-class
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

import numpy as np

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from inspections.catalog.models import DefectClass, ImageStatus, InspectionImage
from inspections.catalog.services.classes import defect_classes_ensure
from inspections.queueing import inference_enqueue
from inspections.registry.models import ModelVersion, ModelVersionKind, ModelVersionStatus
from inspections.registry.services.anomaly_models import images_score
from inspections.registry.services.classifiers import classifier_for_version, image_pixels
from inspections.review.models import Prediction
from inspections.review.prediction_events import images_done_announce
from inspections.review.services.latest_prediction import images_latest_prediction_refresh
from inspections.review.services.similarity import embedding_bytes
from mlcore.artefact import with_anomaly_reason

logger = logging.getLogger(__name__)


@dataclass
class _LoadedModel:
    version_id: int
    classifier: object  # mlcore.inference.Classifier
    classes: dict[str, DefectClass]


_loaded: _LoadedModel | None = None
_load_lock = threading.Lock()


@dataclass(frozen=True)
class Serving:
    """The models in service: the active classifier (loaded) and the active anomaly model; at least one."""

    classifier_version: ModelVersion | None
    classifier: _LoadedModel | None
    anomaly_version: ModelVersion | None

    @property
    def version(self) -> ModelVersion:
        """The version predictions are recorded under (and claimed by): the classifier, else the anomaly model."""
        return self.classifier_version or self.anomaly_version


@dataclass
class Answer:
    """One image's answer from the models in service."""

    result: object | None            # mlcore.inference.PredictionResult; None without a classifier
    feature: np.ndarray | None       # the classifier's descriptor (look-alike search)
    anomaly_score: float | None      # None without an anomaly model
    anomalous: bool = False

    @property
    def review_reasons(self) -> list[str]:
        return with_anomaly_reason(self.result.review_reasons if self.result else [], anomalous=self.anomalous)

    @property
    def label(self) -> str | None:
        return self.result.label if self.result else None

    @property
    def confidence(self) -> float | None:
        return min(max(float(self.result.confidence), 0.0), 1.0) if self.result else None


def _classifier_loaded(version: ModelVersion) -> _LoadedModel:
    global _loaded
    classifier = classifier_for_version(version=version)
    with _load_lock:
        if _loaded is None or _loaded.version_id != version.id:
            _loaded = _LoadedModel(
                version_id=version.id, classifier=classifier, classes=defect_classes_ensure(names=classifier.classes)
            )
        return _loaded


def serving_models() -> Serving | None:
    """The active classifier (loaded or swapped when needed) and the active anomaly model; None
    when neither is active."""
    active = {version.kind: version for version in ModelVersion.objects.filter(status=ModelVersionStatus.ACTIVE)}
    classifier_version = active.get(ModelVersionKind.CLASSIFIER)
    anomaly_version = active.get(ModelVersionKind.ANOMALY)
    if classifier_version is None and anomaly_version is None:
        return None
    return Serving(classifier_version=classifier_version, anomaly_version=anomaly_version,
                   classifier=_classifier_loaded(classifier_version) if classifier_version else None)


def serving_answers(*, serving: Serving, arrays: list[np.ndarray]) -> list[Answer]:
    """Each image's answer from the classifier and the anomaly model in service, in order. The
    classifier's per-class thresholds are read for every batch (one small query), so a threshold
    an ML admin changed applies to the next batch without reloading the model or restarting."""
    if not arrays:
        return []
    results, features = [None] * len(arrays), [None] * len(arrays)
    if serving.classifier is not None:
        thresholds = (ModelVersion.objects.filter(pk=serving.classifier_version.pk)
                      .values_list("decision_thresholds", flat=True).first())
        results, features = serving.classifier.classifier.predict_with_features(arrays, class_thresholds=thresholds)
    scores = images_score(version=serving.anomaly_version, images=arrays) if serving.anomaly_version else None
    return [Answer(result=result, feature=feature,
                   anomaly_score=float(scores[i].anomaly_score) if scores else None,
                   anomalous=bool(scores[i].anomalous) if scores else False)
            for i, (result, feature) in enumerate(zip(results, features))]


def prediction_for(*, image: InspectionImage, serving: Serving, answer: Answer, latency_ms: float) -> Prediction:
    """The ``Prediction`` row of one answer (not saved)."""
    anomaly = {"anomaly_version": serving.anomaly_version if answer.anomaly_score is not None else None,
               "anomaly_score": answer.anomaly_score}
    reasons = answer.review_reasons
    result = answer.result
    if result is None:  # an anomaly model's answer alone: no class
        return Prediction(image=image, model_version=serving.version, label=None, confidence=None, probabilities={},
                          needs_review=bool(reasons), ood_score=None, latency_ms=latency_ms, review_reasons=reasons,
                          frame_issue="", margin=None, boxes=[], embedding=None, **anomaly)
    return Prediction(
        image=image, model_version=serving.version, label=serving.classifier.classes[result.label],
        confidence=answer.confidence, probabilities=result.probabilities, needs_review=bool(reasons),
        ood_score=result.ood_score, latency_ms=latency_ms, review_reasons=reasons,
        frame_issue=result.frame_issue or "", margin=_margin(result.probabilities, result.confidence),
        boxes=list(result.boxes), embedding=embedding_bytes(answer.feature), **anomaly)


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


def _predict_batch(*, serving: Serving, image_ids: list[int], batch_size: int) -> int | None:
    """Claim, predict and write one batch in one transaction; None when nothing was left to claim."""
    with transaction.atomic():
        batch = _claim(version=serving.version, image_ids=image_ids, batch_size=batch_size)
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
        started = time.perf_counter()
        answers = serving_answers(serving=serving, arrays=arrays)
        latency_ms = (time.perf_counter() - started) * 1000 / max(len(arrays), 1)
        Prediction.objects.bulk_create(
            [prediction_for(image=image, serving=serving, answer=answer, latency_ms=latency_ms)
             for image, answer in zip(decodable, answers)],
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

    With no active version (neither a classifier nor an anomaly model) nothing happens: the images
    stay ``pending`` and are queued again when a version is promoted.
    """
    batch_size = batch_size or settings.STEELQC_INFERENCE_BATCH_SIZE
    serving = serving_models()
    if serving is None:
        logger.info("no active model version; %d image(s) stay pending", len(image_ids))
        return 0
    version = serving.version
    written = 0
    # Bounded: each round claims at least one image or ends the loop; it also ends as soon as
    # every listed image has this version's prediction (or could not be decoded).
    for _ in range(len(image_ids) + 1):
        count = _predict_batch(serving=serving, image_ids=image_ids, batch_size=batch_size)
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
