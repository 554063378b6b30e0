"""Reads."""

from __future__ import annotations

import math
import time

from django.db.models import Count, Exists, OuterRef, Prefetch, QuerySet, Subquery

from inspections.models import (
    DefectClass, ImageStatus, InspectionImage, ModelVersion, Prediction, Review, TrainingRun,
)


def dataset_summary() -> dict:
    """Images per label and split, and per status."""
    per_label: dict[str, dict[str, int]] = {}
    for row in InspectionImage.objects.values("label__name", "split").annotate(n=Count("id")).order_by("label__name"):
        per_label.setdefault(row["label__name"] or "(unlabelled)", {})[row["split"]] = row["n"]
    per_status = dict(InspectionImage.objects.values_list("status").annotate(n=Count("id")))
    return {"per_label": per_label, "per_status": per_status, "total": sum(per_status.values())}


def database_ping() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return f"ok ({connection.vendor})"


# --- Images, predictions and reviews (the API's reads) ---------------------------------------

def _latest_predictions_prefetch() -> Prefetch:
    return Prefetch(
        "predictions",
        queryset=Prediction.objects.select_related("label", "model_version").order_by("-created_at", "-id"),
        to_attr="predictions_latest_first",
    )


def _latest_prediction_field(field: str) -> Subquery:
    latest = Prediction.objects.filter(image=OuterRef("pk")).order_by("-created_at", "-id")
    return Subquery(latest.values(field)[:1])


def image_list(*, filters: dict | None = None) -> QuerySet[InspectionImage]:
    """Images, newest first, with the latest prediction prefetched.

    ``filters`` keys (all optional): ``status``, ``label`` (class name; ``""`` for unlabelled),
    ``split``, ``source``, ``external_id``, ``needs_review`` (the latest prediction's flag),
    ``model_version`` (id of a version that predicted the image), ``created_after`` and
    ``created_before`` (datetimes, inclusive).
    """
    filters = filters or {}
    images = InspectionImage.objects.select_related("label", "uploaded_by").prefetch_related(
        _latest_predictions_prefetch()
    )
    exact = {key: filters[key] for key in ("status", "split", "source", "external_id") if key in filters}
    images = images.filter(**exact)
    if "label" in filters:
        images = images.filter(label__isnull=True) if filters["label"] == "" else images.filter(label__name=filters["label"])
    if "needs_review" in filters:
        images = images.annotate(latest_needs_review=_latest_prediction_field("needs_review")).filter(
            latest_needs_review=filters["needs_review"]
        )
    if "model_version" in filters:
        images = images.filter(
            Exists(Prediction.objects.filter(image=OuterRef("pk"), model_version_id=filters["model_version"]))
        )
    if "created_after" in filters:
        images = images.filter(created_at__gte=filters["created_after"])
    if "created_before" in filters:
        images = images.filter(created_at__lte=filters["created_before"])
    return images.order_by("-created_at", "-id")


def image_detail(*, image_id: int) -> InspectionImage | None:
    """One image with its latest prediction and its review history (newest first)."""
    reviews = Review.objects.select_related("label", "previous_label", "reviewer").order_by("-created_at", "-id")
    return (
        InspectionImage.objects.select_related("label", "uploaded_by")
        .prefetch_related(_latest_predictions_prefetch(), Prefetch("reviews", queryset=reviews, to_attr="reviews_latest_first"))
        .filter(pk=image_id)
        .first()
    )


def image_latest_prediction(*, image: InspectionImage) -> Prediction | None:
    prefetched = getattr(image, "predictions_latest_first", None)
    if prefetched is not None:
        return prefetched[0] if prefetched else None
    return (
        Prediction.objects.select_related("label", "model_version")
        .filter(image=image)
        .order_by("-created_at", "-id")
        .first()
    )


def prediction_wait(*, image_id: int, timeout_s: float, interval_s: float = 0.02) -> Prediction | None:
    """Poll the database until the image has a prediction, its inference failed, or time is up.

    Runs outside any transaction so every poll sees what the worker has committed.
    """
    deadline = time.monotonic() + (timeout_s if math.isfinite(timeout_s) else 0.0)
    has_prediction = Exists(Prediction.objects.filter(image=OuterRef("pk")))
    while True:
        row = InspectionImage.objects.filter(pk=image_id).annotate(done=has_prediction).values_list("status", "done").first()
        if row is None:
            return None
        status, done = row
        if done:
            return Prediction.objects.select_related("label", "model_version").filter(image_id=image_id).order_by(
                "-created_at", "-id"
            ).first()
        if status == ImageStatus.FAILED or time.monotonic() >= deadline:
            return None
        time.sleep(min(interval_s, max(0.0, deadline - time.monotonic())))


def review_list_for_image(*, image: InspectionImage) -> QuerySet[Review]:
    return Review.objects.filter(image=image).select_related("label", "previous_label", "reviewer").order_by(
        "-created_at", "-id"
    )


# --- Classes, model versions, training runs ---------------------------------------------------

def defect_class_list() -> QuerySet[DefectClass]:
    return DefectClass.objects.order_by("name")


def model_version_list() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.select_related("created_by", "training_run").order_by("-number")


def training_run_list() -> QuerySet[TrainingRun]:
    return TrainingRun.objects.select_related("requested_by", "model_version").order_by("-created_at", "-id")
