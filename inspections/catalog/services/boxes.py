"""Defect boxes as data: where on an image a defect is, as fractions of the image.

Coordinates are fractions of the image (``[x0, y0, x1, y1]``, origin top-left, ``0 <= x0 < x1 <= 1``,
the same for y); pixels convert through the image's width and height. People change boxes in
versioned sets (``inspections.review.services.boxes``); imports store them here (``boxes_import``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from inspections.catalog.models import BoxSource, DefectBox, DefectClass, InspectionImage

MAX_BOXES_PER_IMAGE = 500  # active boxes on one image
EDGE_TOLERANCE = 1e-6  # rounding just past an edge is put back on it


class BoxRefused(ValueError):
    """A box that cannot be stored; ``reason`` is ``bad_numbers`` or ``outside_image``."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float

    def as_list(self) -> list[float]:
        return [self.x0, self.y0, self.x1, self.y1]


def box_from_fractions(values) -> Box:
    """Check four numbers as a box in fractions; raises ``BoxRefused``."""
    if not isinstance(values, (list, tuple)) or len(values) != 4:
        raise BoxRefused("bad_numbers", "A box is four numbers [x0, y0, x1, y1].")
    numbers = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BoxRefused("bad_numbers", "A box's coordinates must be numbers.")
        if not math.isfinite(value):
            raise BoxRefused("bad_numbers", "A box's coordinates must be finite numbers (no NaN or infinity).")
        numbers.append(float(value))
    x0, y0, x1, y1 = numbers
    if x1 <= x0 or y1 <= y0:
        raise BoxRefused("bad_numbers", "A box needs x0 < x1 and y0 < y1 (it is inverted or empty).")
    if min(x0, y0) < -EDGE_TOLERANCE or max(x1, y1) > 1 + EDGE_TOLERANCE:
        raise BoxRefused("outside_image", "The box reaches outside the image.")
    return Box(max(x0, 0.0), max(y0, 0.0), min(x1, 1.0), min(y1, 1.0))


def box_from_pixels(values, *, width: int, height: int) -> Box:
    if not isinstance(values, (list, tuple)) or len(values) != 4:
        raise BoxRefused("bad_numbers", "A box is four numbers [x0, y0, x1, y1].")
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
        raise BoxRefused("bad_numbers", "A box's coordinates must be numbers.")
    x0, y0, x1, y1 = values
    return box_from_fractions([x0 / width, y0 / height, x1 / width, y1 / height])


def box_payload(box: DefectBox, image: InspectionImage) -> dict:
    """How the API shows a box: fractions (the stored convention) and the same in pixels."""
    fractions = [box.x0, box.y0, box.x1, box.y1]
    return {
        "id": box.pk,
        "label": box.label.name,
        "box": fractions,
        "box_px": [round(v * size, 2) for v, size in zip(fractions, (image.width, image.height) * 2)],
        "source": box.source,
        "model_version": box.model_version_id,
        "created_by": box.created_by.username if box.created_by_id else None,
        "created_at": box.created_at,
        "updated_at": box.updated_at,
    }


def boxes_import(*, boxes: list[tuple[InspectionImage, DefectClass, Box]]) -> list[DefectBox]:
    """Store boxes read from a dataset's annotation files (no history: no person drew them)."""
    return DefectBox.objects.bulk_create(
        (DefectBox(image=image, label=label, x0=box.x0, y0=box.y0, x1=box.x1, y1=box.y1, source=BoxSource.IMPORT)
         for image, label, box in boxes), batch_size=1000,
    )
