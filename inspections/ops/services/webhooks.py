"""Telling other systems about promotions and drift alerts: a JSON POST to a configured URL.

Sent from a worker after the change has committed, retried with back-off on failure, and
logged; it never blocks or undoes a promotion or an alert. Every body names its ``event``.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request

from django.conf import settings

from inspections.line.models import DriftAlert
from inspections.registry.models import ModelVersion
from inspections.task_names import PROMOTION_EVENT

logger = logging.getLogger(__name__)



class WebhookDeliveryError(Exception):
    """The receiver did not accept the event; the task retries."""


def promotion_payload(version: ModelVersion) -> dict:
    metrics = version.metrics or {}
    return {
        "event": PROMOTION_EVENT,
        "version": {
            "id": version.pk,
            "number": version.number,
            "kind": version.kind,
            "backbone": version.backbone,
            "weight_source": version.weight_source,
            "classes": version.classes,
            "promoted_at": version.promoted_at.isoformat() if version.promoted_at else None,
        },
        "metrics": {key: metrics[key] for key in ("accuracy", "macro_f1", "per_class", "ece") if key in metrics},
    }


def promotion_webhook_send(*, version_id: int, url: str) -> bool:
    """POST the promotion event to ``url`` (the setting when the promotion happened); False when
    the version is gone."""
    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None:
        logger.warning("promotion webhook: version %s no longer exists", version_id)
        return False
    _post_json(url, promotion_payload(version))
    logger.info("promotion webhook: v%s delivered to %s", version.number, url)
    return True


def drift_payload(alert: DriftAlert, event: str) -> dict:
    def moment(value):
        return value.isoformat() if value else None

    return {
        "event": event,
        "alert": {
            "id": alert.pk,
            "source": alert.source,
            "opened_at": moment(alert.opened_at),
            "closed_at": moment(alert.closed_at),
            "window_hours": alert.window_hours,
            "threshold": alert.threshold,
            "foreign_share": alert.foreign_share,
            "image_count": alert.image_count,
            "baseline_foreign_share": alert.baseline_foreign_share,
            "closed_foreign_share": alert.closed_foreign_share,
            "closed_image_count": alert.closed_image_count,
            "model_version": alert.model_version.number if alert.model_version else None,
        },
    }


def drift_webhook_send(*, alert_id: int, event: str, url: str) -> bool:
    """POST ``event`` (``drift.alert`` or ``drift.resolved``) about the alert to ``url``; False
    when the alert is gone."""
    alert = DriftAlert.objects.select_related("model_version").filter(pk=alert_id).first()
    if alert is None:
        logger.warning("drift webhook: alert %s no longer exists", alert_id)
        return False
    _post_json(url, drift_payload(alert, event))
    logger.info("drift webhook: %s for source %r delivered to %s", event, alert.source, url)
    return True


def _post_json(url: str, payload: dict) -> None:
    """One delivery; raises WebhookDeliveryError unless the receiver answered 2xx/3xx."""
    if not url.startswith(("https://", "http://")):
        # urllib would also open file:// and ftp:// URLs; a webhook is only ever HTTP.
        raise WebhookDeliveryError(f"{url!r} is not an http(s) URL")
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "steelqc-webhook"},
    )
    try:
        timeout = settings.STEELQC_PROMOTION_WEBHOOK_TIMEOUT_S
        with urllib.request.urlopen(request, timeout=timeout):  # nosec B310 - scheme checked above
            pass
    except urllib.error.HTTPError as error:
        raise WebhookDeliveryError(f"{url} answered {error.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        raise WebhookDeliveryError(f"{url} unreachable: {error}") from None
