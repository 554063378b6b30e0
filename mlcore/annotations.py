"""Defect boxes that come with a folder-per-class dataset, for ``python -m mlcore train --annotations``.

Two layouts are read: Pascal VOC XML (NEU-DET: ``crazing/Cr_12.bmp``'s boxes are
``crazing_12.xml``; or ``<class>/<stem>.xml`` / ``<stem>.xml``) and YOLO text (``class cx cy w h``
in fractions, ``<class>/<stem>.txt`` or ``<stem>.txt``). YOLO class ids are named by a
``classes.txt`` in the folder, by ``yolo_classes``, or — for a labels tree that mirrors the class
folders, as cr7-det's does — by which folder each id mostly appears in.

Boxes come back as ``(label, x0, y0, x1, y1)`` fractions of width and height, origin top-left
(the convention everywhere in steelqc). A box that is inverted, empty, not a number or names an
unknown id is skipped and counted; this reader is for training runs (the web import checks and
reports each refusal itself).
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET  # nosec B405 - DOCTYPE/ENTITY documents are refused before parsing
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from mlcore.io import Sample

NEU_PREFIXES = {"cr": "crazing", "in": "inclusion", "pa": "patches", "ps": "pitted_surface",
                "rs": "rolled-in_scale", "sc": "scratches"}
_NEU_NAME = re.compile(r"^([A-Za-z]+)_(\d+)$")
MAX_FILE_BYTES = 1024 * 1024

Box = tuple[str, float, float, float, float]


@dataclass
class AnnotationReport:
    files: int = 0
    boxes: int = 0
    skipped: Counter = field(default_factory=Counter)   # reason -> count
    images_without: int = 0

    def to_dict(self) -> dict:
        return {"files": self.files, "boxes": self.boxes, "skipped": dict(self.skipped),
                "images_without_annotations": self.images_without}


def _fractions(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float] | None:
    values = (x0, y0, x1, y1)
    if not all(math.isfinite(v) for v in values):
        return None
    x0, y0, x1, y1 = (min(max(v, 0.0), 1.0) for v in values)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _text(path: Path) -> str | None:
    if path.stat().st_size > MAX_FILE_BYTES:
        return None
    text = path.read_bytes().decode("utf-8", errors="replace")
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        return None
    return text


def read_voc(path: Path, report: AnnotationReport) -> list[Box]:
    """Boxes of a VOC file; pixel corners (1-based) to fractions of the size it states."""
    text = _text(path)
    try:
        root = ET.fromstring(text) if text is not None else None  # nosec B314 - no DOCTYPE/ENTITY (checked above)
        width, height = float(root.findtext("size/width")), float(root.findtext("size/height"))
    except (ET.ParseError, TypeError, ValueError, AttributeError):
        report.skipped["malformed_file"] += 1
        return []
    boxes = []
    for item in root.iter("object"):
        try:
            x0, y0, x1, y1 = (float(item.findtext(f"bndbox/{tag}")) for tag in ("xmin", "ymin", "xmax", "ymax"))
            box = _fractions((x0 - 1) / width, (y0 - 1) / height, x1 / width, y1 / height)
        except (TypeError, ValueError, ZeroDivisionError):
            box = None
        name = (item.findtext("name") or "").strip()
        if box is None or not name:
            report.skipped["bad_numbers"] += 1
            continue
        boxes.append((name, *box))
    return boxes


def read_yolo(path: Path, names: Sequence[str], report: AnnotationReport) -> list[Box]:
    text = _text(path)
    if text is None:
        report.skipped["malformed_file"] += 1
        return []
    boxes = []
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        try:
            index, cx, cy, w, h = int(parts[0]), *(float(p) for p in parts[1:5])
            box = _fractions(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2) if len(parts) == 5 else None
        except ValueError:
            box = None
            index = -1
        if box is None:
            report.skipped["bad_numbers"] += 1
        elif not 0 <= index < len(names):
            report.skipped["unknown_class"] += 1
        else:
            boxes.append((names[index], *box))
    return boxes


def annotation_file(image: Path, label: str, folder: Path) -> tuple[str, Path] | None:
    """("voc" | "yolo", path) of the file holding ``image``'s boxes in ``folder``, if any."""
    match = _NEU_NAME.match(image.stem)
    candidates = [folder / label / image.stem, folder / image.stem]
    if match and match.group(1).lower() in NEU_PREFIXES:
        candidates.append(folder / f"{NEU_PREFIXES[match.group(1).lower()]}_{match.group(2)}")
    for stem in candidates:
        for kind, suffix in (("voc", ".xml"), ("yolo", ".txt")):
            path = stem.with_name(stem.name + suffix)
            if path.is_file():
                return kind, path
    return None


def yolo_class_names(folder: Path, *, given: Sequence[str] | None = None) -> list[str] | None:
    """YOLO id -> class name: ``given``, a ``classes.txt``, or inferred from the class folders."""
    if given:
        return list(given)
    listed = folder / "classes.txt"
    if listed.is_file():
        return [line.strip() for line in listed.read_text(encoding="utf-8", errors="replace").splitlines()
                if line.strip()]
    return infer_yolo_class_names(folder)


def infer_yolo_class_names(folder: Path, *, min_share: float = 0.5) -> list[str] | None:
    """Name YOLO ids by the class folders of a labels tree that mirrors the images' folders
    (``labels/dents/dents_1.txt``): each id is the class of the folder where most of its boxes
    are, when that folder holds more than ``min_share`` of them and no two ids claim one folder.
    None when the tree does not say it clearly."""
    counts: dict[int, Counter] = {}
    for class_folder in sorted(p for p in folder.iterdir() if p.is_dir()):
        for path in class_folder.glob("*.txt"):
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                parts = line.split()
                if parts and parts[0].isdigit():
                    counts.setdefault(int(parts[0]), Counter())[class_folder.name] += 1
    if not counts:
        return None
    names: dict[int, str] = {}
    for index, where in counts.items():
        folder_name, count = where.most_common(1)[0]
        if count <= min_share * sum(where.values()):  # a tie names nothing
            return None
        names[index] = folder_name
    if len(set(names.values())) != len(names) or sorted(names) != list(range(len(names))):
        return None
    return [names[i] for i in range(len(names))]


def attach_annotations(samples: Sequence[Sample], folder: str | Path, *,
                       yolo_classes: Sequence[str] | None = None) -> tuple[list[Sample], AnnotationReport]:
    """The samples with the boxes found in ``folder`` (None where an image has no file)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"annotations folder not found: {folder}")
    report = AnnotationReport()
    names = None
    out = []
    for sample in samples:
        found = annotation_file(Path(sample.path), sample.label, folder)
        if found is None:
            report.images_without += 1
            out.append(sample)
            continue
        kind, path = found
        report.files += 1
        if kind == "voc":
            boxes = read_voc(path, report)
        else:
            if names is None:
                names = yolo_class_names(folder, given=yolo_classes)
                if names is None:
                    raise ValueError(f"cannot name the YOLO class ids in {folder}: add a classes.txt "
                                     "(one name per line, id 0 first) or pass the names")
            boxes = read_yolo(path, names, report)
        report.boxes += len(boxes)
        out.append(replace(sample, boxes=tuple(boxes)))
    return out, report
