"""Deleting later what the retention policy no longer needs: expired images, rows and files.

Each source's policy gives ``keep_days`` (blank: keep forever). An image older than that is
*expired*; an expired image is deleted only when nobody needs it (``_needed``): no label, no
review of any kind, no box from a person or an import, in no dataset snapshot, no split, not in
the open review queue, and predicted (pending and failed images wait for a person or a retry).

Rows first, files after: a batch of image rows is deleted in one transaction that also writes a
``PendingFileDeletion`` per stored file; after the commit the files are deleted and their
pending rows with them. A file whose delete fails keeps its pending row and the next run tries
again, so a crash or an outage costs at most a late delete, never a row whose file is gone.

Every run (and every dry run) leaves a ``RetentionRun`` row: counts and bytes per source, and
for a dry run also how many expired images are kept and why.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Case, CharField, Count, Exists, OuterRef, Q, QuerySet, Sum, Value, When
from django.utils import timezone

from inspections.catalog.models import BoxSource, DefectBox, DefectBoxChange, ImageStatus, InspectionImage, Split
from inspections.errors import ApplicationError, Conflict
from inspections.line.models import PendingFileDeletion, RetentionPolicy, RetentionRun, RetentionTrigger
from inspections.registry.models import DatasetSnapshotItem
from inspections.review.models import Prediction, Review

logger = logging.getLogger(__name__)

# A session-level advisory lock: one sweep at a time across all workers and commands.
RETENTION_SWEEP_LOCK = 0x5_7EE1_00E7

DELETABLE = "deleted"
# Why an expired image is kept, in the order they are tested (an image counts under the first).
KEPT_LABELLED = "labelled"
KEPT_REVIEWED = "reviewed"
KEPT_SNAPSHOT = "snapshot"
KEPT_SPLIT = "split"
KEPT_BOXED = "boxed"
KEPT_OPEN_REVIEW = "open_review"
KEPT_NOT_PREDICTED = "not_predicted"
KEPT_REASONS = (KEPT_LABELLED, KEPT_REVIEWED, KEPT_SNAPSHOT, KEPT_SPLIT, KEPT_BOXED, KEPT_OPEN_REVIEW,
                KEPT_NOT_PREDICTED)


def _reasons_needed() -> list[tuple[str, Q]]:
    """(reason, condition) pairs: an image matching any condition is needed and never deleted."""
    image = OuterRef("pk")
    return [
        (KEPT_LABELLED, Q(label__isnull=False) | Q(suspect_suggestion__isnull=False)),
        (KEPT_REVIEWED, Q(excluded=True) | Q(Exists(Review.objects.filter(image=image)))),
        (KEPT_SNAPSHOT, Q(Exists(DatasetSnapshotItem.objects.filter(image=image)))),
        (KEPT_SPLIT, ~Q(split=Split.UNASSIGNED)),
        # A box from a person or an import, a model's box a person accepted, any box change.
        (KEPT_BOXED, Q(Exists(DefectBox.objects.filter(image=image).filter(
            ~Q(source=BoxSource.MODEL) | Q(created_by__isnull=False))))
         | Q(Exists(DefectBoxChange.objects.filter(image=image)))),
        (KEPT_OPEN_REVIEW, Q(Exists(Prediction.objects.filter(image=image).filter(
            Q(needs_review=True) | ~Q(review_reasons=[]))))),
        (KEPT_NOT_PREDICTED, ~Q(status=ImageStatus.PREDICTED)),
    ]


def _needed() -> Q:
    needed = Q()
    for _, condition in _reasons_needed():
        needed |= condition
    return needed


# --- Which images a run looks at ------------------------------------------------------------

@dataclass(frozen=True)
class Scope:
    """The images one policy governs: one source, or (``others``) every source without its own."""

    source: str  # the policy row's source ("" for the default)
    keep_days: int | None
    others: tuple[str, ...] | None = None  # for the default: the sources that have their own policy

    def images(self) -> QuerySet[InspectionImage]:
        if self.others is None:
            return InspectionImage.objects.filter(source=self.source)
        return InspectionImage.objects.exclude(source__in=self.others)

    def cutoff(self, now: datetime) -> datetime | None:
        return None if self.keep_days is None else now - timedelta(days=self.keep_days)


def retention_scopes(*, source: str | None = None) -> list[Scope]:
    """The policies in force: each source's own, then the default for all other sources (the
    blank-source row, else the settings). With ``source``, only the scope of that one source."""
    rows = {row.source: row.keep_days for row in RetentionPolicy.objects.all()}
    default_days = rows.pop("", settings.STEELQC_RETENTION_KEEP_DAYS)
    if source is not None:
        return [Scope(source=source, keep_days=rows.get(source, default_days))]
    own = [Scope(source=name, keep_days=days) for name, days in sorted(rows.items())]
    return [*own, Scope(source="", keep_days=default_days, others=tuple(sorted(rows)))]


def expired_candidates(*, scope: Scope, now: datetime) -> QuerySet[InspectionImage]:
    """The scope's images past their keep time, tested on the image row's own columns only
    (label, suspicion, exclusion, split, status), oldest first: an index walk on (source,
    created_at), or created_at for the default scope. The sweep reads these in batches and tests
    the related tables (reviews, boxes, snapshots, flagged predictions) for the batch's ids:
    PostgreSQL would otherwise hash every flagged prediction of the table for each batch."""
    cutoff = scope.cutoff(now)
    if cutoff is None:
        return InspectionImage.objects.none()
    return scope.images().filter(
        created_at__lt=cutoff, label__isnull=True, suspect_suggestion__isnull=True, excluded=False,
        split=Split.UNASSIGNED, status=ImageStatus.PREDICTED,
    ).order_by("created_at", "id")


def expired_deletable(*, scope: Scope, now: datetime) -> QuerySet[InspectionImage]:
    """The scope's expired images nobody needs, oldest first, as one query (reports, tests)."""
    return expired_candidates(scope=scope, now=now).exclude(_needed())


def _after(candidates: QuerySet[InspectionImage], cursor: tuple | None) -> QuerySet[InspectionImage]:
    """Keyset paging on (created_at, id): images a batch kept are not read again in the same run."""
    if cursor is None:
        return candidates
    created_at, pk = cursor
    return candidates.filter(Q(created_at__gt=created_at) | Q(created_at=created_at, pk__gt=pk))


def _unneeded(ids: list[int]) -> QuerySet[InspectionImage]:
    return InspectionImage.objects.filter(pk__in=ids).exclude(_needed()).order_by("created_at", "id")


# --- Reports (dry run, page) ----------------------------------------------------------------

@dataclass
class SourceFigures:
    keep_days: int | None
    cutoff: str | None
    deleted: int = 0
    bytes: int = 0
    kept: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"keep_days": self.keep_days, "cutoff": self.cutoff, "deleted": self.deleted, "bytes": self.bytes,
                "kept": dict(self.kept)}


def _reason_case() -> Case:
    return Case(*[When(condition, then=Value(reason)) for reason, condition in _reasons_needed()],
                default=Value(DELETABLE), output_field=CharField())


def retention_report(*, source: str | None = None, now: datetime | None = None) -> dict[str, SourceFigures]:
    """Per source: the expired images the sweep would delete (count, bytes) and the expired ones
    it keeps, per reason. Sources kept forever are listed with
    nothing to delete. Reads every expired image of the sources once: for the command and the
    dry run, not for every page view (``retention_next_run``)."""
    now = now or timezone.now()
    figures: dict[str, SourceFigures] = {}
    for scope in retention_scopes(source=source):
        cutoff = scope.cutoff(now)
        if cutoff is None:
            if scope.others is None:
                figures[scope.source] = SourceFigures(keep_days=None, cutoff=None)
            continue
        rows = (scope.images().filter(created_at__lt=cutoff).annotate(reason=_reason_case())
                .values("source", "reason").annotate(images=Count("id"), bytes=Sum("size_bytes")).order_by())
        for row in rows:
            entry = figures.setdefault(row["source"], SourceFigures(keep_days=scope.keep_days, cutoff=cutoff.isoformat()))
            if row["reason"] == DELETABLE:
                entry.deleted += row["images"]
                entry.bytes += row["bytes"] or 0
            else:
                entry.kept[row["reason"]] = entry.kept.get(row["reason"], 0) + row["images"]
    return dict(sorted(figures.items()))


def retention_next_run(*, limit: int | None = None, now: datetime | None = None, chunk: int = 1000) -> dict:
    """What the next run would delete, per source, counted up to ``limit`` (default the run's
    limit); ``more_left``: more than that may be due. Reads the candidates in chunks as the
    sweep does, so the cost grows with ``limit``, not with the table."""
    now = now or timezone.now()
    limit = limit or settings.STEELQC_RETENTION_SWEEP_MAX_IMAGES
    per_source: dict[str, dict] = {}
    total = total_bytes = 0
    more = False
    for scope in retention_scopes():
        if total >= limit:
            more = more or expired_candidates(scope=scope, now=now).exists()
            continue
        cursor = None
        while total < limit:
            picked = list(_after(expired_candidates(scope=scope, now=now), cursor)
                          .values_list("id", "created_at")[:chunk])
            if not picked:
                break
            cursor = (picked[-1][1], picked[-1][0])
            rows = list(_unneeded([pk for pk, _ in picked]).values_list("source", "size_bytes"))
            room = limit - total
            more = more or len(rows) > room
            for source, size in rows[:room]:
                entry = per_source.setdefault(source, {"images": 0, "bytes": 0, "keep_days": scope.keep_days})
                entry["images"] += 1
                entry["bytes"] += size
                total += 1
                total_bytes += size
            if len(picked) < chunk:
                break
            more = more or total >= limit  # a full chunk at the limit: more may follow
    return {"per_source": dict(sorted(per_source.items())), "images": total, "bytes": total_bytes,
            "more_left": more, "limit": limit}


def retention_runs_recent(*, count: int = 10) -> list[RetentionRun]:
    return list(RetentionRun.objects.all()[:count])


def pending_file_deletions_count() -> int:
    return PendingFileDeletion.objects.count()


# --- The sweep ------------------------------------------------------------------------------

@dataclass
class _FileTally:
    deleted: int = 0
    failed: int = 0


def _delete_files(pending: list[PendingFileDeletion], tally: _FileTally) -> None:
    """Delete the stored files of deleted rows; the successes drop their pending rows (one
    statement), each failure is logged and stays pending for the next run."""
    # The same bytes uploaded again after the delete get a row pointing at a stored file; never
    # delete a file a row points at (one query for the whole batch, by the unique sha256).
    in_use = set(InspectionImage.objects.filter(sha256__in={item.sha256 for item in pending})
                 .values_list("sha256", "file"))
    done = []
    for item in pending:
        if (item.sha256, item.name) in in_use:
            done.append(item.pk)
            continue
        try:
            default_storage.delete(item.name)
        except Exception as error:
            tally.failed += 1
            logger.warning("retention: deleting stored file %s failed (attempt %d), retried by the next run: %s",
                           item.name, item.attempts + 1, error)
            PendingFileDeletion.objects.filter(pk=item.pk).update(
                attempts=item.attempts + 1, last_attempt_at=timezone.now(), last_error=str(error)[:500])
            continue
        tally.deleted += 1
        done.append(item.pk)
    PendingFileDeletion.objects.filter(pk__in=done).delete()


def _retry_pending_files(tally: _FileTally) -> None:
    """Files left by earlier runs (failed deletes, or a process that stopped after its commit)."""
    last_id = 0
    while True:
        batch = list(PendingFileDeletion.objects.filter(pk__gt=last_id).order_by("pk")[:500])
        if not batch:
            return
        _delete_files(batch, tally)
        last_id = batch[-1].pk


def _delete_batch(*, scope: Scope, now: datetime, size: int, tally: _FileTally,
                  cursor: tuple | None) -> tuple[list[dict], tuple | None, int]:
    """Delete the unneeded among the next ``size`` expired candidates of ``scope`` after
    ``cursor``; their files after the commit. Returns (deleted rows, new cursor, candidates read)."""
    with transaction.atomic():
        picked = list(_after(expired_candidates(scope=scope, now=now), cursor)
                      .select_for_update(skip_locked=True, of=("self",)).values_list("id", "created_at")[:size])
        if not picked:
            return [], cursor, 0
        # Tested once the rows are locked, in a statement of its own: a review, box or snapshot
        # committed meanwhile keeps its image (a reviewer's row lock waits for ours, or we for it).
        rows = list(_unneeded([pk for pk, _ in picked]).values("id", "source", "file", "sha256", "size_bytes"))
        InspectionImage.objects.filter(pk__in=[row["id"] for row in rows]).delete()
        PendingFileDeletion.objects.bulk_create(
            [PendingFileDeletion(name=row["file"], sha256=row["sha256"], size_bytes=row["size_bytes"])
             for row in rows if row["file"]],
            ignore_conflicts=True,
        )
        names = [row["file"] for row in rows if row["file"]]
        transaction.on_commit(lambda: _delete_files(list(PendingFileDeletion.objects.filter(name__in=names)), tally))
    return rows, (picked[-1][1], picked[-1][0]), len(picked)


class _SweepLock:
    """The session-level advisory lock (PostgreSQL); the embedded SQLite runs one process."""

    def __enter__(self) -> bool:
        if connection.vendor != "postgresql":
            return True
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [RETENTION_SWEEP_LOCK])
            self.held = bool(cursor.fetchone()[0])
        return self.held

    def __exit__(self, *exc) -> None:
        if connection.vendor == "postgresql" and getattr(self, "held", False):
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [RETENTION_SWEEP_LOCK])


def retention_sweep(*, dry_run: bool = False, source: str | None = None, limit: int | None = None,
                    trigger: str = RetentionTrigger.COMMAND, time_budget_s: float | None = None,
                    now: datetime | None = None) -> RetentionRun:
    """Delete (or with ``dry_run`` only count) the expired images nobody needs, at most ``limit``
    (default ``STEELQC_RETENTION_SWEEP_MAX_IMAGES``), oldest first per policy; retries the file
    deletes earlier runs left. Stops starting batches after ``time_budget_s`` seconds. Returns the
    run's audit row. Refuses (``retention_running``) while another sweep runs."""
    if limit is not None and limit < 1:
        raise ApplicationError("limit must be at least 1.", code="invalid_limit")
    limit = limit or settings.STEELQC_RETENTION_SWEEP_MAX_IMAGES
    now = now or timezone.now()
    if dry_run:
        return _recorded(RetentionRun(dry_run=True, trigger=trigger, source_filter=source, limit=limit),
                         lambda run: _dry_run(run, source=source, limit=limit, now=now))
    if connection.in_atomic_block:
        raise RuntimeError("retention_sweep commits batch by batch; call it outside transaction.atomic()")
    with _SweepLock() as held:
        if not held:
            raise Conflict("Another retention run is in progress.", code="retention_running")
        return _recorded(RetentionRun(dry_run=False, trigger=trigger, source_filter=source, limit=limit),
                         lambda run: _sweep(run, source=source, limit=limit, now=now, time_budget_s=time_budget_s))


def _recorded(run: RetentionRun, work) -> RetentionRun:
    """Run ``work(run)`` and keep its audit row, with the error when it failed."""
    run.save()
    try:
        work(run)
    except Exception as error:
        run.error = f"{type(error).__name__}: {error}"[:2000]
        run.finished_at = timezone.now()
        run.save()
        raise
    run.finished_at = timezone.now()
    run.save()
    logger.info("retention %s %s: %d images, %d bytes, %d files deleted, %d file deletes failed%s",
                "dry run" if run.dry_run else "run", run.pk, run.images_deleted, run.bytes_freed, run.files_deleted,
                run.files_failed, " (more left)" if run.more_left else "")
    return run


def _dry_run(run: RetentionRun, *, source: str | None, limit: int, now: datetime) -> None:
    figures = retention_report(source=source, now=now)
    run.per_source = {name: entry.as_dict() for name, entry in figures.items()}
    # The whole of what would go; ``more_left``: more than one run deletes.
    run.images_deleted = sum(entry.deleted for entry in figures.values())
    run.bytes_freed = sum(entry.bytes for entry in figures.values())
    run.more_left = run.images_deleted > limit


def _sweep(run: RetentionRun, *, source: str | None, limit: int, now: datetime,
           time_budget_s: float | None) -> None:
    started = time.monotonic()
    tally = _FileTally()
    _retry_pending_files(tally)
    per_source: dict[str, SourceFigures] = {}
    deleted = 0
    for scope in retention_scopes(source=source):
        cutoff, cursor = scope.cutoff(now), None
        while cutoff is not None:
            if deleted >= limit or (time_budget_s is not None and time.monotonic() - started > time_budget_s):
                run.more_left = run.more_left or _after(expired_candidates(scope=scope, now=now), cursor).exists()
                break
            size = min(settings.STEELQC_RETENTION_SWEEP_BATCH, limit - deleted)
            rows, cursor, read = _delete_batch(scope=scope, now=now, size=size, tally=tally, cursor=cursor)
            for row in rows:
                entry = per_source.setdefault(row["source"], SourceFigures(keep_days=scope.keep_days,
                                                                           cutoff=cutoff.isoformat()))
                entry.deleted += 1
                entry.bytes += row["size_bytes"]
            deleted += len(rows)
            run.images_deleted, run.bytes_freed = deleted, sum(entry.bytes for entry in per_source.values())
            run.files_deleted, run.files_failed = tally.deleted, tally.failed
            run.per_source = {name: entry.as_dict() for name, entry in sorted(per_source.items())}
            run.save(update_fields=["images_deleted", "bytes_freed", "files_deleted", "files_failed", "per_source"])
            if read < size:
                break
    run.files_deleted, run.files_failed = tally.deleted, tally.failed
