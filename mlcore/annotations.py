"""Defect boxes that come with a folder-per-class dataset, for ``python -m mlcore train --annotations``.

Two layouts are read: Pascal VOC XML (NEU-DET: ``crazing/Cr_12.bmp``'s boxes are
``crazing_12.xml``; or ``<class>/<stem>.xml`` / ``<stem>.xml``) and YOLO text (``class cx cy w h``
in fractions, ``<class>/<stem>.txt`` or ``<stem>.txt``). YOLO class ids are named by a
``classes.txt`` in the folder, by ``yolo_classes``, or — for a labels tree that mirrors the class
folders, as cr7-det's does — by which folder each id mostly appears in.

Both formats are parsed here and nowhere else: ``voc_boxes`` and ``yolo_boxes`` give each box as
the file states it, or why it cannot be read, and the two users apply their own rule to that.
For a training run (``attach_annotations``) boxes come back as ``(label, x0, y0, x1, y1)``
fractions of width and height, origin top-left (the convention everywhere in steelqc), clamped
into the image; a box that is inverted, empty, not a number or names an unknown id is skipped and
counted. The web import (``inspections.catalog.services.box_import``) refuses a box that reaches outside
the image and reports each refusal with its reason.
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

# NEU file-name prefixes -> class names: NEU-DET names crazing/Cr_12.bmp's boxes crazing_12.xml.
NEU_PREFIXES = {"cr": "crazing", "in": "inclusion", "pa": "patches", "ps": "pitted_surface",
                "rs": "rolled-in_scale", "sc": "scratches"}
_NEU_NAME = re.compile(r"^([A-Za-z]+)_(\d+)$")
MAX_FILE_BYTES = 1024 * 1024
CLASSES_FILE = "classes.txt"

Box = tuple[str, float, float, float, float]
Corners = tuple[float, float, float, float]


# --- Reading the two formats (here only; the web import applies its own checks to what they give) ---

MALFORMED_FILE = "malformed_file"  # the reason a whole file is refused; a box's is bad_numbers


class AnnotationRefused(ValueError):
    """A whole annotation file cannot be read (reason ``MALFORMED_FILE``); the message says why."""


@dataclass(frozen=True)
class ReadBox:
    """One box as the file gives it: ``label`` is the VOC ``<name>`` (stripped) or the YOLO class
    id; ``corners`` are (x0, y0, x1, y1) fractions, finite but not yet checked against the image
    (they may be inverted or reach outside it)."""

    where: str
    label: str | int
    corners: Corners


@dataclass(frozen=True)
class Refusal:
    """One box of a file that cannot be read (``reason`` ``bad_numbers``), and why."""

    where: str
    reason: str
    message: str


def read_annotation_text(path: Path) -> str:
    """The file's text (UTF-8, at most ``MAX_FILE_BYTES``); raises ``AnnotationRefused``."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise AnnotationRefused(f"larger than {MAX_FILE_BYTES} bytes")
        return path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise AnnotationRefused(f"unreadable: {error}") from None


def _voc_number(element, tag: str) -> float:
    text = element.findtext(tag)
    if text is None:
        raise ValueError(f"<{tag}> is missing")
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"<{tag}> is not a number: {text.strip()[:20]!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"<{tag}> is not a finite number")
    return value


def voc_boxes(path: Path, *, size: tuple[float, float] | None = None) -> list[ReadBox | Refusal]:
    """Pascal VOC: ``<object><name/><bndbox><xmin/>..</bndbox></object>``, 1-based pixel
    coordinates inclusive of both ends (``xmin=1, xmax=200`` is the full width of 200 pixels), as
    fractions of ``size`` (width, height) or, without it, of the size the file states. Raises
    ``AnnotationRefused`` for a file that is not such a document."""
    text = read_annotation_text(path)
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise AnnotationRefused("document type declarations are not accepted")
    try:
        tree = ET.fromstring(text)  # nosec B314 - no DOCTYPE/ENTITY (checked above): no entity expansion
    except ET.ParseError as error:
        raise AnnotationRefused(f"not well-formed XML: {error}") from None
    if tree.tag != "annotation":
        raise AnnotationRefused(f"the root element is <{tree.tag}>, not <annotation>")
    if size is None:
        try:
            size = (_voc_number(tree, "size/width"), _voc_number(tree, "size/height"))
        except ValueError as error:
            raise AnnotationRefused(f"no image size: {error}") from None
    width, height = size
    if not (width > 0 and height > 0):
        raise AnnotationRefused(f"the image size {width} x {height} is empty")
    found: list[ReadBox | Refusal] = []
    for element in tree.iter("object"):
        bndbox = element.find("bndbox")
        try:
            if bndbox is None:
                raise ValueError("an <object> without <bndbox>")
            xmin, ymin, xmax, ymax = (_voc_number(bndbox, tag) for tag in ("xmin", "ymin", "xmax", "ymax"))
        except ValueError as error:
            found.append(Refusal(str(path), "bad_numbers", str(error)))
            continue
        # 1-based: the first pixel is 1 (a 0 some tools write is read as the edge as well).
        x0, y0 = (xmin - 1 if xmin >= 1 else xmin), (ymin - 1 if ymin >= 1 else ymin)
        found.append(ReadBox(str(path), (element.findtext("name") or "").strip(),
                             (x0 / width, y0 / height, xmax / width, ymax / height)))
    return found


def yolo_boxes(path: Path) -> list[ReadBox | Refusal]:
    """YOLO: one ``class cx cy w h`` line per box, centre and size as fractions of the image.
    Raises ``AnnotationRefused`` for a file that cannot be read."""
    found: list[ReadBox | Refusal] = []
    for number, line in enumerate(read_annotation_text(path).splitlines(), start=1):
        words = line.split()
        if not words:
            continue
        where = f"{path}:{number}"
        if len(words) != 5:
            found.append(Refusal(where, "bad_numbers", f"expected 'class cx cy w h', got {len(words)} fields"))
            continue
        try:
            class_id = int(words[0])
        except ValueError:
            found.append(Refusal(where, "bad_numbers", f"class id {words[0][:20]!r} is not an integer"))
            continue
        try:
            cx, cy, w, h = (float(word) for word in words[1:])
        except ValueError as error:
            found.append(Refusal(where, "bad_numbers", str(error)[:200]))
            continue
        if not all(math.isfinite(v) for v in (cx, cy, w, h)):
            found.append(Refusal(where, "bad_numbers", "a coordinate is not a finite number"))
            continue
        found.append(ReadBox(where, class_id, (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)))
    return found


def read_class_list(path: Path) -> list[str]:
    """A ``classes.txt``: one name per line, line 1 = id 0."""
    return [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
            if line.strip()]


def neu_det_stem(image: Path) -> str | None:
    """The NEU-DET annotation's stem for a NEU image (``Cr_12.bmp`` -> ``crazing_12``), or None."""
    match = _NEU_NAME.match(image.stem)
    if match and match.group(1).lower() in NEU_PREFIXES:
        return f"{NEU_PREFIXES[match.group(1).lower()]}_{match.group(2)}"
    return None


# --- Boxes for a training run ---------------------------------------------------------------

@dataclass
class AnnotationReport:
    files: int = 0
    boxes: int = 0
    skipped: Counter = field(default_factory=Counter)   # reason -> count
    images_without: int = 0

    def to_dict(self) -> dict:
        return {"files": self.files, "boxes": self.boxes, "skipped": dict(self.skipped),
                "images_without_annotations": self.images_without}


def _clamped(corners: Corners) -> Corners | None:
    """The corners clamped into the image; None when nothing of the box is left."""
    x0, y0, x1, y1 = (min(max(v, 0.0), 1.0) for v in corners)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _training_boxes(found: list[ReadBox | Refusal], names: Sequence[str] | None,
                    report: AnnotationReport) -> list[Box]:
    boxes = []
    for entry in found:
        if isinstance(entry, Refusal):
            report.skipped[entry.reason] += 1
            continue
        corners = _clamped(entry.corners)
        label = entry.label if names is None else (names[entry.label] if 0 <= entry.label < len(names) else None)
        if corners is None or label == "":
            report.skipped["bad_numbers"] += 1
        elif label is None:
            report.skipped["unknown_class"] += 1
        else:
            boxes.append((label, *corners))
    return boxes


def read_voc(path: Path, report: AnnotationReport) -> list[Box]:
    """Boxes of a VOC file, as fractions of the size it states; bad boxes skipped and counted."""
    try:
        return _training_boxes(voc_boxes(path), None, report)
    except AnnotationRefused:
        report.skipped[MALFORMED_FILE] += 1
        return []


def read_yolo(path: Path, names: Sequence[str], report: AnnotationReport) -> list[Box]:
    """Boxes of a YOLO file, ids named by ``names``; bad boxes skipped and counted."""
    try:
        return _training_boxes(yolo_boxes(path), names, report)
    except AnnotationRefused:
        report.skipped[MALFORMED_FILE] += 1
        return []


def annotation_file(image: Path, label: str, folder: Path) -> tuple[str, Path] | None:
    """("voc" | "yolo", path) of the file holding ``image``'s boxes in ``folder``, if any."""
    candidates = [folder / label / image.stem, folder / image.stem]
    neu = neu_det_stem(image)
    if neu:
        candidates.append(folder / neu)
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
    listed = folder / CLASSES_FILE
    if listed.is_file():
        return read_class_list(listed)
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
