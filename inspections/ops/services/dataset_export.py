"""Exporting labelled images as a zip: folder-per-class files plus a manifest (CSV and JSON).

The zip is produced as a stream of chunks (``zipfile`` writing to a sink that is drained after
every write), so the API can send an export of any size without holding it in memory: what is
buffered at any moment is one chunk of one image plus zip headers. ``dataset_export_stream``
exports the labelled images as they are now; ``dataset_snapshot_stream`` a training run's frozen
snapshot, labels and splits as they were when the run started, so any version can be retrained
from the same data.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from django.core.files.storage import default_storage
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from inspections.catalog.models import DefectBox, DefectClass, InspectionImage, LabelSource
from inspections.catalog.services.dataset_manifest import (
    ASSIGNED_SPLITS,
    EXCLUDED_FOLDER,
    FIELDS,
    MANIFEST_CSV,
    MANIFEST_JSON,
    SNAPSHOT_FILE,
)
from inspections.errors import ApplicationError, NotFound
from inspections.registry.models import TrainingRun
from inspections.review.models import Review, ReviewDecision

CHUNK_BYTES = 256 * 1024
COCO_FILE = "annotations/coco.json"
YOLO_FOLDER = "labels"  # labels/classes.txt and labels/<image's path>.txt; import_dataset reads them back
_ALREADY_COMPRESSED = {"PNG", "JPEG", "WEBP"}


@dataclass(frozen=True)
class ExportFilters:
    split: str | None = None
    label: str | None = None


def dataset_export_filters_clean(*, split: str | None, label: str | None) -> ExportFilters:
    """Refuse a split or class that does not exist (400), before anything is streamed."""
    split, label = split or None, label or None
    if split is not None and split not in ASSIGNED_SPLITS:
        raise ApplicationError(f"Unknown split {split!r}; use one of {', '.join(ASSIGNED_SPLITS)}.",
                               code="invalid", details={"split": [f"not one of {', '.join(ASSIGNED_SPLITS)}"]})
    if label is not None and not DefectClass.objects.filter(name=label).exists():
        raise ApplicationError(f"There is no defect class {label!r}.", code="invalid",
                               details={"label": ["no such class"]})
    return ExportFilters(split=split, label=label)


class _DrainedSink:
    """A write-only, unseekable file for ``zipfile``: it keeps what was written until drained."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def _current_rows(filters: ExportFilters) -> list[dict]:
    images = InspectionImage.objects.filter(label__isnull=False)
    if filters.split:
        images = images.filter(split=filters.split)
    if filters.label:
        images = images.filter(label__name=filters.label)
    latest = Review.objects.filter(image=OuterRef("pk"), decision=ReviewDecision.LABEL).order_by("-created_at", "-id")
    return list(images.order_by("label__name", "id").annotate(
        label_name=F("label__name"),
        labelled_by=Subquery(latest.values("reviewer__username")[:1]),
        labelled_at=Coalesce(Subquery(latest.values("created_at")[:1]), F("created_at")),
    ).values("id", "sha256", "file", "format", "created_at", "label_name", "split", "source", "external_id",
             "original_name", "label_source", "label_version", "labelled_by", "labelled_at", "excluded",
             "exclusion_reason", "width", "height"))


def _snapshot_rows(run: TrainingRun) -> list[dict]:
    cutoff = run.snapshot.created_at
    latest = Review.objects.filter(image=OuterRef("image_id"), decision=ReviewDecision.LABEL,
                                   created_at__lte=cutoff).order_by("-created_at", "-id")
    # label_version counts decisions; every decision is one review, so the version then is a count.
    rows = run.snapshot.items.order_by("label__name", "image_id").annotate(
        label_name=F("label__name"), sha256=F("image__sha256"), file=F("image__file"), format=F("image__format"),
        created_at=F("image__created_at"), source=F("image__source"), external_id=F("image__external_id"),
        original_name=F("image__original_name"),
        labelled_by=Subquery(latest.values("reviewer__username")[:1]),
        labelled_at=Coalesce(Subquery(latest.values("created_at")[:1]), F("image__created_at")),
        label_version=Count("image__reviews", filter=Q(image__reviews__created_at__lte=cutoff)),
    ).values("image_id", "sha256", "file", "format", "created_at", "label_name", "split", "source", "external_id",
             "original_name", "labelled_by", "labelled_at", "label_version")
    return [{**row, "id": row.pop("image_id"), "excluded": False, "exclusion_reason": "",
             "label_source": LabelSource.REVIEW if row["labelled_by"] else LabelSource.IMPORT} for row in rows]


def _archive_path(row: dict) -> str:
    extension = row["file"].rsplit(".", 1)[-1] if "." in row["file"] else "bin"
    folder = f"{EXCLUDED_FOLDER}/{row['label_name']}" if row["excluded"] else row["label_name"]
    return f"{folder}/{row['sha256']}.{extension}"


def _manifest_record(row: dict) -> dict:
    return {
        "file": _archive_path(row), "sha256": row["sha256"], "label": row["label_name"], "split": row["split"],
        "source": row["source"], "external_id": row["external_id"], "original_name": row["original_name"],
        "label_source": str(row["label_source"]), "label_version": row["label_version"],
        "labelled_by": row["labelled_by"] or "", "labelled_at": row["labelled_at"].isoformat(),
        "excluded": bool(row["excluded"]), "exclusion_reason": row["exclusion_reason"],
    }


def _counts(records: list[dict]) -> dict:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for record in records:
        counts[record["label"]][record["split"]] += 1
    return {label: dict(splits) for label, splits in sorted(counts.items())}


def _manifest_csv(records: list[dict]) -> bytes:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({**record, "excluded": "true" if record["excluded"] else "false"})
    return text.getvalue().encode()


def _zip_stream(rows: list[dict], *, about: dict, extra: dict[str, bytes], chunk_bytes: int) -> Iterator[bytes]:
    records = [_manifest_record(row) for row in rows]
    manifest = {**about, "exported_at": timezone.now().isoformat(), "image_count": len(records),
                "counts": _counts(records), "images": records}
    sink = _DrainedSink()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:
        documents = {MANIFEST_CSV: _manifest_csv(records),
                     MANIFEST_JSON: json.dumps(manifest, indent=1).encode(), **extra}
        for name, content in documents.items():
            archive.writestr(name, content)
            yield sink.drain()
        for row, record in zip(rows, records):
            info = zipfile.ZipInfo(record["file"], date_time=row["created_at"].timetuple()[:6])
            info.compress_type = zipfile.ZIP_STORED if row["format"] in _ALREADY_COMPRESSED else zipfile.ZIP_DEFLATED
            with default_storage.open(row["file"], "rb") as source, archive.open(info, "w") as entry:
                for chunk in iter(lambda: source.read(chunk_bytes), b""):
                    entry.write(chunk)
                    yield sink.drain()
            yield sink.drain()
    yield sink.drain()


def _box_documents(rows: list[dict]) -> dict[str, bytes]:
    """The exported images' defect boxes twice over: ``annotations/coco.json`` (COCO: bbox in
    pixels ``[x, y, width, height]``, category ids 1..n) and YOLO text (``labels/classes.txt``,
    one name per line, line 1 = id 0; ``labels/<image path>.txt``, ``id cx cy w h`` in fractions)."""
    boxes = defaultdict(list)
    for box in DefectBox.objects.filter(image_id__in=[row["id"] for row in rows], deleted_at__isnull=True) \
            .select_related("label").order_by("image_id", "id").iterator(chunk_size=2000):
        boxes[box.image_id].append(box)
    names = sorted(set(DefectClass.objects.values_list("name", flat=True)))
    ids = {name: index for index, name in enumerate(names)}
    coco = {"info": {"description": "steelqc defect boxes", "date_created": timezone.now().isoformat()},
            "images": [], "annotations": [],
            "categories": [{"id": ids[name] + 1, "name": name, "supercategory": "defect"} for name in names]}
    documents = {f"{YOLO_FOLDER}/classes.txt": "".join(f"{name}\n" for name in names).encode()}
    for row in rows:
        path = _archive_path(row)
        coco["images"].append({"id": row["id"], "file_name": path, "width": row["width"], "height": row["height"]})
        lines = []
        for box in boxes.get(row["id"], []):
            w, h = row["width"], row["height"]
            coco["annotations"].append({
                "id": box.pk, "image_id": row["id"], "category_id": ids[box.label.name] + 1, "iscrowd": 0,
                "bbox": [round(box.x0 * w, 3), round(box.y0 * h, 3), round((box.x1 - box.x0) * w, 3),
                         round((box.y1 - box.y0) * h, 3)],
                "area": round((box.x1 - box.x0) * w * (box.y1 - box.y0) * h, 3), "source": box.source,
            })
            lines.append(f"{ids[box.label.name]} {(box.x0 + box.x1) / 2:.8f} {(box.y0 + box.y1) / 2:.8f} "
                         f"{box.x1 - box.x0:.8f} {box.y1 - box.y0:.8f}\n")
        if lines:
            documents[f"{YOLO_FOLDER}/{path.rsplit('.', 1)[0]}.txt"] = "".join(lines).encode()
    return {COCO_FILE: json.dumps(coco, indent=1).encode(), **documents}


def dataset_export_stream(*, filters: ExportFilters = ExportFilters(),
                          chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The labelled images as they are now (excluded ones flagged, under ``.excluded/``), with
    their defect boxes as COCO JSON and YOLO text."""
    rows = _current_rows(filters)
    about = {"kind": "labelled images", "filters": {"split": filters.split, "label": filters.label}}
    return _zip_stream(rows, about=about, extra=_box_documents(rows), chunk_bytes=chunk_bytes)


def dataset_snapshot_stream(*, run: TrainingRun, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The (image, label, split) triples ``run`` trained on, frozen when it was started."""
    if run.snapshot_id is None:
        raise NotFound(f"Training run {run.pk} has no frozen snapshot.", code="not_found")
    snapshot = run.snapshot
    version = run.model_version
    facts = {
        "training_run": run.pk, "snapshot": snapshot.pk, "frozen_at": snapshot.created_at.isoformat(),
        "image_count": snapshot.image_count, "counts": snapshot.counts,
        "checksum": snapshot.checksum, "checksum_rule": "sha256 over 'sha256:label:split\\n' lines in image id order",
        "parameters": run.parameters, "model_version": version.name if version else None,
    }
    about = {"kind": "training snapshot", "training_run": run.pk, "snapshot": snapshot.pk}
    return _zip_stream(_snapshot_rows(run), about=about,
                       extra={SNAPSHOT_FILE: json.dumps(facts, indent=1).encode()}, chunk_bytes=chunk_bytes)


def dataset_export_file_name(*, filters: ExportFilters = ExportFilters(), run: TrainingRun | None = None) -> str:
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    if run is not None:
        return f"steelqc-training-run-{run.pk}-snapshot.zip"
    parts = ["steelqc-dataset", *(p for p in (filters.label, filters.split) if p), stamp]
    return "-".join(parts) + ".zip"
