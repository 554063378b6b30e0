"""The line bridge's records (``manage.py line_bridge``): which frames it took and what became of
them, and the messages it owes the MQTT broker.

A frame is recorded ``taken`` under a batch before it is sent to be classified; the batch names
the classify request's idempotency key, so a bridge that stopped mid-request asks again with the
same key and gets the first answer instead of a second classification. Its result and the
messages that announce it are written in one transaction (``bridge_frames_finish``): a result is
either recorded and queued for MQTT, or neither. The same bytes from the same source are the same
frame (a unique constraint), so a file seen again after a restart is recognised, not counted.

The MQTT topics and the messages' shapes live here too: ``steelqc/<source>/result`` carries
exactly ``RESULT_FIELDS``; ``steelqc/<source>/alert`` carries ``{"kind": ..., "source", "at", ...}``
for a frame flagged ``foreign`` or ``anomaly`` and for a drift alert opened or closed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from inspections.line.models import (
    BridgeFrame,
    BridgeFrameOrigin,
    BridgeFrameState,
    BridgeMessage,
    DriftAlert,
)
from mlcore.artefact import REASON_FOREIGN

TOPIC_ROOT = "steelqc"
RESULT_FIELDS = ("filename", "sha256", "label", "confidence", "review_reasons", "needs_review", "kept", "image_id",
                 "model_version", "boxes", "at")
# Review reasons that raise an alert as well as a result. "anomaly" is the anomaly model's reason.
ALERT_REASONS = (REASON_FOREIGN, "anomaly")
ALERT_FLAGGED, ALERT_DRIFT_OPENED, ALERT_DRIFT_CLOSED = "flagged", "drift_opened", "drift_closed"
# A drift alert that opened or closed longer ago than this when the bridge first looks is not sent late.
ALERT_LOOKBACK = timedelta(hours=24)


def result_topic(source: str) -> str:
    return f"{TOPIC_ROOT}/{source}/result"


def alert_topic(source: str) -> str:
    return f"{TOPIC_ROOT}/{source}/alert"


def frame_topic(source: str) -> str:
    return f"{TOPIC_ROOT}/{source}/frame"


def new_batch() -> str:
    return uuid.uuid4().hex


def classify_key(*, source: str, batch: str) -> str:
    """The idempotency key of a batch's classify request (at most 200 printable characters)."""
    return f"line-bridge:{source}:{batch}"


@dataclass(frozen=True)
class FrameOutcome:
    """What became of one taken frame: its published result, or why it failed."""

    sha256: str
    result: dict | None = None
    reason: str = ""


def result_payload(*, filename: str, sha256: str, answer: dict, at: datetime) -> dict:
    """The MQTT result for one classify answer (``{filename, prediction, kept, image_id}``)."""
    prediction = answer["prediction"]
    return {
        "filename": filename, "sha256": sha256, "label": prediction["label"],
        "confidence": prediction["confidence"], "review_reasons": list(prediction["review_reasons"]),
        "needs_review": bool(prediction["needs_review"]), "kept": bool(answer["kept"]),
        "image_id": answer["image_id"], "model_version": prediction["model_version"],
        "boxes": list(prediction.get("boxes") or []), "at": at.isoformat(),
    }


def bridge_frames_claim(*, source: str, frames: list[tuple[str, str]],
                        origin: str = BridgeFrameOrigin.FOLDER) -> tuple[str, dict[str, tuple[str, str]]]:
    """Record ``frames`` ((name, sha256), in order) as taken by one new batch. Returns the batch
    and, for each sha256, (what it is, its batch): ``"claimed"`` (taken now, in the new batch),
    ``"done"`` (processed before: the same bytes again) or ``"taken"`` (waiting in an earlier
    batch). A frame that failed before is taken again: a person may have put it back after fixing
    what was wrong."""
    batch = new_batch()
    shas = [sha for _, sha in frames]
    with transaction.atomic():
        BridgeFrame.objects.filter(source=source, sha256__in=shas, state=BridgeFrameState.FAILED).delete()
        BridgeFrame.objects.bulk_create(
            [BridgeFrame(source=source, sha256=sha, name=name[:255], batch=batch, position=index, origin=origin)
             for index, (name, sha) in enumerate(frames)], ignore_conflicts=True)
        rows = BridgeFrame.objects.filter(source=source, sha256__in=shas).values_list("sha256", "state", "batch")
        states = {sha: ("claimed" if row_batch == batch else state, row_batch) for sha, state, row_batch in rows}
    return batch, states


def bridge_frames_rebatch(*, source: str, shas: list[str]) -> str:
    """Put taken frames into a new batch (their request answered that they must be sent again:
    their bytes expired before a worker took them, or no version was active)."""
    batch = new_batch()
    BridgeFrame.objects.filter(source=source, sha256__in=shas, state=BridgeFrameState.TAKEN).update(batch=batch)
    return batch


def bridge_frames_finish(*, source: str, outcomes: list[FrameOutcome], publish: bool) -> list[dict]:
    """Record each frame's result or failure; with ``publish``, queue its MQTT result (and an alert
    when it is flagged ``foreign`` or ``anomaly``) in the same transaction. Returns the results
    recorded now (a frame already finished is left as it was)."""
    now = timezone.now()
    recorded = []
    with transaction.atomic():
        taken = set(BridgeFrame.objects.select_for_update().filter(
            source=source, sha256__in=[o.sha256 for o in outcomes], state=BridgeFrameState.TAKEN,
        ).values_list("sha256", flat=True))
        messages = []
        for outcome in outcomes:
            if outcome.sha256 not in taken:
                continue
            rows = BridgeFrame.objects.filter(source=source, sha256=outcome.sha256)
            if outcome.result is None:
                rows.update(state=BridgeFrameState.FAILED, reason=outcome.reason[:500], finished_at=now)
                continue
            rows.update(state=BridgeFrameState.DONE, result=outcome.result, finished_at=now)
            recorded.append(outcome.result)
            if publish:
                messages += _result_messages(source=source, result=outcome.result)
        BridgeMessage.objects.bulk_create(messages, ignore_conflicts=True)
    return recorded


def _result_messages(*, source: str, result: dict) -> list[BridgeMessage]:
    sha = result["sha256"]
    messages = [BridgeMessage(key=f"result:{source}:{sha}", topic=result_topic(source), payload=result)]
    for reason in ALERT_REASONS:
        if reason in result["review_reasons"]:
            alert = {"kind": ALERT_FLAGGED, "source": source, "reason": reason, "at": result["at"],
                     **{field: result[field] for field in ("filename", "sha256", "label", "confidence", "image_id")}}
            messages.append(BridgeMessage(key=f"flagged:{source}:{sha}:{reason}", topic=alert_topic(source),
                                          payload=alert))
    return messages


def bridge_drift_alerts_queue(*, sources: list[str] | None, now: datetime | None = None) -> int:
    """Queue one MQTT alert per drift alert of ``sources`` (None: every source) that opened or
    closed within ``ALERT_LOOKBACK`` and was not queued yet. Returns how many were queued."""
    now = now or timezone.now()
    since = now - ALERT_LOOKBACK
    alerts = DriftAlert.objects.filter(Q(opened_at__gte=since) | Q(closed_at__gte=since))
    if sources is not None:
        alerts = alerts.filter(source__in=sources)
    messages = []
    for alert in alerts.order_by("opened_at", "id"):
        events = [(ALERT_DRIFT_OPENED, alert.opened_at)]
        if alert.closed_at is not None:
            events.append((ALERT_DRIFT_CLOSED, alert.closed_at))
        for kind, at in events:
            payload = {"kind": kind, "source": alert.source, "at": at.isoformat(), "alert_id": alert.pk,
                       "foreign_share": alert.foreign_share if kind == ALERT_DRIFT_OPENED else alert.closed_foreign_share,
                       "threshold": alert.threshold, "window_hours": alert.window_hours,
                       "model_version": alert.model_version_id}
            messages.append(BridgeMessage(key=f"{kind}:{alert.pk}", topic=alert_topic(alert.source), payload=payload))
    if not messages:
        return 0
    keys = [message.key for message in messages]
    with transaction.atomic():
        known = set(BridgeMessage.objects.filter(key__in=keys).values_list("key", flat=True))
        fresh = [message for message in messages if message.key not in known]
        BridgeMessage.objects.bulk_create(fresh, ignore_conflicts=True)
    return len(fresh)


def bridge_messages_published(*, ids: list[int]) -> int:
    """Mark messages the broker acknowledged."""
    return BridgeMessage.objects.filter(id__in=ids, published_at__isnull=True).update(published_at=timezone.now())


def bridge_records_prune(*, keep_days: int, now: datetime | None = None, batch: int = 5000) -> int:
    """Delete finished frame records and published messages older than ``keep_days`` (a batch at
    a time; the bridge calls it once a minute). Taken frames and waiting messages are kept."""
    cutoff = (now or timezone.now()) - timedelta(days=keep_days)
    frames = list(BridgeFrame.objects.filter(finished_at__lt=cutoff).values_list("id", flat=True)[:batch])
    messages = list(BridgeMessage.objects.filter(published_at__lt=cutoff).values_list("id", flat=True)[:batch])
    deleted = BridgeFrame.objects.filter(id__in=frames).delete()[0] if frames else 0
    return deleted + (BridgeMessage.objects.filter(id__in=messages).delete()[0] if messages else 0)
