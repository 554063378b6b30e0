"""Counts of what line sources send through ``classify/`` (``LineMinute``): written per batch, read
per bucket of time.

One row per source, bucket and model version. Each classified batch adds to its minute's row with
**one** statement on PostgreSQL (``INSERT ... ON CONFLICT DO UPDATE``, the JSON counts merged key
by key in SQL), so concurrent workers never lose an increment and never read-modify-write in
Python. Chosen over Redis counters flushed by a periodic job: nothing is lost when a worker or
Redis restarts between flushes, and the row is readable the moment the batch is answered. Other
databases (the embedded SQLite installation) merge under a row lock instead. The roll-up
(``line_rollup.py``) merges old minutes into hours and old hours into days with the same statement.

Reads (``line_stats``, ``line_source_totals``) sum whatever rows cover the period into buckets of
the resolution asked: minute rows into hours, hours into days, so a period that spans minutes not
yet rolled up and hours already rolled up reads the same as if it were all one resolution.
Hours and days are the local time zone's (``TIME_ZONE``), as the dashboard and drift show them.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from inspections.line.models import LineMinute, LineResolution

HISTOGRAM_BINS = 10
COUNT_FIELDS = ("per_class", "per_reason", "kept_per_class", "kept_per_reason")
RESOLUTIONS = (LineResolution.MINUTE, LineResolution.HOUR, LineResolution.DAY)  # finest first

# Written out in full (no formatting): every value is a query parameter. Each JSON count is the
# sum of the stored and the new value per key; the histogram per bin.
_UPSERT = """
INSERT INTO inspections_lineminute AS l
    (source, resolution, minute, model_version_id, seen, kept, flagged, dropped, per_class, per_reason,
     kept_per_class, kept_per_reason, confidence_histogram, latency_ms_sum, latency_ms_max)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s::jsonb, %s::jsonb, %s::jsonb, %s, %s)
ON CONFLICT ON CONSTRAINT line_minute_unique DO UPDATE SET
    seen = l.seen + EXCLUDED.seen,
    kept = l.kept + EXCLUDED.kept,
    flagged = l.flagged + EXCLUDED.flagged,
    dropped = l.dropped + EXCLUDED.dropped,
    per_class = (
        SELECT COALESCE(jsonb_object_agg(
            k, COALESCE((l.per_class->>k)::bigint, 0) + COALESCE((EXCLUDED.per_class->>k)::bigint, 0)), '{}'::jsonb)
        FROM jsonb_object_keys(l.per_class || EXCLUDED.per_class) AS k),
    per_reason = (
        SELECT COALESCE(jsonb_object_agg(
            k, COALESCE((l.per_reason->>k)::bigint, 0) + COALESCE((EXCLUDED.per_reason->>k)::bigint, 0)), '{}'::jsonb)
        FROM jsonb_object_keys(l.per_reason || EXCLUDED.per_reason) AS k),
    kept_per_class = (
        SELECT COALESCE(jsonb_object_agg(
            k, COALESCE((l.kept_per_class->>k)::bigint, 0) + COALESCE((EXCLUDED.kept_per_class->>k)::bigint, 0)),
            '{}'::jsonb)
        FROM jsonb_object_keys(l.kept_per_class || EXCLUDED.kept_per_class) AS k),
    kept_per_reason = (
        SELECT COALESCE(jsonb_object_agg(
            k, COALESCE((l.kept_per_reason->>k)::bigint, 0) + COALESCE((EXCLUDED.kept_per_reason->>k)::bigint, 0)),
            '{}'::jsonb)
        FROM jsonb_object_keys(l.kept_per_reason || EXCLUDED.kept_per_reason) AS k),
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
    """One classified image, kept or not (no label and no confidence: an anomaly model answered alone)."""

    label: str | None
    confidence: float | None
    review_reasons: tuple[str, ...]
    kept: bool
    latency_ms: float


def confidence_bin(confidence: float) -> int:
    return min(max(int(confidence * HISTOGRAM_BINS), 0), HISTOGRAM_BINS - 1)


def empty_totals() -> dict:
    return {"seen": 0, "kept": 0, "flagged": 0, "dropped": 0, **{name: Counter() for name in COUNT_FIELDS},
            "confidence_histogram": [0] * HISTOGRAM_BINS, "latency_ms_sum": 0.0, "latency_ms_max": 0.0}


def totals_add(totals: dict, row) -> dict:
    """Add one stored row (a ``LineMinute`` or its ``values()`` dict) to ``totals``; returns it."""
    get = row.get if isinstance(row, dict) else lambda name: getattr(row, name)
    for name in ("seen", "kept", "flagged", "dropped", "latency_ms_sum"):
        totals[name] += get(name)
    totals["latency_ms_max"] = max(totals["latency_ms_max"], get("latency_ms_max"))
    for name in COUNT_FIELDS:
        totals[name].update(get(name) or {})
    histogram = list(get("confidence_histogram") or []) + [0] * HISTOGRAM_BINS
    totals["confidence_histogram"] = [a + b for a, b in zip(totals["confidence_histogram"], histogram)]
    return totals


def _batch_totals(rows: list[Seen]) -> dict:
    totals = empty_totals()
    for row in rows:
        totals["seen"] += 1
        totals["flagged"] += bool(row.review_reasons)
        if row.label is not None:
            totals["per_class"][row.label] += 1
        totals["per_reason"].update(row.review_reasons)
        if row.kept:
            totals["kept"] += 1
            if row.label is not None:
                totals["kept_per_class"][row.label] += 1
            totals["kept_per_reason"].update(row.review_reasons)
        if row.confidence is not None:
            totals["confidence_histogram"][confidence_bin(row.confidence)] += 1
        totals["latency_ms_sum"] += float(row.latency_ms)
        totals["latency_ms_max"] = max(totals["latency_ms_max"], float(row.latency_ms))
    return totals


# --- Writing ----------------------------------------------------------------------------------

def line_minute_record(*, source: str, model_version_id: int | None, rows: list[Seen],
                       now: datetime | None = None) -> None:
    """Add one batch of one source to its minute's row (created on first use)."""
    if not rows:
        return
    line_bucket_add(source=source, resolution=LineResolution.MINUTE, start=bucket_start(now or timezone.now(),
                    LineResolution.MINUTE), model_version_id=model_version_id, totals=_batch_totals(rows))


def line_drops_record(*, source: str, count: int, now: datetime | None = None) -> None:
    """Count ``count`` frames of ``source`` dropped unclassified (their request's deadline had passed
    before a worker took it; its client was answered 504 and sends them again)."""
    if count:
        line_bucket_add(source=source, resolution=LineResolution.MINUTE,
                        start=bucket_start(now or timezone.now(), LineResolution.MINUTE), model_version_id=None,
                        totals={**empty_totals(), "dropped": count})


def line_bucket_add(*, source: str, resolution: str, start: datetime, model_version_id: int | None,
                    totals: dict) -> None:
    """Add ``totals`` to the row of (source, resolution, start, version), created on first use."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_UPSERT, [
                source, resolution, start, model_version_id, totals["seen"], totals["kept"], totals["flagged"],
                totals["dropped"],
                *[json.dumps(dict(totals[name])) for name in COUNT_FIELDS],
                json.dumps(list(totals["confidence_histogram"])), totals["latency_ms_sum"], totals["latency_ms_max"],
            ])
        return
    _add_locked(source=source, resolution=resolution, start=start, model_version_id=model_version_id, totals=totals)


def _add_locked(*, source: str, resolution: str, start: datetime, model_version_id: int | None,
                totals: dict) -> None:
    for _ in range(3):
        try:
            with transaction.atomic():
                row, _ = LineMinute.objects.select_for_update().get_or_create(
                    source=source, resolution=resolution, minute=start, model_version_id=model_version_id,
                    defaults={"confidence_histogram": [0] * HISTOGRAM_BINS})
                merged = totals_add(totals_add(empty_totals(), row), totals)
                for name in ("seen", "kept", "flagged", "dropped", "latency_ms_sum", "latency_ms_max",
                             "confidence_histogram"):
                    setattr(row, name, merged[name])
                for name in COUNT_FIELDS:
                    setattr(row, name, dict(merged[name]))
                row.save()
                return
        except IntegrityError:  # created by someone else between the get and the create
            continue
    raise RuntimeError("could not record the line counts")


# --- Buckets ----------------------------------------------------------------------------------

def bucket_start(moment: datetime, resolution: str) -> datetime:
    """The start (UTC) of the minute, local hour or local day holding ``moment``."""
    if resolution == LineResolution.MINUTE:
        return moment.astimezone(dt_timezone.utc).replace(second=0, microsecond=0)
    local = timezone.localtime(moment)
    if resolution == LineResolution.HOUR:
        local = local.replace(minute=0, second=0, microsecond=0)
    else:
        local = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return local.astimezone(dt_timezone.utc)


def kept_days(resolution: str) -> int | None:
    """How many days rows of ``resolution`` are kept before the roll-up merges them (None: forever)."""
    return {LineResolution.MINUTE: settings.STEELQC_LINE_MINUTES_KEEP_DAYS,
            LineResolution.HOUR: settings.STEELQC_LINE_HOURS_KEEP_DAYS}.get(resolution)


def resolution_covers(resolution: str, *, since: datetime, now: datetime | None = None) -> bool:
    """Whether rows of ``resolution`` (or finer) still exist for the whole period from ``since``."""
    days = kept_days(resolution)
    return days is None or since >= (now or timezone.now()) - timedelta(days=days)


def line_resolution_for(*, since: datetime, now: datetime | None = None) -> str:
    """The finest resolution whose rows cover the period from ``since``."""
    return next(r for r in RESOLUTIONS if resolution_covers(r, since=since, now=now))


# --- Reading ----------------------------------------------------------------------------------

# On PostgreSQL the rows are summed in the database, one result row per (source, bucket): the plain
# counts, and each JSON count (and histogram bin) summed per key into one JSON object -- so a read
# of days of minutes of many sources transfers one row per bucket, not every stored row. Without a
# unit (``date_trunc`` of NULL is NULL) every row falls in one bucket per source, starting at
# ``since``. Every value is a query parameter.
_AGGREGATE = """
WITH r AS MATERIALIZED (
    SELECT source, COALESCE(date_trunc(%(unit)s, minute, %(tz)s), %(since)s::timestamptz) AS bucket, model_version_id,
           seen, kept, flagged, dropped, per_class, per_reason, kept_per_class, kept_per_reason, confidence_histogram,
           latency_ms_sum, latency_ms_max
    FROM inspections_lineminute
    WHERE minute >= %(since)s::timestamptz
      AND (%(source)s::varchar IS NULL OR source = %(source)s::varchar)
      AND (%(version)s::bigint IS NULL OR model_version_id = %(version)s::bigint)
), counted AS (
    SELECT source, bucket, 'per_class' AS field, e.key, sum(e.value::bigint) AS n
    FROM r, jsonb_each_text(r.per_class) AS e GROUP BY source, bucket, e.key
    UNION ALL
    SELECT source, bucket, 'per_reason', e.key, sum(e.value::bigint)
    FROM r, jsonb_each_text(r.per_reason) AS e GROUP BY source, bucket, e.key
    UNION ALL
    SELECT source, bucket, 'kept_per_class', e.key, sum(e.value::bigint)
    FROM r, jsonb_each_text(r.kept_per_class) AS e GROUP BY source, bucket, e.key
    UNION ALL
    SELECT source, bucket, 'kept_per_reason', e.key, sum(e.value::bigint)
    FROM r, jsonb_each_text(r.kept_per_reason) AS e GROUP BY source, bucket, e.key
    UNION ALL
    SELECT source, bucket, 'confidence_histogram', (h.i - 1)::text, sum(h.v::bigint)
    FROM r, jsonb_array_elements_text(r.confidence_histogram) WITH ORDINALITY AS h(v, i)
    WHERE %(histogram)s::boolean GROUP BY source, bucket, h.i
), per_field AS (
    SELECT source, bucket, field, jsonb_object_agg(key, n) AS counts FROM counted GROUP BY source, bucket, field
), objects AS (
    SELECT source, bucket, jsonb_object_agg(field, counts) AS counts FROM per_field GROUP BY source, bucket
), plain AS (
    SELECT source, bucket, sum(seen) AS seen, sum(kept) AS kept, sum(flagged) AS flagged, sum(dropped) AS dropped,
           sum(latency_ms_sum) AS latency_ms_sum, max(latency_ms_max) AS latency_ms_max,
           array_agg(DISTINCT model_version_id) AS model_versions
    FROM r GROUP BY source, bucket
)
SELECT plain.source, plain.bucket, plain.seen, plain.kept, plain.flagged, plain.dropped, plain.latency_ms_sum,
       plain.latency_ms_max, plain.model_versions, objects.counts
FROM plain LEFT JOIN objects ON objects.source = plain.source AND objects.bucket = plain.bucket
"""

_VALUES = ("source", "minute", "model_version_id", "seen", "kept", "flagged", "dropped", *COUNT_FIELDS, "confidence_histogram",
           "latency_ms_sum", "latency_ms_max")


def line_totals(*, since: datetime, resolution: str | None = None, source: str | None = None,
                model_version_id: int | None = None, histogram: bool = True) -> dict[tuple[str, datetime | None], dict]:
    """(source, bucket start) -> the summed counts (``empty_totals()`` shape, plus the set
    ``model_versions``) of the rows from ``since`` on; the bucket start is None when
    ``resolution`` is None (one entry per source). A stored row counts in the bucket its start is in.
    ``histogram=False``: the confidence histogram is left at zeros (half the work; drift needs none)."""
    if connection.vendor == "postgresql":
        return _totals_in_database(since=since, resolution=resolution, source=source, model_version_id=model_version_id,
                                   histogram=histogram)
    rows = LineMinute.objects.filter(minute__gte=since)
    if source is not None:
        rows = rows.filter(source=source)
    if model_version_id is not None:
        rows = rows.filter(model_version_id=model_version_id)
    merged: dict = {}
    for row in rows.order_by().values(*_VALUES).iterator(chunk_size=5000):
        key = (row["source"], bucket_start(row["minute"], resolution) if resolution else None)
        totals = merged.get(key)
        if totals is None:
            totals = merged[key] = {**empty_totals(), "model_versions": set()}
        totals_add(totals, row)
        totals["model_versions"].add(row["model_version_id"])
    return merged


def _totals_in_database(*, since: datetime, resolution: str | None, source: str | None,
                        model_version_id: int | None, histogram: bool) -> dict:
    merged: dict = {}
    with connection.cursor() as cursor:
        cursor.execute(_AGGREGATE, {"unit": resolution, "tz": timezone.get_current_timezone_name(), "since": since,
                                    "source": source, "version": model_version_id, "histogram": histogram})
        rows = cursor.fetchall()
    for name, bucket, seen, kept, flagged, dropped, latency_sum, latency_max, versions, counts in rows:
        counts = json.loads(counts) if isinstance(counts, str) else counts or {}  # Django leaves jsonb undecoded
        histogram = [0] * HISTOGRAM_BINS
        for index, n in (counts.get("confidence_histogram") or {}).items():
            if int(index) < HISTOGRAM_BINS:
                histogram[int(index)] += int(n)
        merged[(name, bucket.astimezone(dt_timezone.utc) if resolution else None)] = {
            "seen": int(seen), "kept": int(kept), "flagged": int(flagged), "dropped": int(dropped),
            **{field: Counter({key: int(n) for key, n in (counts.get(field) or {}).items()}) for field in COUNT_FIELDS},
            "confidence_histogram": histogram, "latency_ms_sum": float(latency_sum), "latency_ms_max": float(latency_max),
            "model_versions": set(versions),
        }
    return merged


def _finished(totals: dict) -> dict:
    """Totals as they are answered: plain dicts, the mean latency instead of the sum."""
    out = {name: value for name, value in totals.items() if name not in ("latency_ms_sum", "model_versions")}
    for name in COUNT_FIELDS:
        out[name] = dict(sorted(totals[name].items()))
    out["latency_ms_mean"] = totals["latency_ms_sum"] / totals["seen"] if totals["seen"] else None
    return out


def line_stats(*, source: str | None = None, since: datetime | None = None, resolution: str | None = None,
               limit: int = 10080, now: datetime | None = None) -> list[dict]:
    """Buckets of ``resolution`` (default: the finest that covers the period) from ``since``
    (default: the last hour; moved back to its bucket's start), newest first, at most ``limit``,
    summed over model versions, each with the mean latency."""
    now = now or timezone.now()
    since = since or now - timedelta(hours=1)
    resolution = resolution or line_resolution_for(since=since, now=now)
    merged = line_totals(since=bucket_start(since, resolution), resolution=resolution, source=source)
    keys = sorted(merged, key=lambda key: (-key[1].timestamp(), key[0]))[:limit]
    return [{"source": key[0], "start": key[1],
             "model_versions": sorted(merged[key]["model_versions"], key=lambda pk: (pk is None, pk or 0)),
             **_finished(merged[key])} for key in keys]


def line_source_totals(*, since: datetime) -> dict[str, dict]:
    """Source -> its counts since ``since`` (every row from then on, summed; rows are never split)."""
    return {name: _finished(totals) for (name, _), totals in sorted(line_totals(since=since).items())}
