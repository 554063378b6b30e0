"""Every worker task's Celery options -- time limits, retries, acknowledgement, result -- in one table.

Keyed by the names in `inspections.task_names`; each task in `worker/tasks/` is declared as
``@shared_task(**task_options(task_names.X))`` and carries nothing else but ``bind``.
Celery turns any keyword into a task attribute, so a misspelled option would be silently
ignored: tests/worker/test_celery_config.py checks that every registered task has a row here,
that every option is one Celery's Task defines, and that the task really carries the values.
"""

from django.conf import settings

from inspections import task_names

_INFERENCE_LIMITS = {
    "soft_time_limit": settings.STEELQC_INFERENCE_SOFT_TIME_LIMIT,
    "time_limit": settings.STEELQC_INFERENCE_TIME_LIMIT,
}
# Short and network-bound; a failed delivery is retried with back-off (worker.tasks.events).
_WEBHOOK = {"max_retries": 6, "soft_time_limit": 45, "time_limit": 60, "ignore_result": True}

TASK_OPTIONS: dict[str, dict] = {
    # One DELETE of expired rows: nothing to retry, the next run catches up.
    task_names.CLEAR_EXPIRED_SESSIONS: {"soft_time_limit": 300, "time_limit": 360, "ignore_result": True},
    # Redelivered when its worker dies mid-batch: predicting is safe to run twice.
    task_names.PREDICT_IMAGES: {**_INFERENCE_LIMITS, "acks_late": True, "reject_on_worker_lost": True,
                                "ignore_result": True},
    # Two models over a whole test split: longer than one prediction batch. A lost worker's
    # message is not redelivered; the next request for the comparison queues it again.
    task_names.COMPARE_MODEL_VERSIONS: {"soft_time_limit": settings.STEELQC_INFERENCE_SOFT_TIME_LIMIT * 10,
                                        "time_limit": settings.STEELQC_INFERENCE_TIME_LIMIT * 10,
                                        "ignore_result": True},
    task_names.REQUEUE_PENDING_IMAGES: {"soft_time_limit": 60, "time_limit": 90, "ignore_result": True},
    # Not acks_late: a request whose worker dies is not redelivered -- its client has had a 504
    # by its deadline and sends again; a stale redelivery would only classify twice.
    task_names.CLASSIFY_IMAGES: {**_INFERENCE_LIMITS, "ignore_result": True},
    # Acknowledged on receipt: a run whose worker dies is marked failed by the stale-run check
    # rather than silently started again from the beginning.
    task_names.RUN_TRAINING: {"acks_late": False, "soft_time_limit": settings.STEELQC_TRAINING_SOFT_TIME_LIMIT,
                              "time_limit": settings.STEELQC_TRAINING_TIME_LIMIT, "ignore_result": True},
    # A conversion and a check: well under a minute for the backbones here. A lost worker's message
    # is not redelivered; the next download of model.onnx queues it again.
    task_names.BUILD_ONNX_COPY: {"soft_time_limit": 600, "time_limit": 660, "ignore_result": True},
    task_names.START_TRAINING_IF_DUE: {"time_limit": 120, "ignore_result": True},
    task_names.FAIL_STALE_TRAINING_RUNS: {"time_limit": 60, "ignore_result": True},
    task_names.SEND_PROMOTION_WEBHOOK: _WEBHOOK,
    task_names.SEND_DRIFT_WEBHOOK: _WEBHOOK,
    task_names.CHECK_DRIFT: {"soft_time_limit": 100, "time_limit": 120, "ignore_result": True},
    # The sweep stops taking new batches well before the soft limit (worker.tasks.retention).
    task_names.APPLY_RETENTION: {"soft_time_limit": 900, "time_limit": 960, "ignore_result": True},
    task_names.ROLLUP_LINE_STATS: {"soft_time_limit": 540, "time_limit": 600, "ignore_result": True},
    # Its result is the answer: the health check waits for it.
    task_names.HEALTH_PING: {"soft_time_limit": 20, "time_limit": 30, "ignore_result": False},
}


def task_options(name: str) -> dict:
    """The keyword arguments for ``shared_task`` of the task called ``name``: its name and its row."""
    return {"name": name, **TASK_OPTIONS[name]}
