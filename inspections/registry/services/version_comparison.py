"""Two model versions side by side on the same labelled images.

The images: the frozen test split of the newer version's training run, plus labelled images
that neither version's training run saw (not in either snapshot; for a version registered
without a run, images uploaded after it was registered), excluded images left out. Neither
version stores per-image test predictions, so both versions' predictions are computed by an
inference-queue task and kept in the pair's ``VersionComparison`` row with a fingerprint of the
image set: a new label or a newly labelled image starts the row over.

``version_comparison`` answers at once with what is stored (``ready`` or ``failed``), or
queues the computation (after its row is committed) and answers ``computing``; a failed one is
queued again only when asked for by ``version_comparison_retry``. The metrics themselves are
``mlcore.comparison.compare`` over the stored predictions, in the order the caller asked for.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from inspections.catalog.models import InspectionImage, Split
from inspections.catalog.services.stored_files import local_copies
from inspections.errors import ApplicationError, Conflict, Unavailable
from inspections.queueing import version_comparison_enqueue
from inspections.registry.models import (
    DatasetSnapshot,
    ModelVersion,
    ModelVersionKind,
    TrainingRun,
    VersionComparison,
    VersionComparisonStatus,
)
from inspections.registry.services.classifiers import version_predict_files

logger = logging.getLogger(__name__)

# A queued computation that has left no result after this long is queued again (worker lost).
REQUEUE_AFTER_S = 30 * 60
TEST_SPLIT, NEWER_LABELLED = "test", "newer"


@dataclass(frozen=True)
class ComparisonImage:
    image_id: int
    label: str
    source: str  # TEST_SPLIT or NEWER_LABELLED
    file_name: str


@dataclass(frozen=True)
class ImageSet:
    images: list[ComparisonImage]
    training_run_id: int | None
    fingerprint: str

    def summary(self) -> dict:
        test = sum(1 for image in self.images if image.source == TEST_SPLIT)
        return {"test_split_images": test, "newer_labelled_images": len(self.images) - test,
                "total": len(self.images), "training_run": self.training_run_id, "fingerprint": self.fingerprint}


def comparison_versions_check(*, first: ModelVersion, second: ModelVersion) -> None:
    if first.pk == second.pk:
        raise ApplicationError("Compare two different versions.", code="same_version",
                               details={"a": first.pk, "b": second.pk})
    anomaly = [version.name for version in (first, second) if version.kind == ModelVersionKind.ANOMALY]
    if anomaly:
        raise ApplicationError(f"{' and '.join(anomaly)} {'is an anomaly model' if len(anomaly) == 1 else 'are anomaly models'}: "
                               "a comparison is of two classifiers' answers; an anomaly model's gate compares it with "
                               "the active one (its version page).", code="not_a_classifier",
                               details={"a": first.pk, "b": second.pk})


def _ordered(first: ModelVersion, second: ModelVersion) -> tuple[ModelVersion, ModelVersion]:
    return (first, second) if first.number < second.number else (second, first)


def _snapshot_of(version: ModelVersion) -> tuple[int | None, DatasetSnapshot | None]:
    run = TrainingRun.objects.filter(model_version=version).select_related("snapshot").first()
    return (run.pk, run.snapshot) if run else (None, None)


def comparison_image_set(*, first: ModelVersion, second: ModelVersion) -> ImageSet:
    """The images both versions are scored on (the same whichever order they are given in)."""
    older, newer = _ordered(first, second)
    run_id, newer_snapshot = _snapshot_of(newer)
    _, older_snapshot = _snapshot_of(older)
    images: list[ComparisonImage] = []
    if newer_snapshot is not None:
        items = (newer_snapshot.items.filter(split=Split.TEST, image__excluded=False)
                 .select_related("image", "label").order_by("image_id"))
        images += [ComparisonImage(item.image_id, item.label.name, TEST_SPLIT, item.image.file.name) for item in items]
    newer_images = InspectionImage.objects.filter(label__isnull=False, excluded=False).select_related("label")
    for version, snapshot in ((older, older_snapshot), (newer, newer_snapshot)):
        if snapshot is not None:
            newer_images = newer_images.exclude(pk__in=snapshot.items.values("image_id"))
        else:
            newer_images = newer_images.filter(created_at__gt=version.created_at)
    images += [ComparisonImage(image.pk, image.label.name, NEWER_LABELLED, image.file.name)
               for image in newer_images.order_by("pk")]
    digest = hashlib.sha256()
    for image in images:
        digest.update(f"{image.image_id}\t{image.label}\t{image.source}\n".encode())
    return ImageSet(images=images, training_run_id=run_id, fingerprint=digest.hexdigest())


def _api_status(comparison: VersionComparison) -> str:
    return {VersionComparisonStatus.DONE: "ready", VersionComparisonStatus.FAILED: "failed"}.get(
        comparison.status, "computing")


def _stored(comparison: VersionComparison) -> dict:
    """The row as ``version_comparison`` answers it (the shape ``comparison_report`` reads)."""
    stored = {"status": _api_status(comparison)}
    if comparison.status == VersionComparisonStatus.DONE:
        stored.update(older=comparison.older_id, newer=comparison.newer_id, images=comparison.predictions,
                      computed_at=comparison.finished_at.isoformat())
    elif comparison.status == VersionComparisonStatus.FAILED:
        stored.update(error=comparison.error, computed_at=comparison.finished_at.isoformat())
    return stored


def _needs_message(comparison: VersionComparison, now) -> bool:
    """Whether a queued or running row has no live message: never sent (the broker was down), or
    sent so long ago that its worker must be lost."""
    if comparison.status not in (VersionComparisonStatus.QUEUED, VersionComparisonStatus.RUNNING):
        return False
    return comparison.queued_at is None or (now - comparison.queued_at).total_seconds() > REQUEUE_AFTER_S


def _start_over(comparison: VersionComparison, *, fingerprint: str) -> None:
    comparison.fingerprint = fingerprint
    comparison.status = VersionComparisonStatus.QUEUED
    comparison.predictions, comparison.error = None, ""
    comparison.started_at = comparison.finished_at = None


def _queue_after_commit(comparison: VersionComparison, *, now) -> list[bool]:
    """Mark the row sent and send its message once the row is committed; returns a list that
    holds whether the send worked once it has been tried. A send that fails empties
    ``queued_at`` again, so the next request queues it (nothing is left waiting on nothing)."""
    comparison.queued_at = now
    comparison.save()
    pk, older_id, newer_id, fingerprint = comparison.pk, comparison.older_id, comparison.newer_id, comparison.fingerprint
    outcome: list[bool] = []

    def send() -> None:
        sent = version_comparison_enqueue(first_id=older_id, second_id=newer_id, fingerprint=fingerprint)
        if not sent:
            VersionComparison.objects.filter(pk=pk, fingerprint=fingerprint, queued_at=now).update(queued_at=None)
        outcome.append(sent)

    transaction.on_commit(send)
    return outcome


def _raise_if_not_queued(outcome: list[bool]) -> None:
    # Outside a caller's transaction the message has been tried by now and a broker that is down
    # is answered at once; inside one it is tried at the caller's commit.
    if outcome == [False]:
        raise Unavailable("The comparison could not be queued; try again in a moment.",
                               code="queue_unavailable")


def version_comparison(*, first: ModelVersion, second: ModelVersion) -> tuple[dict, ImageSet]:
    """The stored predictions of both versions on the current image set, or a queued computation.

    Returns (stored, image set); ``stored["status"]`` is ``ready`` (with ``images``: one row per
    image, the older version's prediction first), ``failed`` (with ``error``) or ``computing``.
    Concurrent requests for one pair find one row (its unique key) and queue one message.
    """
    comparison_versions_check(first=first, second=second)
    image_set = comparison_image_set(first=first, second=second)
    older, newer = _ordered(first, second)
    now = timezone.now()
    outcome: list[bool] = []
    with transaction.atomic():
        comparison, created = VersionComparison.objects.select_for_update().get_or_create(
            older=older, newer=newer, defaults={"fingerprint": image_set.fingerprint})
        if comparison.fingerprint != image_set.fingerprint:
            _start_over(comparison, fingerprint=image_set.fingerprint)
            created = True
        if created or _needs_message(comparison, now):
            outcome = _queue_after_commit(comparison, now=now)
    _raise_if_not_queued(outcome)
    return _stored(comparison), image_set


def version_comparison_retry(*, first: ModelVersion, second: ModelVersion) -> tuple[dict, ImageSet]:
    """Queue a failed comparison again (after its artefact or images were fixed); the same answer
    as ``version_comparison``. Refused while the comparison is not failed."""
    comparison_versions_check(first=first, second=second)
    image_set = comparison_image_set(first=first, second=second)
    older, newer = _ordered(first, second)
    with transaction.atomic():
        comparison = VersionComparison.objects.select_for_update().filter(older=older, newer=newer).first()
        if comparison is None or comparison.status != VersionComparisonStatus.FAILED:
            raise Conflict(f"Only a failed comparison is asked for again; this one is "
                                   f"{_api_status(comparison) if comparison else 'not asked for yet'}.",
                                   code="comparison_not_failed")
        _start_over(comparison, fingerprint=image_set.fingerprint)
        outcome = _queue_after_commit(comparison, now=timezone.now())
    _raise_if_not_queued(outcome)
    return _stored(comparison), image_set


def _claim(*, older: ModelVersion, newer: ModelVersion, fingerprint: str) -> str | None:
    """Mark the row running for this message; otherwise why not: ``stale`` (the row was started
    over for another image set) or ``duplicate`` (already answered)."""
    with transaction.atomic():
        comparison = (VersionComparison.objects.select_for_update()
                      .filter(older=older, newer=newer, fingerprint=fingerprint).first())
        if comparison is None:
            return "stale"
        if comparison.status in (VersionComparisonStatus.DONE, VersionComparisonStatus.FAILED):
            return "duplicate"
        comparison.status, comparison.started_at = VersionComparisonStatus.RUNNING, timezone.now()
        comparison.save(update_fields=["status", "started_at"])
    return None


def _finish(*, older: ModelVersion, newer: ModelVersion, fingerprint: str, **fields) -> bool:
    """Store the outcome unless the row was started over for another image set meanwhile."""
    return bool(VersionComparison.objects.filter(
        older=older, newer=newer, fingerprint=fingerprint, status=VersionComparisonStatus.RUNNING,
    ).update(finished_at=timezone.now(), **fields))


def _predictions(version: ModelVersion, paths: list[Path]) -> list[tuple[str, float]]:
    results = version_predict_files(version=version, paths=paths).results
    return [(result.label, float(result.confidence)) for result in results]


def version_comparison_compute(*, first_id: int, second_id: int, fingerprint: str) -> str:
    """The worker's part: predict the image set with both versions and store the rows.

    Does nothing when the image set changed since it was queued (the next request queues the
    new one) or the message was already answered. Returns the status stored, ``stale`` or
    ``duplicate``."""
    versions = {v.pk: v for v in ModelVersion.objects.filter(pk__in=[first_id, second_id])}
    if len(versions) != 2:
        logger.info("comparison of versions %s and %s: a version is gone", first_id, second_id)
        return "stale"
    older, newer = _ordered(versions[first_id], versions[second_id])
    image_set = comparison_image_set(first=older, second=newer)
    if image_set.fingerprint != fingerprint:
        return "stale"
    if (refused := _claim(older=older, newer=newer, fingerprint=fingerprint)) is not None:
        return refused
    try:
        with tempfile.TemporaryDirectory(prefix="steelqc-compare-") as folder:
            by_name = local_copies(names=[image.file_name for image in image_set.images], folder=Path(folder))
            paths = [by_name[image.file_name] for image in image_set.images]
            older_predictions = _predictions(older, paths) if paths else []
            newer_predictions = _predictions(newer, paths) if paths else []
    except Exception as error:  # a broken artefact or image: say so on the page instead of computing forever
        logger.exception("comparing v%s with v%s failed", older.number, newer.number)
        stored = _finish(older=older, newer=newer, fingerprint=fingerprint, status=VersionComparisonStatus.FAILED,
                         error=f"{type(error).__name__}: {error}"[:500])
        return "failed" if stored else "stale"
    rows = [[image.image_id, image.label, image.source, *older_p, *newer_p]
            for image, older_p, newer_p in zip(image_set.images, older_predictions, newer_predictions)]
    stored = _finish(older=older, newer=newer, fingerprint=fingerprint, status=VersionComparisonStatus.DONE,
                     predictions=rows)
    return "ready" if stored else "stale"


def comparison_report(*, first: ModelVersion, second: ModelVersion, stored: dict) -> dict:
    """``mlcore.comparison.compare`` of the stored rows with ``first`` as the first version
    (deltas are ``second - first``); disagreements as rows of image, label and both predictions."""
    from mlcore.comparison import compare

    rows = stored["images"]
    first_is_older = first.pk == stored["older"]
    first_column, second_column = (3, 5) if first_is_older else (5, 3)
    labels = [row[1] for row in rows]
    result = compare(
        labels=labels, first_predictions=[row[first_column] for row in rows], first_classes=first.classes,
        second_predictions=[row[second_column] for row in rows], second_classes=second.classes,
    )
    result["disagreements"] = [
        {"image": rows[i][0], "true_label": rows[i][1], "source": rows[i][2],
         "first": {"label": rows[i][first_column], "confidence": rows[i][first_column + 1]},
         "second": {"label": rows[i][second_column], "confidence": rows[i][second_column + 1]}}
        for i in result["disagreements"]
    ]
    result["computed_at"] = stored.get("computed_at")
    return result


def _version_facts(version: ModelVersion) -> dict:
    return {"id": version.pk, "number": version.number, "name": version.name, "status": version.status,
            "classes": version.classes}


def comparison_answer(*, first: ModelVersion, second: ModelVersion, page: int, page_size: int) -> dict:
    """The JSON-ready comparison the API answers and the page draws; one page of disagreements,
    each with the path of its review view."""
    stored, image_set = version_comparison(first=first, second=second)
    body = {"status": stored["status"], "first": _version_facts(first), "second": _version_facts(second),
            "image_set": image_set.summary()}
    if stored["status"] == "computing":
        return body
    if stored["status"] == "failed":
        body["error"] = stored.get("error", "")
        return body
    report = comparison_report(first=first, second=second, stored=stored)
    rows = report.pop("disagreements")
    shown = rows[(page - 1) * page_size:page * page_size]
    for row in shown:
        row["review_url"] = reverse("inspections:review-image", args=[row["image"]])
    body.update(report)
    body["per_class"] = [{"name": name, **values} for name, values in report["per_class"].items()]
    body["disagreements"] = {"count": len(rows), "page": page, "page_size": page_size, "results": shown}
    return body
