"""Sending work to the Celery queues by task name.

The platform refers to worker tasks by name so that `inspections` never imports `worker`
(the dependency direction is worker -> inspections). A broker that is down must not turn a
stored upload into an error: the image stays `pending` and the sweeper queues it again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from celery import current_app

logger = logging.getLogger(__name__)

PREDICT_IMAGES_TASK = "worker.tasks.inference.predict_images"
PROMOTION_WEBHOOK_TASK = "worker.tasks.events.send_promotion_webhook"
_PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


def inference_enqueue(*, image_ids: Sequence[int]) -> bool:
    """Queue prediction of ``image_ids``; False (and a log line) when the broker is unreachable."""
    if not image_ids:
        return True
    try:
        current_app.send_task(
            PREDICT_IMAGES_TASK, kwargs={"image_ids": list(image_ids)}, queue="inference", retry_policy=_PUBLISH_RETRY
        )
    except Exception:  # any broker/transport failure: the sweeper re-queues pending images later
        logger.exception("could not queue inference for images %s; they stay pending", list(image_ids)[:20])
        return False
    return True


def promotion_event_enqueue(*, version_id: int) -> bool:
    """Queue the promotion webhook (if one is configured); never raises."""
    from django.conf import settings

    if not settings.STEELQC_PROMOTION_WEBHOOK_URL:
        return False
    try:
        current_app.send_task(PROMOTION_WEBHOOK_TASK, kwargs={"version_id": version_id, "url": settings.STEELQC_PROMOTION_WEBHOOK_URL},
                              queue="inference",
                              retry_policy=_PUBLISH_RETRY)
    except Exception:
        logger.exception("could not queue the promotion webhook for version %s", version_id)
        return False
    return True
