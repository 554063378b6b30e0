"""Sending work to the Celery queues by task name.

The platform refers to worker tasks by name so that `inspections` never imports `worker`
(the dependency direction is worker -> inspections). A broker that is down must not turn a
stored upload into an error: the image stays `pending` and the sweeper queues it again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from celery import current_app
from django.conf import settings

logger = logging.getLogger(__name__)

PREDICT_IMAGES_TASK = "worker.tasks.inference.predict_images"
PROMOTION_WEBHOOK_TASK = "worker.tasks.events.send_promotion_webhook"
_PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


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
            current_app.send_task(
                PREDICT_IMAGES_TASK, kwargs={"image_ids": chunk}, queue="inference", retry_policy=_PUBLISH_RETRY
            )
        except Exception:  # any broker/transport failure: the sweeper re-queues pending images later
            logger.exception("could not queue inference for images %s; they stay pending", chunk[:20])
            break
        queued += len(chunk)
    return queued


def promotion_event_enqueue(*, version_id: int) -> bool:
    """Queue the promotion webhook (if one is configured); never raises."""
    if not settings.STEELQC_PROMOTION_WEBHOOK_URL:
        return False
    try:
        current_app.send_task(
            PROMOTION_WEBHOOK_TASK, kwargs={"version_id": version_id, "url": settings.STEELQC_PROMOTION_WEBHOOK_URL},
            queue="inference", retry_policy=_PUBLISH_RETRY,
        )
    except Exception:
        logger.exception("could not queue the promotion webhook for version %s", version_id)
        return False
    return True
