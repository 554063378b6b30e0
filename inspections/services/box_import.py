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

import math
import re
import xml.etree.ElementTree as ET  # nosec B405 - DOCTYPE/ENTITY documents are refused before parsing
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from inspections.errors import ApplicationError
from inspections.services.boxes import Box, BoxRefused, box_from_fractions
from inspections.services.classes import defect_class_name_normalise
from mlcore.annotations import infer_yolo_class_names

MAX_ANNOTATION_BYTES = 1024 * 1024
CLASSES_FILE = "classes.txt"
LABELS_FOLDER = "labels"
# NEU file-name prefixes -> class names: NEU-DET names crazing/Cr_12.bmp's boxes crazing_12.xml.
NEU_PREFIXES = {"cr": "crazing", "in": "inclusion", "pa": "patches", "ps": "pitted_surface",
                "rs": "rolled-in_scale", "sc": "scratches"}
_NEU_NAME = re.compile(r"^([A-Za-z]+)_(\d+)$")
REASONS = {
    "outside_image": "outside the image",
    "unknown_class": "unknown class",
    "bad_numbers": "bad numbers",
    "malformed_file": "malformed file",
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


def _neu_det_name(image: Path) -> str | None:
    match = _NEU_NAME.match(image.stem)
    if match and match.group(1).lower() in NEU_PREFIXES:
        return f"{NEU_PREFIXES[match.group(1).lower()]}_{match.group(2)}"
    return None


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
        neu = _neu_det_name(image)
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
            names = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
            return [defect_class_name_normalise(name) for name in names if name]
    # A labels tree that mirrors the class folders (cr7-det's) names its ids by where they occur.
    for folder in _labels_roots(root, sources):
        inferred = infer_yolo_class_names(folder) if folder.is_dir() else None
        if inferred:
            return [defect_class_name_normalise(name) for name in inferred]
    return None


def _read_text(path: Path, report: BoxReport) -> str | None:
    try:
        if path.stat().st_size > MAX_ANNOTATION_BYTES:
            report.refuse(path, "malformed_file", f"larger than {MAX_ANNOTATION_BYTES} bytes")
            return None
        return path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        report.refuse(path, "malformed_file", f"unreadable: {error}")
        return None


def _number(element, tag: str) -> float:
    text = element.findtext(tag)
    if text is None:
        raise BoxRefused("bad_numbers", f"<{tag}> is missing")
    try:
        value = float(text.strip())
    except ValueError:
        raise BoxRefused("bad_numbers", f"<{tag}> is not a number: {text.strip()[:20]!r}") from None
    if not math.isfinite(value):
        raise BoxRefused("bad_numbers", f"<{tag}> is not a finite number")
    return value


def read_voc(path: Path, *, width: int, height: int, known: set[str], report: BoxReport) -> list[ParsedBox]:
    """Pascal VOC: ``<object><name/><bndbox><xmin/>..</bndbox></object>``, 1-based pixel
    coordinates inclusive of both ends (``xmin=1, xmax=200`` is the full width of 200 pixels)."""
    text = _read_text(path, report)
    if text is None:
        return []
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        report.refuse(path, "malformed_file", "document type declarations are not accepted")
        return []
    try:
        tree = ET.fromstring(text)  # nosec B314 - no DOCTYPE/ENTITY (checked above): no entity expansion
    except ET.ParseError as error:
        report.refuse(path, "malformed_file", f"not well-formed XML: {error}")
        return []
    if tree.tag != "annotation":
        report.refuse(path, "malformed_file", f"the root element is <{tree.tag}>, not <annotation>")
        return []
    boxes = []
    for element in tree.iter("object"):
        name = defect_class_name_normalise(element.findtext("name") or "")
        bndbox = element.find("bndbox")
        try:
            if bndbox is None:
                raise BoxRefused("bad_numbers", "an <object> without <bndbox>")
            xmin, ymin, xmax, ymax = (_number(bndbox, tag) for tag in ("xmin", "ymin", "xmax", "ymax"))
            # 1-based: the first pixel is 1 (a 0 some tools write is read as the edge as well).
            x0, y0 = (xmin - 1 if xmin >= 1 else xmin), (ymin - 1 if ymin >= 1 else ymin)
            box = box_from_fractions([x0 / width, y0 / height, xmax / width, ymax / height])
        except BoxRefused as refused:
            report.refuse(path, refused.reason, str(refused))
            continue
        if name not in known:
            report.refuse(path, "unknown_class", f"unknown class {name!r}")
            continue
        boxes.append(ParsedBox(label=name, box=box))
    return boxes


def read_yolo(path: Path, *, classes: list[str] | None, known: set[str], report: BoxReport) -> list[ParsedBox]:
    """YOLO: one ``class cx cy w h`` line per box, centre and size as fractions of the image."""
    text = _read_text(path, report)
    if text is None:
        return []
    boxes = []
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split()
        if not words:
            continue
        where = f"{path}:{number}"
        if len(words) != 5:
            report.refuse(Path(where), "bad_numbers", f"expected 'class cx cy w h', got {len(words)} fields")
            continue
        try:
            class_id = int(words[0])
        except ValueError:
            report.refuse(Path(where), "bad_numbers", f"class id {words[0][:20]!r} is not an integer")
            continue
        try:
            cx, cy, w, h = (float(word) for word in words[1:])
            box = box_from_fractions([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        except ValueError as error:
            reason = error.reason if isinstance(error, BoxRefused) else "bad_numbers"
            report.refuse(Path(where), reason, str(error)[:200])
            continue
        if classes is None or not 0 <= class_id < len(classes) or classes[class_id] not in known:
            report.refuse(Path(where), "unknown_class", f"unknown class id {class_id}")
            continue
        boxes.append(ParsedBox(label=classes[class_id], box=box))
    return boxes


def check_sources(sources: BoxSources) -> None:
    for name, folder in (("--boxes-voc", sources.voc_dir), ("--boxes-yolo", sources.yolo_dir)):
        if folder is not None and not Path(folder).is_dir():
            raise ApplicationError(f"{folder} ({name}) is not a folder.", code="not_a_folder")
