"""Training tasks (queue `training`, one worker with concurrency 1)."""

from celery import shared_task
from django.conf import settings

from inspections import task_names
from inspections.registry.services.onnx_copy import model_version_onnx_build
from inspections.registry.services.training import training_run_execute, training_runs_fail_stale
from inspections.review.services.continuous_learning import training_run_start_if_due
from worker.task_options import task_options


@shared_task(**task_options(task_names.RUN_TRAINING))
def run_training(run_id: int) -> None:
    training_run_execute(run_id=run_id)


@shared_task(**task_options(task_names.BUILD_ONNX_COPY))
def build_onnx_copy(version_id: int) -> None:
    model_version_onnx_build(version_id=version_id)


@shared_task(**task_options(task_names.START_TRAINING_IF_DUE))
def start_training_if_due() -> int | None:
    run = training_run_start_if_due()
    return run.pk if run else None


@shared_task(**task_options(task_names.FAIL_STALE_TRAINING_RUNS))
def fail_stale_training_runs() -> int:
    return training_runs_fail_stale(older_than_s=settings.STEELQC_TRAINING_STALE_AFTER_S)
