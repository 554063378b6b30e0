"""What the detection head should output for one training view (``mlcore.detection``'s ``LTRB`` map).

Each box puts an elliptical Gaussian on its class's heat map, its axes proportional to the box's
sides (long thin scratches get long thin peaks), peak 1 at the cell holding the box's centre.
Every cell inside the box where that Gaussian is at least ``REGION_MIN`` learns the box itself
(TTFNet's rule): its weight is the Gaussian's value, normalised so each box weighs 1 in all, and
the loss compares the box the cell decodes to the true box by GIoU. Where boxes overlap, the
smaller box owns the cell (its centre would otherwise be invisible).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Boxes = Sequence[tuple[int, float, float, float, float]]   # (class index, x0, y0, x1, y1) fractions

GAUSSIAN_ALPHA = 0.54   # Gaussian sigma = alpha * side / 6 (CenterNet/TTFNet)
REGION_MIN = 0.3        # cells whose Gaussian is at least this regress the box


def encode_targets(boxes: Boxes, *, grid: int, num_classes: int, gaussian_alpha: float = GAUSSIAN_ALPHA,
                   region_min: float = REGION_MIN) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(heat (G, G, K), box target (G, G, 4) as x0, y0, x1, y1 fractions, box weight (G, G))."""
    heat = np.zeros((grid, grid, num_classes), np.float32)
    target = np.zeros((grid, grid, 4), np.float32)
    weight = np.zeros((grid, grid), np.float32)
    ys, xs = np.mgrid[0:grid, 0:grid].astype(np.float32)
    centres_x, centres_y = (xs + 0.5) / grid, (ys + 0.5) / grid
    # Larger boxes first, so a smaller box's cells and centre overwrite theirs where they overlap.
    for cls, x0, y0, x1, y1 in sorted(boxes, key=lambda b: -(b[3] - b[1]) * (b[4] - b[2])):
        w, h = x1 - x0, y1 - y0
        if w <= 0 or h <= 0:
            continue
        col, row = min(int((x0 + x1) / 2 * grid), grid - 1), min(int((y0 + y1) / 2 * grid), grid - 1)
        sx, sy = max(gaussian_alpha * w * grid / 6, 0.5), max(gaussian_alpha * h * grid / 6, 0.5)
        bump = np.exp(-((xs - col) ** 2) / (2 * sx * sx) - ((ys - row) ** 2) / (2 * sy * sy))
        heat[..., cls] = np.maximum(heat[..., cls], bump)
        heat[row, col, cls] = 1.0
        inside = (centres_x >= x0) & (centres_x <= x1) & (centres_y >= y0) & (centres_y <= y1)
        region = (bump >= region_min) & inside
        region[row, col] = True   # a box smaller than a cell still owns its centre cell
        share = np.where(region, bump, 0.0)
        target[region] = (x0, y0, x1, y1)
        weight[region] = (share / share.sum())[region]
    return heat, target, weight


def flip_boxes(boxes: Boxes, *, horizontal: bool, vertical: bool) -> list[tuple]:
    out = []
    for cls, x0, y0, x1, y1 in boxes:
        if horizontal:
            x0, x1 = 1 - x1, 1 - x0
        if vertical:
            y0, y1 = 1 - y1, 1 - y0
        out.append((cls, x0, y0, x1, y1))
    return out
