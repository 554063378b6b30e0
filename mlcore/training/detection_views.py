"""Training views for the detector, made per step from the decoded image: a random crop (scale and
aspect jitter, the crop resized back to the input size, so defects appear larger than in the
frame) and random flips, with the boxes moved along. A box mostly cut away by the crop is
dropped; one partly cut keeps its visible part.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from mlcore.training.detection_targets import Boxes, flip_boxes

MIN_VISIBLE = 0.4        # share of a box's area a crop must keep for the box to stay a target


@dataclass(frozen=True)
class ViewConfig:
    crop_probability: float = 0.6   # share of views that are a crop (the rest show the whole frame)
    min_crop: float = 0.5           # smallest crop side, as a share of the frame's side
    max_aspect_change: float = 1.33  # the crop's aspect ratio varies up to this factor
    flips: bool = True              # random horizontal and vertical flips


def as_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W, 3): grayscale repeated, as the model's own ``ChannelsToRGB`` does."""
    if image.ndim == 2:
        image = image[..., None]
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[..., :3]


def crop_boxes(boxes: Boxes, crop: tuple[float, float, float, float]) -> list[tuple]:
    """``boxes`` (fractions of the frame) in a crop (x0, y0, x1, y1, fractions of the frame), as
    fractions of the crop; boxes with less than ``MIN_VISIBLE`` of their area inside are dropped."""
    cx0, cy0, cx1, cy1 = crop
    cw, ch = cx1 - cx0, cy1 - cy0
    kept = []
    for cls, x0, y0, x1, y1 in boxes:
        vx0, vy0, vx1, vy1 = max(x0, cx0), max(y0, cy0), min(x1, cx1), min(y1, cy1)
        area = (x1 - x0) * (y1 - y0)
        if vx1 <= vx0 or vy1 <= vy0 or area <= 0 or (vx1 - vx0) * (vy1 - vy0) < MIN_VISIBLE * area:
            continue
        kept.append((cls, (vx0 - cx0) / cw, (vy0 - cy0) / ch, (vx1 - cx0) / cw, (vy1 - cy0) / ch))
    return kept


def random_crop(rng: np.random.Generator, config: ViewConfig) -> tuple[float, float, float, float]:
    """A crop window as fractions of the frame."""
    scale = rng.uniform(config.min_crop, 1.0)
    aspect = np.exp(rng.uniform(-np.log(config.max_aspect_change), np.log(config.max_aspect_change)))
    w, h = min(scale * np.sqrt(aspect), 1.0), min(scale / np.sqrt(aspect), 1.0)
    x0, y0 = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
    return float(x0), float(y0), float(x0 + w), float(y0 + h)


def detection_view(image: np.ndarray, boxes: Boxes, *, size: int, rng: np.random.Generator | None,
                   config: ViewConfig = ViewConfig()) -> tuple[np.ndarray, list[tuple]]:
    """(float32 (size, size, 3) view, its boxes). ``rng`` None: the whole frame, unflipped."""
    height, width = image.shape[:2]
    boxes = list(boxes)
    crop = (0.0, 0.0, 1.0, 1.0)
    if rng is not None and rng.random() < config.crop_probability:
        crop = random_crop(rng, config)
        boxes = crop_boxes(boxes, crop)
    x0, y0 = int(round(crop[0] * width)), int(round(crop[1] * height))
    x1, y1 = max(int(round(crop[2] * width)), x0 + 1), max(int(round(crop[3] * height)), y0 + 1)
    picture = Image.fromarray(as_rgb(image)[y0:y1, x0:x1])
    view = np.asarray(picture.resize((size, size), Image.BILINEAR), dtype=np.float32)
    if rng is not None and config.flips:
        horizontal, vertical = bool(rng.random() < 0.5), bool(rng.random() < 0.5)
        view = view[:, ::-1] if horizontal else view
        view = view[::-1] if vertical else view
        boxes = flip_boxes(boxes, horizontal=horizontal, vertical=vertical)
    return np.ascontiguousarray(view), boxes


def view_batch(images: Sequence[np.ndarray], boxes: Sequence[Boxes], *, size: int, rng, config: ViewConfig):
    """(images (N, size, size, 3) float32, boxes per view)."""
    views = [detection_view(image, known, size=size, rng=rng, config=config) for image, known in zip(images, boxes)]
    return np.stack([view for view, _ in views]), [moved for _, moved in views]
