"""Per-minute counts of what line sources send through ``classify/`` (``LineMinute``).

One row per source, minute and model version; each classified batch adds to it with **one**
statement on PostgreSQL (``INSERT ... ON CONFLICT DO UPDATE``, the JSON counts merged key by key
in SQL), so concurrent workers never lose an increment and never read-modify-write in Python.
Chosen over Redis counters flushed by a periodic job: nothing is lost when a worker or Redis
restarts between flushes, and the row is readable the moment the batch is answered. Other
databases (the embedded SQLite installation) merge under a row lock instead.

Rolling minutes older than a few days up into hours and days is not done yet (see README).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from inspections.models import LineMinute

HISTOGRAM_BINS = 10

# Written out in full (no formatting): every value is a query parameter. Each JSON count is the
# sum of the stored and the new value per key; the histogram per bin.
_UPSERT = """
INSERT INTO inspections_lineminute AS l
    (source, minute, model_version_id, seen, kept, flagged, per_class, per_reason, confidence_histogram,
     latency_ms_sum, latency_ms_max)
VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s::jsonb, %s, %s)
ON CONFLICT ON CONSTRAINT line_minute_unique DO UPDATE SET
    seen = l.seen + EXCLUDED.seen,
    kept = l.kept + EXCLUDED.kept,
    flagged = l.flagged + EXCLUDED.flagged,
    per_class = (
        SELECT COALESCE(jsonb_object_agg(
            k, COALESCE((l.per_class->>k)::bigint, 0) + COALESCE((EXCLUDED.per_class->>k)::bigint, 0)), '{}'::jsonb)
        FROM jsonb_object_keys(l.per_class || EXCLUDED.per_class) AS k),
    per_reason = (
        SELECT COALESCE(jsonb_object_agg(
            k, COALESCE((l.per_reason->>k)::bigint, 0) + COALESCE((EXCLUDED.per_reason->>k)::bigint, 0)), '{}'::jsonb)
        FROM jsonb_object_keys(l.per_reason || EXCLUDED.per_reason) AS k),
    confidence_histogram = (
        SELECT jsonb_agg(
            COALESCE((l.confidence_histogram->>i)::bigint, 0) + COALESCE((EXCLUDED.confidence_histogram->>i)::bigint, 0)
            ORDER BY i)
        FROM generate_series(0, 9) AS i),
    latency_ms_sum = l.latency_ms_sum + EXCLUDED.latency_ms_sum,
    latency_ms_max = GREATEST(l.latency_ms_max, EXCLUDED.latency_ms_max)
"""


@dataclass(frozen=True)
class Seen:
    """One classified image, kept or not."""

    label: str
    confidence: float
    review_reasons: tuple[str, ...]
    kept: bool
    latency_ms: float


def confidence_bin(confidence: float) -> int:
    return min(max(int(confidence * HISTOGRAM_BINS), 0), HISTOGRAM_BINS - 1)


def _totals(rows: list[Seen]) -> dict:
    histogram = [0] * HISTOGRAM_BINS
    for row in rows:
        histogram[confidence_bin(row.confidence)] += 1
    return {
        "seen": len(rows), "kept": sum(r.kept for r in rows), "flagged": sum(bool(r.review_reasons) for r in rows),
        "per_class": dict(Counter(r.label for r in rows)),
        "per_reason": dict(Counter(reason for r in rows for reason in r.review_reasons)),
        "confidence_histogram": histogram,
        "latency_ms_sum": float(sum(r.latency_ms for r in rows)),
        "latency_ms_max": float(max((r.latency_ms for r in rows), default=0.0)),
    }


def line_minute_record(*, source: str, model_version_id: int | None, rows: list[Seen],
                       now: datetime | None = None) -> None:
    """Add one batch of one source to its minute's row (created on first use)."""
    if not rows:
        return
    minute = (now or timezone.now()).replace(second=0, microsecond=0)
    totals = _totals(rows)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_UPSERT, [
                source, minute, model_version_id, totals["seen"], totals["kept"], totals["flagged"],
                json.dumps(totals["per_class"]), json.dumps(totals["per_reason"]),
                json.dumps(totals["confidence_histogram"]), totals["latency_ms_sum"], totals["latency_ms_max"],
            ])
        return
    _record_locked(source=source, minute=minute, model_version_id=model_version_id, totals=totals)


def _record_locked(*, source: str, minute: datetime, model_version_id: int | None, totals: dict) -> None:
    for _ in range(3):
        try:
            with transaction.atomic():
                row, _ = LineMinute.objects.select_for_update().get_or_create(
                    source=source, minute=minute, model_version_id=model_version_id,
                    defaults={"confidence_histogram": [0] * HISTOGRAM_BINS})
                for field in ("seen", "kept", "flagged", "latency_ms_sum"):
                    setattr(row, field, getattr(row, field) + totals[field])
                row.latency_ms_max = max(row.latency_ms_max, totals["latency_ms_max"])
                for field in ("per_class", "per_reason"):
                    merged = Counter(getattr(row, field)) + Counter(totals[field])
                    setattr(row, field, dict(merged))
                old = list(row.confidence_histogram) or [0] * HISTOGRAM_BINS
                row.confidence_histogram = [a + b for a, b in zip(old, totals["confidence_histogram"])]
                row.save()
                return
        except IntegrityError:  # created by someone else between the get and the create
            continue
    raise RuntimeError("could not record the line counts")


def line_stats(*, source: str | None = None, since: datetime | None = None, limit: int = 10080) -> list[dict]:
    """The minute rows since ``since`` (default: the last hour), newest first, summed over model
    versions, each with the mean latency."""
    since = since or timezone.now() - timedelta(hours=1)
    rows = LineMinute.objects.filter(minute__gte=since)
    if source is not None:
        rows = rows.filter(source=source)
    merged: dict[tuple[str, datetime], dict] = {}
    for row in rows.order_by("-minute", "source")[:limit]:
        key = (row.source, row.minute)
        entry = merged.setdefault(key, {
            "source": row.source, "minute": row.minute, "model_versions": [], "seen": 0, "kept": 0, "flagged": 0,
            "per_class": Counter(), "per_reason": Counter(), "confidence_histogram": [0] * HISTOGRAM_BINS,
            "latency_ms_sum": 0.0, "latency_ms_max": 0.0,
        })
        entry["model_versions"].append(row.model_version_id)
        for field in ("seen", "kept", "flagged", "latency_ms_sum"):
            entry[field] += getattr(row, field)
        entry["latency_ms_max"] = max(entry["latency_ms_max"], row.latency_ms_max)
        entry["per_class"].update(row.per_class)
        entry["per_reason"].update(row.per_reason)
        entry["confidence_histogram"] = [a + b for a, b in zip(entry["confidence_histogram"],
                                                               row.confidence_histogram or [0] * HISTOGRAM_BINS)]
    out = []
    for entry in merged.values():
        latency_sum = entry.pop("latency_ms_sum")
        entry["latency_ms_mean"] = latency_sum / entry["seen"] if entry["seen"] else None
        entry["per_class"], entry["per_reason"] = dict(entry["per_class"]), dict(entry["per_reason"])
        out.append(entry)
    return out
