"""The manifest of an exported dataset: one home for its file names and columns, written by
``dataset_export`` and read back by ``dataset_import`` (so an export re-imports with its splits).

An export is folder-per-class (``<label>/<sha256>.<ext>``) so ``import_dataset`` and
``python -m mlcore train`` read it as it is; excluded images sit under ``.excluded/<label>/``,
a folder both skip, and only the manifest brings them back.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from inspections.catalog.models import Split
from inspections.errors import ApplicationError

MANIFEST_CSV = "manifest.csv"
MANIFEST_JSON = "manifest.json"
SNAPSHOT_FILE = "snapshot.json"  # a training run's frozen snapshot: its id, checksum, counts, parameters
EXCLUDED_FOLDER = ".excluded"
FIELDS = ("file", "sha256", "label", "split", "source", "external_id", "original_name", "label_source",
          "label_version", "labelled_by", "labelled_at", "excluded", "exclusion_reason")
ASSIGNED_SPLITS = (Split.TRAIN, Split.VAL, Split.TEST)


@dataclass(frozen=True)
class ManifestRow:
    file: str
    sha256: str
    label: str
    split: str
    source: str
    external_id: str
    original_name: str
    excluded: bool
    exclusion_reason: str


def manifest_read(*, root: Path) -> dict[str, ManifestRow] | None:
    """``{sha256: row}`` from ``root/manifest.csv``; None when the folder has no manifest."""
    path = Path(root) / MANIFEST_CSV
    if not path.is_file():
        return None
    rows: dict[str, ManifestRow] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"file", "sha256", "label", "split"} - set(reader.fieldnames or ())
        if missing:
            raise ApplicationError(f"{path} lacks the columns {', '.join(sorted(missing))}.", code="invalid_manifest")
        for line, record in enumerate(reader, start=2):
            split = record["split"]
            if split not in ASSIGNED_SPLITS:
                raise ApplicationError(f"{path}, line {line}: split {split!r} is not one of "
                                       f"{', '.join(ASSIGNED_SPLITS)}.", code="invalid_manifest")
            rows[record["sha256"]] = ManifestRow(
                file=record["file"], sha256=record["sha256"], label=record["label"], split=split,
                source=record.get("source") or "", external_id=record.get("external_id") or "",
                original_name=record.get("original_name") or "",
                excluded=(record.get("excluded") or "").lower() == "true",
                exclusion_reason=record.get("exclusion_reason") or "",
            )
    return rows
