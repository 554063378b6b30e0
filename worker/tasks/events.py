"""Outgoing events (queue `inference`: short, network-bound)."""

import logging

from celery import shared_task

from inspections import task_names
from inspections.services.events import WebhookDeliveryError, promotion_webhook_send

logger = logging.getLogger(__name__)


@shared_task(
    name=task_names.SEND_PROMOTION_WEBHOOK,
    bind=True,
    max_retries=6,
    time_limit=60,
    soft_time_limit=45,
    ignore_result=True,
)
def send_promotion_webhook(self, version_id: int, url: str) -> bool:
    try:
        return promotion_webhook_send(version_id=version_id, url=url)
    except WebhookDeliveryError as error:
        delay = min(2 ** self.request.retries, 300)
        logger.warning("promotion webhook for version %s failed (%s); retry %d in %ds",
                       version_id, error, self.request.retries + 1, delay)
        if self.request.retries >= self.max_retries:
            logger.error("promotion webhook for version %s given up after %d tries", version_id, self.max_retries + 1)
            return False
        raise self.retry(countdown=delay, exc=error) from None
