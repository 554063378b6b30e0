"""Sending work to the Celery queues: the one module that does it.

The platform refers to worker tasks by name (`inspections.task_names`) so that `inspections`
never imports `worker` (the dependency direction is worker -> inspections). A broker that is
down must not turn stored work into an error: an image stays `pending` and the sweeper queues
it again; a training run that cannot be queued is reported to the caller, which fails it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from celery import current_app
from django.conf import settings

from inspections import task_names

logger = logging.getLogger(__name__)

_PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


class _Sent:
    """What ``send_task`` hands back here: the task id and nothing else. No caller reads a task's
    result (every task ignores it), and Celery's own ``AsyncResult`` builds the result backend,
    once per thread: ~8 CPU-ms, an entry-point scan, on the first upload each gunicorn thread serves."""

    __slots__ = ("id", "ignored")

    def __init__(self, task_id: str):
        self.id = task_id


def _send(name: str, *, kwargs: dict, queue: str) -> None:
    """Publish one message (through Celery's producer pool: one broker connection per process,
    reused); raises on broker failure (callers decide what that means)."""
    current_app.send_task(name, kwargs=kwargs, queue=queue, retry_policy=_PUBLISH_RETRY,
                          ignore_result=True, add_to_parent=False, result_cls=_Sent)


def inference_enqueue(*, image_ids: Sequence[int]) -> int:
    """Queue prediction of ``image_ids``, one message per batch-sized slice so several workers
    can share a long list; returns how many ids were queued (fewer, and a log line, when the
    broker is unreachable)."""
    ids = list(image_ids)
    size = settings.STEELQC_INFERENCE_BATCH_SIZE
    queued = 0
    for start in range(0, len(ids), size):
        chunk = ids[start:start + size]
        try:
            _send(task_names.PREDICT_IMAGES, kwargs={"image_ids": chunk}, queue=task_names.INFERENCE_QUEUE)
        except Exception:  # any broker/transport failure: the sweeper re-queues pending images later
            logger.exception("could not queue inference for images %s; they stay pending", chunk[:20])
            break
        queued += len(chunk)
    return queued


def classify_enqueue(*, request_id: str, reply_to: str, items: list[dict], source: str, external_id: str,
                     uploaded_by_id: int | None, deadline_at: float, answer_ttl_s: int) -> bool:
    """Queue one classify/ request (its images' Redis keys, not their bytes) on the line queue;
    False (and a log line) when the broker is unreachable."""
    try:
        _send(task_names.CLASSIFY_IMAGES,
              kwargs={"request_id": request_id, "reply_to": reply_to, "items": items, "source": source,
                      "external_id": external_id, "uploaded_by_id": uploaded_by_id, "deadline_at": deadline_at,
                      "answer_ttl_s": answer_ttl_s},
              queue=task_names.LINE_QUEUE)
    except Exception:
        logger.exception("could not queue classify request %s", request_id)
        return False
    return True


def version_comparison_enqueue(*, first_id: int, second_id: int, fingerprint: str) -> bool:
    """Queue the predictions two versions' comparison needs; False (and a log line) when the broker is unreachable."""
    try:
        _send(task_names.COMPARE_MODEL_VERSIONS,
              kwargs={"first_id": first_id, "second_id": second_id, "fingerprint": fingerprint},
              queue=task_names.INFERENCE_QUEUE)
    except Exception:
        logger.exception("could not queue the comparison of versions %s and %s", first_id, second_id)
        return False
    return True


def training_run_enqueue(*, run_id: int) -> bool:
    """Queue a training run; False (and a log line) when the broker is unreachable."""
    try:
        _send(task_names.RUN_TRAINING, kwargs={"run_id": run_id}, queue=task_names.TRAINING_QUEUE)
    except Exception:
        logger.exception("could not queue training run %s", run_id)
        return False
    return True


def onnx_copy_enqueue(*, version_id: int) -> bool:
    """Queue the build of a version's ONNX copy on the training worker (TensorFlow and the converter
    live there, not in web processes); False (and a log line) when the broker is unreachable."""
    try:
        _send(task_names.BUILD_ONNX_COPY, kwargs={"version_id": version_id}, queue=task_names.TRAINING_QUEUE)
    except Exception:
        logger.exception("could not queue the ONNX copy of version %s", version_id)
        return False
    return True


def promotion_event_enqueue(*, version_id: int) -> bool:
    """Queue the promotion webhook (if one is configured); never raises."""
    if not settings.STEELQC_PROMOTION_WEBHOOK_URL:
        return False
    try:
        _send(task_names.SEND_PROMOTION_WEBHOOK,
              kwargs={"version_id": version_id, "url": settings.STEELQC_PROMOTION_WEBHOOK_URL},
              queue=task_names.INFERENCE_QUEUE)
    except Exception:
        logger.exception("could not queue the promotion webhook for version %s", version_id)
        return False
    return True


def drift_event_enqueue(*, alert_id: int, event: str) -> bool:
    """Queue a drift event (``drift.alert`` / ``drift.resolved``) to the promotion webhook's URL,
    if one is configured; never raises."""
    if not settings.STEELQC_PROMOTION_WEBHOOK_URL:
        return False
    try:
        _send(task_names.SEND_DRIFT_WEBHOOK,
              kwargs={"alert_id": alert_id, "event": event, "url": settings.STEELQC_PROMOTION_WEBHOOK_URL},
              queue=task_names.INFERENCE_QUEUE)
    except Exception:
        logger.exception("could not queue the %s event for drift alert %s", event, alert_id)
        return False
    return True
