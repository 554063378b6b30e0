"""The line counts stay small: minutes older than ``STEELQC_LINE_MINUTES_KEEP_DAYS`` are merged
into hours, hours older than ``STEELQC_LINE_HOURS_KEEP_DAYS`` into days; days are kept.

Design: one table (``LineMinute``) with a ``resolution`` column, not LineHour/LineDay tables.
All three levels have the same columns and the same merge rule, so one upsert statement (the one
each classified batch uses) writes them all, one read sums any mix of them into the buckets asked
for (a period that spans rolled and not yet rolled rows reads the same either way), and one index
serves every read. Size: a source running all year holds at most 3 days of minutes, 87 days of
hours and one row per day -- about 6,800 rows per source and model version.

Each step takes old rows in chunks, in one transaction per chunk: lock them (``SKIP LOCKED``: a
row a worker is writing into right now waits for the next run), delete them, sum them per target
bucket, and add the sums to the target rows with the batch upsert (``ON CONFLICT`` merge). So:

- counts never change: what is deleted is added, in the same transaction; a crash rolls back both;
- it is idempotent: a second run finds nothing older than the cutoff left to move, and two runs at
  once skip each other's locked rows;
- a batch written into a minute while the roll-up holds it waits for the row lock; when the
  roll-up commits, the row is gone and PostgreSQL's ``ON CONFLICT`` inserts a fresh minute row,
  which the next run rolls up (a test holds the transaction open to show it).

Cutoffs are whole buckets (the local hour, the local day), so an hour or day row is only ever
made from a whole hour or day; a late minute merges into an existing hour row by the same upsert.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from inspections.line.models import LineMinute, LineResolution
from inspections.line.services.stats import bucket_start, empty_totals, line_bucket_add, totals_add

CHUNK_ROWS = 5000


@dataclass(frozen=True)
class RollupStep:
    """One level merged into the next: how many rows went in, how many bucket merges came out."""

    resolution: str
    into: str
    before: datetime
    rows_merged: int
    buckets_written: int

    def as_dict(self) -> dict:
        return {"resolution": self.resolution, "into": self.into, "before": self.before.isoformat(),
                "rows_merged": self.rows_merged, "buckets_written": self.buckets_written}


def line_stats_rollup(*, now: datetime | None = None, chunk_rows: int = CHUNK_ROWS) -> list[RollupStep]:
    """Merge minutes past their keep days into hours, then hours past theirs into days."""
    now = now or timezone.now()
    steps = []
    for resolution, into in ((LineResolution.MINUTE, LineResolution.HOUR), (LineResolution.HOUR, LineResolution.DAY)):
        days = (settings.STEELQC_LINE_MINUTES_KEEP_DAYS if resolution == LineResolution.MINUTE
                else settings.STEELQC_LINE_HOURS_KEEP_DAYS)
        before = bucket_start(now - timedelta(days=days), into)
        rows, buckets = 0, 0
        while True:
            moved, written = _roll_chunk(resolution=resolution, into=into, before=before, chunk_rows=chunk_rows)
            rows, buckets = rows + moved, buckets + written
            if moved < chunk_rows:
                break
        steps.append(RollupStep(resolution=resolution, into=into, before=before, rows_merged=rows,
                                buckets_written=buckets))
    return steps


@transaction.atomic
def _roll_chunk(*, resolution: str, into: str, before: datetime, chunk_rows: int) -> tuple[int, int]:
    rows = list(LineMinute.objects.select_for_update(skip_locked=True)
                .filter(resolution=resolution, minute__lt=before).order_by("minute", "pk")[:chunk_rows])
    if not rows:
        return 0, 0
    LineMinute.objects.filter(pk__in=[row.pk for row in rows]).delete()
    buckets: dict[tuple, dict] = defaultdict(empty_totals)
    for row in rows:
        totals_add(buckets[(row.source, bucket_start(row.minute, into), row.model_version_id)], row)
    for (source, start, version_id), totals in sorted(buckets.items(), key=_lock_order):
        line_bucket_add(source=source, resolution=into, start=start, model_version_id=version_id, totals=totals)
    return len(rows), len(buckets)


def _lock_order(item) -> tuple:
    """The same order in every run, so two runs upserting the same target rows cannot deadlock."""
    (source, start, version_id), _ = item
    return source, start, version_id is None, version_id or 0
