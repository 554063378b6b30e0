"""Inference tasks (queue `inference`). Thin: the services do the work."""

from celery import shared_task
from django.conf import settings

from inspections import task_names
from inspections.registry.services.version_comparison import version_comparison_compute
from inspections.review.services.inference import (
    pending_images_requeue,
    predictions_create,
)


@shared_task(
    name=task_names.PREDICT_IMAGES,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.STEELQC_INFERENCE_SOFT_TIME_LIMIT,
    time_limit=settings.STEELQC_INFERENCE_TIME_LIMIT,
    ignore_result=True,
)
def predict_images(image_ids: list[int]) -> int:
    return predictions_create(image_ids=image_ids)


@shared_task(
    name=task_names.REQUEUE_PENDING_IMAGES,
    soft_time_limit=60,
    time_limit=90,
    ignore_result=True,
)
def requeue_pending_images() -> int:
    return pending_images_requeue(older_than_s=settings.STEELQC_PENDING_REQUEUE_AFTER_S)


@shared_task(
    name=task_names.COMPARE_MODEL_VERSIONS,
    # Two models over a whole test split: longer than one prediction batch. A lost worker's
    # message is not redelivered; the next request for the comparison queues it again.
    soft_time_limit=settings.STEELQC_INFERENCE_SOFT_TIME_LIMIT * 10,
    time_limit=settings.STEELQC_INFERENCE_TIME_LIMIT * 10,
    ignore_result=True,
)
def compare_model_versions(first_id: int, second_id: int, fingerprint: str) -> str:
    return version_comparison_compute(first_id=first_id, second_id=second_id, fingerprint=fingerprint)
