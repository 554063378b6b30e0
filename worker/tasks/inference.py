"""Inference tasks (queue `inference`). Thin: the services do the work."""

from celery import shared_task
from django.conf import settings

from inspections import task_names
from inspections.registry.services.version_comparison import version_comparison_compute
from inspections.review.services.inference import pending_images_requeue, predictions_create
from worker.task_options import task_options


@shared_task(**task_options(task_names.PREDICT_IMAGES))
def predict_images(image_ids: list[int]) -> int:
    return predictions_create(image_ids=image_ids)


@shared_task(**task_options(task_names.REQUEUE_PENDING_IMAGES))
def requeue_pending_images() -> int:
    return pending_images_requeue(older_than_s=settings.STEELQC_PENDING_REQUEUE_AFTER_S)


@shared_task(**task_options(task_names.COMPARE_MODEL_VERSIONS))
def compare_model_versions(first_id: int, second_id: int, fingerprint: str) -> str:
    return version_comparison_compute(first_id=first_id, second_id=second_id, fingerprint=fingerprint)
