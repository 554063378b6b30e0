"""Importing a folder-per-class image collection (such as NEU) as labelled images."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from inspections.catalog.models import (
    DefectBox,
    DefectClass,
    ImageStatus,
    InspectionImage,
    LabelSource,
    Split,
    image_upload_to,
)
from inspections.catalog.services import box_import, image_validation
from inspections.catalog.services.box_import import BoxReport, BoxSources, ParsedBox
from inspections.catalog.services.boxes import boxes_import
from inspections.catalog.services.classes import defect_class_name_normalise, defect_classes_ensure
from inspections.catalog.services.dataset_manifest import ManifestRow, manifest_read
from inspections.catalog.services.image_validation import ImageFacts
from inspections.catalog.services.splits import splits_assign_unassigned
from inspections.errors import ApplicationError
from mlcore.io import DatasetError, LabelledFile, scan_class_folders


@dataclass
class ImportReport:
    found: Counter = field(default_factory=Counter)
    added: Counter = field(default_factory=Counter)
    already_present: Counter = field(default_factory=Counter)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (file, the file it duplicates)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    splits: dict[str, int] = field(default_factory=dict)
    boxes: BoxReport = field(default_factory=BoxReport)


@dataclass
class _Candidate:
    path: Path
    label: str
    data: bytes
    facts: ImageFacts


def _labelled_files(root: Path, manifest: dict[str, ManifestRow] | None) -> list[LabelledFile]:
    """The dataset's images, found the way ``python -m mlcore train`` finds them, plus the files
    only a manifest names (an export's excluded images)."""
    if not root.is_dir():
        raise ApplicationError(f"{root} is not a folder.", code="not_a_folder")
    try:
        found = scan_class_folders(root)
    except DatasetError:
        found = []
    seen = {Path(f.path).resolve() for f in found}
    for row in (manifest or {}).values():
        path = (root / row.file).resolve()
        if path not in seen and path.is_file() and path.is_relative_to(root.resolve()):
            found.append(LabelledFile(path=str(path), label=row.label))
    if not found:
        raise ApplicationError(f"{root} has no class folders with images (expected one folder per class).",
                               code="no_classes")
    return found


def _shown(path: Path, root: Path) -> str:
    """``path`` as the report shows it: relative to the import folder, however that was given
    (files only a manifest names come resolved, the scanned ones as the folder was spelled)."""
    for base in (root, root.resolve()):
        if path.is_relative_to(base):
            return str(path.relative_to(base))
    return str(path)


def _read_candidates(root: Path, report: ImportReport, manifest: dict[str, ManifestRow] | None) -> list[_Candidate]:
    candidates: list[_Candidate] = []
    first_seen: dict[str, Path] = {}
    for found in _labelled_files(root, manifest):
        path, label = Path(found.path), defect_class_name_normalise(found.label)
        report.found[label] += 1
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        if sha in first_seen:
            report.duplicates.append((_shown(path, root), _shown(first_seen[sha], root)))
            continue
        try:
            facts = image_validation.image_facts_from_bytes(data)
        except ApplicationError as error:
            report.refused.append((_shown(path, root), error.message))
            continue
        first_seen[sha] = path
        candidates.append(_Candidate(path=path, label=label, data=data, facts=facts))
    return candidates


def _read_boxes(root: Path, candidates: list[_Candidate], sources: BoxSources, folder_classes: set[str],
                report: BoxReport) -> tuple[dict[str, list[ParsedBox]], set[str]]:
    """sha256 -> the boxes its annotation file holds (see ``box_import``), and the class names a
    YOLO class list declares; refusals go to ``report``."""
    box_import.check_sources(sources)
    found = {c.facts.sha256: box_import.annotation_file(root, c.path, sources) for c in candidates}
    yolo_classes = box_import.yolo_class_names(root, sources)
    if yolo_classes is None and any(f and f[0] == "yolo" for f in found.values()):
        raise ApplicationError("YOLO box files need their class names: give --yolo-classes a,b,c or put a "
                               "classes.txt (one name per line, line 1 = id 0) in the labels folder.",
                               code="yolo_classes_required")
    known = set(DefectClass.objects.filter(active=True).values_list("name", flat=True)) | folder_classes
    declared = set(yolo_classes or ()) if any(f and f[0] == "yolo" for f in found.values()) else set()
    known |= declared  # a class list given with the boxes declares its classes
    boxes: dict[str, list[ParsedBox]] = {}
    for candidate in candidates:
        kind_and_path = found[candidate.facts.sha256]
        if kind_and_path is None:
            continue
        kind, path = kind_and_path
        report.files += 1
        if kind == "voc":
            boxes[candidate.facts.sha256] = box_import.read_voc(
                path, width=candidate.facts.width, height=candidate.facts.height, known=known, report=report)
        else:
            boxes[candidate.facts.sha256] = box_import.read_yolo(path, classes=yolo_classes, known=known,
                                                                 report=report)
    return boxes, declared


def _store_boxes(images: dict[str, InspectionImage], boxes: dict[str, list[ParsedBox]], declared: set[str],
                 report: BoxReport) -> None:
    """Boxes for the images that have none yet (a re-import adds no second copy); the classes of a
    YOLO class list (``declared``) are created with them."""
    boxed = set(DefectBox.objects.filter(image__in=[i.pk for i in images.values()]).values_list("image_id", flat=True))
    classes = defect_classes_ensure(names={b.label for found in boxes.values() for b in found} | declared)
    rows = []
    for sha, image in images.items():
        found = boxes.get(sha, [])
        if not found:
            report.images_without_boxes += 1
        elif image.pk in boxed:
            report.images_already_boxed += 1
        else:
            rows.extend((image, classes[b.label], b.box) for b in found)
            report.read += len(found)
            report.images_with_boxes += 1
    boxes_import(boxes=rows)


def dataset_import_folder(*, root: Path, source: str = "import", boxes: BoxSources = BoxSources()) -> ImportReport:
    """Import ``root/<class>/<image>``; idempotent: images already present are left as they are
    (an unlabelled one gets the folder's label).

    Defect boxes are read when annotation files come with the images (``box_import``: VOC XML
    or YOLO text, beside them, in a ``labels/`` tree, or in the folders ``boxes`` names); an image
    that already has boxes keeps them. ``report.boxes`` counts what was read and refused.

    With a manifest (``dataset_manifest``: an export of this or another installation) a new image
    takes its split, source, external id and exclusion from it; the others get a split by the rule.
    """
    report = ImportReport()
    manifest = manifest_read(root=Path(root))
    candidates = _read_candidates(Path(root), report, manifest)
    classes = defect_classes_ensure(names={c.label for c in candidates})
    parsed_boxes, declared = _read_boxes(Path(root), candidates, boxes, set(classes), report.boxes)

    existing = {
        image.sha256: image
        for image in InspectionImage.objects.filter(sha256__in=[c.facts.sha256 for c in candidates])
    }
    new = [c for c in candidates if c.facts.sha256 not in existing]
    unlabelled_existing = defaultdict(list)
    for candidate in candidates:
        image = existing.get(candidate.facts.sha256)
        if image is not None:
            report.already_present[candidate.label] += 1
            if image.label_id is None:
                unlabelled_existing[candidate.label].append(image.id)

    stored_names: list[str] = []
    try:
        with transaction.atomic():
            rows = [_store(candidate, classes, source, stored_names, (manifest or {}).get(candidate.facts.sha256))
                    for candidate in new]
            InspectionImage.objects.bulk_create(rows, batch_size=500)
            _store_boxes({**existing, **{row.sha256: row for row in rows}}, parsed_boxes, declared, report.boxes)
            for label, ids in unlabelled_existing.items():
                InspectionImage.objects.filter(id__in=ids, label__isnull=True).update(
                    label=classes[label], label_source=LabelSource.IMPORT
                )
            report.splits = splits_assign_unassigned()
    except BaseException:
        # Nothing half-stored: files written for rows that were rolled back are removed.
        for name in stored_names:
            default_storage.delete(name)
        raise
    report.added.update(c.label for c in new)
    return report


def _store(candidate: _Candidate, classes: dict, source: str, stored_names: list[str],
           listed: ManifestRow | None) -> InspectionImage:
    facts = candidate.facts
    image = InspectionImage(
        sha256=facts.sha256,
        width=facts.width,
        height=facts.height,
        format=facts.format,
        mode=facts.mode,
        size_bytes=facts.size_bytes,
        original_name=candidate.path.name[:255],
        source=source,
        status=ImageStatus.PENDING,
        split=Split.UNASSIGNED,
        label=classes[candidate.label],
        label_source=LabelSource.IMPORT,
    )
    if listed is not None:
        image.split, image.source, image.external_id = listed.split, listed.source, listed.external_id[:200]
        image.original_name = (listed.original_name or image.original_name)[:255]
        image.excluded, image.exclusion_reason = listed.excluded, listed.exclusion_reason[:500]
    name = default_storage.save(image_upload_to(image, f"x.{facts.extension}"), ContentFile(candidate.data))
    stored_names.append(name)
    image.file.name = name
    return image
