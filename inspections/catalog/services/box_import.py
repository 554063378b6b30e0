"""Reading defect boxes that come with a dataset: Pascal VOC XML (the NEU-DET layout) and YOLO
text (``class cx cy w h`` in fractions, the CR7-DET layout and the dataset export's).

Where the files are: given explicitly (``voc_dir`` / ``yolo_dir``), or found on their own beside
each image (``crazing/Cr_12.xml``/``.txt``), in a ``labels/`` tree inside the imported folder
mirroring it (the dataset export), or in a sibling ``labels/`` tree when the imported folder is
called ``images`` (``cr7-det/images`` + ``cr7-det/labels``). YOLO class ids are named by
``yolo_classes``, by a ``classes.txt`` (one name per line, line 0 = id 0) in the labels folder, or,
in a labels tree that mirrors the class folders, by the folder each id mostly appears in.

Every box is checked; a refused one is counted with its reason and the others are kept.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from inspections.catalog.services.boxes import Box, BoxRefused, box_from_fractions
from inspections.catalog.services.classes import defect_class_name_normalise
from inspections.errors import ApplicationError
from mlcore.annotations import (
    CLASSES_FILE,
    MALFORMED_FILE,
    AnnotationRefused,
    ReadBox,
    Refusal,
    infer_yolo_class_names,
    neu_det_stem,
    read_class_list,
    voc_boxes,
    yolo_boxes,
)

LABELS_FOLDER = "labels"
REASONS = {
    "outside_image": "outside the image",
    "unknown_class": "unknown class",
    "bad_numbers": "bad numbers",
    MALFORMED_FILE: "malformed file",
}


@dataclass(frozen=True)
class BoxSources:
    """Where to look for annotation files besides the automatic places."""

    voc_dir: Path | None = None
    yolo_dir: Path | None = None
    yolo_classes: tuple[str, ...] | None = None


@dataclass
class BoxReport:
    read: int = 0
    refused: Counter = field(default_factory=Counter)  # reason -> boxes (or files, for malformed_file)
    refused_examples: list[tuple[str, str]] = field(default_factory=list)  # (file, why), the first few
    files: int = 0
    images_with_boxes: int = 0
    images_without_boxes: int = 0
    images_already_boxed: int = 0  # already had boxes: left as they are (a re-import adds none)

    def refuse(self, path: Path, reason: str, message: str, count: int = 1) -> None:
        self.refused[reason] += count
        if len(self.refused_examples) < 50:
            self.refused_examples.append((str(path), message))


@dataclass(frozen=True)
class ParsedBox:
    label: str
    box: Box


def _labels_roots(root: Path, sources: BoxSources) -> list[Path]:
    roots = [root / LABELS_FOLDER]
    if root.name == "images":
        roots.append(root.parent / LABELS_FOLDER)
    if sources.yolo_dir is not None:
        roots.insert(0, sources.yolo_dir)
    return roots


def annotation_file(root: Path, image: Path, sources: BoxSources) -> tuple[str, Path] | None:
    """``("voc" | "yolo", path)`` of the annotation file that belongs to ``image``, if any."""
    try:
        relative = image.relative_to(root)
    except ValueError:  # a manifest's files come resolved, the folder maybe not
        relative = image.resolve().relative_to(root.resolve())
    voc_candidates = [image.with_suffix(".xml")]
    if sources.voc_dir is not None:
        neu = neu_det_stem(image)
        voc_candidates = [sources.voc_dir / relative.with_suffix(".xml"), sources.voc_dir / f"{image.stem}.xml",
                          *([sources.voc_dir / f"{neu}.xml"] if neu else []), *voc_candidates]
    for candidate in voc_candidates:
        if candidate.is_file():
            return "voc", candidate
    yolo_candidates = [image.with_suffix(".txt")]
    for labels in _labels_roots(root, sources):
        yolo_candidates[:0] = [labels / relative.with_suffix(".txt"), labels / f"{image.stem}.txt"]
    for candidate in yolo_candidates:
        if candidate.is_file():
            return "yolo", candidate
    return None


def yolo_class_names(root: Path, sources: BoxSources) -> list[str] | None:
    """The YOLO id -> class name list: given, or from the first ``classes.txt`` found."""
    if sources.yolo_classes:
        return [defect_class_name_normalise(name) for name in sources.yolo_classes]
    for folder in _labels_roots(root, sources):
        path = folder / CLASSES_FILE
        if path.is_file():
            return [defect_class_name_normalise(name) for name in read_class_list(path)]
    # A labels tree that mirrors the class folders (cr7-det's) names its ids by where they occur.
    for folder in _labels_roots(root, sources):
        inferred = infer_yolo_class_names(folder) if folder.is_dir() else None
        if inferred:
            return [defect_class_name_normalise(name) for name in inferred]
    return None


def read_voc(path: Path, *, width: int, height: int, known: set[str], report: BoxReport) -> list[ParsedBox]:
    """The boxes of a Pascal VOC file (``mlcore.annotations.voc_boxes``) on an image of this size
    that pass the checks; each refused one goes to ``report`` with its reason."""
    return _checked(path, lambda: voc_boxes(path, size=(width, height)), classes=None, known=known, report=report)


def read_yolo(path: Path, *, classes: list[str] | None, known: set[str], report: BoxReport) -> list[ParsedBox]:
    """The boxes of a YOLO file (``mlcore.annotations.yolo_boxes``), ids named by ``classes``,
    that pass the checks; each refused one goes to ``report`` with its reason."""
    return _checked(path, lambda: yolo_boxes(path), classes=classes, known=known, report=report)


def _checked(path: Path, read, *, classes: list[str] | None, known: set[str], report: BoxReport) -> list[ParsedBox]:
    try:
        found = read()
    except AnnotationRefused as refused:
        report.refuse(path, MALFORMED_FILE, str(refused))
        return []
    boxes = []
    for entry in found:
        if isinstance(entry, Refusal):
            report.refuse(Path(entry.where), entry.reason, entry.message)
            continue
        try:
            box = box_from_fractions(list(entry.corners))
        except BoxRefused as refused:
            report.refuse(Path(entry.where), refused.reason, str(refused))
            continue
        label = _label(entry, classes)
        if label not in known:
            report.refuse(Path(entry.where), "unknown_class", f"unknown class {label!r}"
                          if isinstance(entry.label, str) else f"unknown class id {entry.label}")
            continue
        boxes.append(ParsedBox(label=label, box=box))
    return boxes


def _label(entry: ReadBox, classes: list[str] | None) -> str | None:
    """A VOC box's class name, normalised; a YOLO box's by its id (None for an id with no name)."""
    if isinstance(entry.label, str):
        return defect_class_name_normalise(entry.label)
    return classes[entry.label] if classes is not None and 0 <= entry.label < len(classes) else None


def check_sources(sources: BoxSources) -> None:
    for name, folder in (("--boxes-voc", sources.voc_dir), ("--boxes-yolo", sources.yolo_dir)):
        if folder is not None and not Path(folder).is_dir():
            raise ApplicationError(f"{folder} ({name}) is not a folder.", code="not_a_folder")
