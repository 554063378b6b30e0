"""Two model versions side by side on the same labelled images.

The images: the frozen test split of the newer version's training run, plus labelled images
that neither version's training run saw (not in either snapshot; for a version registered
without a run, images uploaded after it was registered), excluded images left out. Neither
version stores per-image test predictions, so both versions' predictions are computed by an
inference-queue task and kept as a JSON file in storage, keyed by the two versions and a
fingerprint of the image set: a new label or a newly labelled image means a new computation.

``version_comparison`` answers at once with what is stored (``ready`` or ``failed``), or
queues the computation and answers ``computing``. The metrics themselves are
``mlcore.comparison.compare`` over the stored predictions, in the order the caller asked for.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from inspections.catalog.models import InspectionImage, Split
from inspections.catalog.services.stored_files import local_copies
from inspections.errors import ApplicationError
from inspections.queueing import version_comparison_enqueue
from inspections.registry.models import DatasetSnapshot, ModelVersion, TrainingRun
from inspections.registry.services.artefact_storage import artefact_local_dir

logger = logging.getLogger(__name__)

STORAGE_FOLDER = "comparisons"
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


def _storage_name(older: ModelVersion, newer: ModelVersion, fingerprint: str, suffix: str) -> str:
    return f"{STORAGE_FOLDER}/v{older.number}-v{newer.number}/{fingerprint}.{suffix}"


def _read_json(name: str) -> dict | None:
    try:
        with default_storage.open(name, "rb") as handle:
            return json.loads(handle.read())
    except (FileNotFoundError, OSError, ValueError):
        return None


def _write_json(name: str, data: dict) -> None:
    if default_storage.exists(name):
        default_storage.delete(name)
    default_storage.save(name, ContentFile(json.dumps(data).encode()))


def version_comparison(*, first: ModelVersion, second: ModelVersion) -> tuple[dict, ImageSet]:
    """The stored predictions of both versions on the current image set, or a queued computation.

    Returns (stored, image set); ``stored["status"]`` is ``ready`` (with ``images``: one row per
    image, the older version's prediction first), ``failed`` (with ``error``) or ``computing``.
    """
    comparison_versions_check(first=first, second=second)
    image_set = comparison_image_set(first=first, second=second)
    older, newer = _ordered(first, second)
    stored = _read_json(_storage_name(older, newer, image_set.fingerprint, "json"))
    if stored is not None:
        return stored, image_set
    queued_name = _storage_name(older, newer, image_set.fingerprint, "queued")
    queued = _read_json(queued_name)
    if queued is None or time.time() - queued.get("at", 0) > REQUEUE_AFTER_S:
        _write_json(queued_name, {"at": time.time()})
        if not version_comparison_enqueue(first_id=older.pk, second_id=newer.pk, fingerprint=image_set.fingerprint):
            default_storage.delete(queued_name)
            raise ApplicationError("The comparison could not be queued; try again in a moment.",
                                   code="queue_unavailable", status_code=503)
    return {"status": "computing"}, image_set


def _predict(version: ModelVersion, paths: list[Path]) -> list[tuple[str, float]]:
    from mlcore.inference import Classifier

    classifier = Classifier.load(artefact_local_dir(prefix=version.artifact_path))
    return [(result.label, float(result.confidence)) for result in classifier.predict_files(paths)]


def version_comparison_compute(*, first_id: int, second_id: int, fingerprint: str) -> str:
    """The worker's part: predict the image set with both versions and store the rows.

    Does nothing when the image set changed since it was queued (the next request queues the
    new one). Returns the status stored (or ``stale``)."""
    versions = {v.pk: v for v in ModelVersion.objects.filter(pk__in=[first_id, second_id])}
    if len(versions) != 2:
        return "stale"
    older, newer = _ordered(versions[first_id], versions[second_id])
    image_set = comparison_image_set(first=older, second=newer)
    if image_set.fingerprint != fingerprint:
        default_storage.delete(_storage_name(older, newer, fingerprint, "queued"))
        return "stale"
    name = _storage_name(older, newer, fingerprint, "json")
    try:
        with tempfile.TemporaryDirectory(prefix="steelqc-compare-") as folder:
            by_name = local_copies(names=[image.file_name for image in image_set.images], folder=Path(folder))
            paths = [by_name[image.file_name] for image in image_set.images]
            older_predictions = _predict(older, paths) if paths else []
            newer_predictions = _predict(newer, paths) if paths else []
    except Exception as error:  # a broken artefact or image: say so on the page instead of computing forever
        logger.exception("comparing v%s with v%s failed", older.number, newer.number)
        _write_json(name, {"status": "failed", "error": f"{type(error).__name__}: {error}"[:500],
                           "computed_at": timezone.now().isoformat()})
        return "failed"
    rows = [[image.image_id, image.label, image.source, *older_p, *newer_p]
            for image, older_p, newer_p in zip(image_set.images, older_predictions, newer_predictions)]
    _write_json(name, {"status": "ready", "computed_at": timezone.now().isoformat(),
                       "older": older.pk, "newer": newer.pk, "images": rows})
    default_storage.delete(_storage_name(older, newer, fingerprint, "queued"))
    return "ready"


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
