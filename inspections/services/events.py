"""Telling other systems about promotions: a JSON POST to a configured URL.

Sent from a worker after the promotion has committed, retried with back-off on failure, and
logged; it never blocks or undoes a promotion.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request

from django.conf import settings

from inspections.models import ModelVersion

logger = logging.getLogger(__name__)

PROMOTION_EVENT = "model_version.promoted"


class WebhookDeliveryError(Exception):
    """The receiver did not accept the event; the task retries."""


def promotion_payload(version: ModelVersion) -> dict:
    metrics = version.metrics or {}
    return {
        "event": PROMOTION_EVENT,
        "version": {
            "id": version.pk,
            "number": version.number,
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
    if not url.startswith(("https://", "http://")):
        # urllib would also open file:// and ftp:// URLs; a webhook is only ever HTTP.
        raise WebhookDeliveryError(f"{url!r} is not an http(s) URL")
    request = urllib.request.Request(
        url, data=json.dumps(promotion_payload(version)).encode(), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "steelqc-webhook"},
    )
    try:
        timeout = settings.STEELQC_PROMOTION_WEBHOOK_TIMEOUT_S
        with urllib.request.urlopen(request, timeout=timeout) as response:  # nosec B310 - scheme checked above
            status = response.status
    except urllib.error.HTTPError as error:
        raise WebhookDeliveryError(f"{url} answered {error.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        raise WebhookDeliveryError(f"{url} unreachable: {error}") from None
    logger.info("promotion webhook: v%s delivered to %s (%s)", version.number, url, status)
    return True
