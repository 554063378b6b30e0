"""Inference tasks (queue `inference`). Thin: the services do the work."""

from celery import shared_task
from django.conf import settings

from inspections import task_names
from inspections.services.inference import pending_images_requeue, predictions_create


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
