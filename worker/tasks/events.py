"""Outgoing events (queue `inference`: short, network-bound)."""

import logging

from celery import shared_task

from inspections import task_names
from inspections.ops.services.webhooks import WebhookDeliveryError, drift_webhook_send, promotion_webhook_send
from worker.task_options import task_options

logger = logging.getLogger(__name__)


def _deliver_or_retry(task, what: str, send) -> bool:
    """Run ``send``; on a failed delivery retry with exponential back-off, then give up (logged)."""
    try:
        return send()
    except WebhookDeliveryError as error:
        delay = min(2 ** task.request.retries, 300)
        logger.warning("%s failed (%s); retry %d in %ds", what, error, task.request.retries + 1, delay)
        if task.request.retries >= task.max_retries:
            logger.error("%s given up after %d tries", what, task.max_retries + 1)
            return False
        raise task.retry(countdown=delay, exc=error) from None


@shared_task(bind=True, **task_options(task_names.SEND_PROMOTION_WEBHOOK))
def send_promotion_webhook(self, version_id: int, url: str) -> bool:
    return _deliver_or_retry(self, f"promotion webhook for version {version_id}",
                             lambda: promotion_webhook_send(version_id=version_id, url=url))


@shared_task(bind=True, **task_options(task_names.SEND_DRIFT_WEBHOOK))
def send_drift_webhook(self, alert_id: int, event: str, url: str) -> bool:
    return _deliver_or_retry(self, f"drift webhook ({event}) for alert {alert_id}",
                             lambda: drift_webhook_send(alert_id=alert_id, event=event, url=url))
