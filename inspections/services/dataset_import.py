"""Importing a folder-per-class image collection (such as NEU) as labelled images."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from inspections.errors import ApplicationError
from inspections.models import ImageStatus, InspectionImage, LabelSource, Split, image_upload_to
from inspections.services.classes import defect_class_name_normalise, defect_classes_ensure
from inspections.services.dataset_manifest import ManifestRow, manifest_read
from inspections.services.image_validation import ImageFacts, image_facts_from_bytes
from inspections.services.splits import splits_assign_unassigned
from mlcore.io import DatasetError, LabelledFile, scan_class_folders


@dataclass
class ImportReport:
    found: Counter = field(default_factory=Counter)
    added: Counter = field(default_factory=Counter)
    already_present: Counter = field(default_factory=Counter)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (file, the file it duplicates)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    splits: dict[str, int] = field(default_factory=dict)


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


def _read_candidates(root: Path, report: ImportReport, manifest: dict[str, ManifestRow] | None) -> list[_Candidate]:
    candidates: list[_Candidate] = []
    first_seen: dict[str, Path] = {}
    for found in _labelled_files(root, manifest):
        path, label = Path(found.path), defect_class_name_normalise(found.label)
        report.found[label] += 1
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        if sha in first_seen:
            report.duplicates.append((str(path.relative_to(root)), str(first_seen[sha].relative_to(root))))
            continue
        try:
            facts = image_facts_from_bytes(data)
        except ApplicationError as error:
            report.refused.append((str(path.relative_to(root)), error.message))
            continue
        first_seen[sha] = path
        candidates.append(_Candidate(path=path, label=label, data=data, facts=facts))
    return candidates


def dataset_import_folder(*, root: Path, source: str = "import") -> ImportReport:
    """Import ``root/<class>/<image>``; idempotent: images already present are left as they are
    (an unlabelled one gets the folder's label).

    With a manifest (``dataset_manifest``: an export of this or another installation) a new image
    takes its split, source, external id and exclusion from it; the others get a split by the rule.
    """
    report = ImportReport()
    manifest = manifest_read(root=Path(root))
    candidates = _read_candidates(Path(root), report, manifest)
    classes = defect_classes_ensure(names={c.label for c in candidates})

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
