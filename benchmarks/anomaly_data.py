"""The data sets of ``make bench-anomaly``: BSData's split and cr7-det cut into good and defect tiles.

BSData: ``no_defect`` images are ordered by a seeded hash of their bytes; the first 70 % are
given to anomaly-train (which holds out its own calibration images among them), the rest are
the good images of the test, against every ``pitting`` image and its mask.

cr7-det has no defect-free images, but most of each 400 x 400 frame is defect-free: cut into a
4 x 4 grid of 100 x 100 tiles, a tile no labelled box touches is good, a tile holding at least a
quarter of a box (or a box covering a tenth of the tile) is a defect, with the boxes as its mask;
tiles in between are left out. Frames are split in two halves by a hash of their bytes, so the
tiles a model learns from and the tiles it is judged on never come from the same frame. Boxes
are coarse masks (they include surface around a defect) and a few defects are unlabelled: both
make cr7's figures lower bounds.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

from mlcore.io import file_sha256

DATASETS = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
BSDATA = DATASETS / "bsdata"
CR7 = DATASETS / "cr7-det"
TILE, GRID = 100, 4
MARGIN = 2  # pixels a box may come near a good tile


def hash_order(paths: list[Path], *, seed: int = 0) -> list[Path]:
    return sorted(paths, key=lambda p: hashlib.sha256(f"{seed}:{file_sha256(p)}".encode()).hexdigest())


def bsdata_sets(*, train_share: float = 0.7, seed: int = 0) -> dict:
    good = hash_order(sorted((BSDATA / "no_defect").glob("*.jpg")), seed=seed)
    cut = round(train_share * len(good))
    defects = sorted((BSDATA / "pitting").glob("*.jpg"))
    return {"train": good[:cut], "test_good": good[cut:], "test_defect": defects,
            "masks": {str(p): BSDATA / "masks" / "pitting" / f"{p.stem}.png" for p in defects}}


def _boxes(image_path: Path, width: int, height: int) -> list[tuple[float, float, float, float]]:
    label = CR7 / "labels" / image_path.parent.name / f"{image_path.stem}.txt"
    boxes = []
    for line in label.read_text().splitlines() if label.is_file() else []:
        parts = line.split()
        if len(parts) == 5:
            cx, cy, w, h = (float(v) for v in parts[1:])
            boxes.append(((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height))
    return boxes


def _overlap(a, b) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def cr7_tiles(work: Path, *, seed: int = 0) -> dict:
    """Write (once) and list the tiles: train-side good, test-side good and defect with masks."""
    root = work / "cr7-tiles"
    listing = root / "listing.json"
    if listing.is_file():
        return json.loads(listing.read_text())
    sets = {"train_good": [], "test_good": [], "test_defect": [], "masks": {}}
    for folder in ("train_good", "test_good", "test_defect", "test_masks"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for image_path in sorted((CR7 / "images").glob("*/*.jpg")):
        side = "train" if int(file_sha256(image_path)[:8], 16) % 2 == 0 else "test"
        with Image.open(image_path) as picture:
            gray = np.asarray(picture.convert("L"))
        height, width = gray.shape
        boxes = _boxes(image_path, width, height)
        for row in range(GRID):
            for col in range(GRID):
                tile = (col * TILE, row * TILE, (col + 1) * TILE, (row + 1) * TILE)
                if tile[2] > width or tile[3] > height:
                    continue
                grown = (tile[0] - MARGIN, tile[1] - MARGIN, tile[2] + MARGIN, tile[3] + MARGIN)
                name = f"{image_path.stem}_{row}{col}.png"
                pixels = gray[tile[1]:tile[3], tile[0]:tile[2]]
                if not any(_overlap(grown, box) > 0 for box in boxes):
                    kind = f"{side}_good"
                elif side == "test" and any(
                        _overlap(tile, box) >= max(0.25 * (box[2] - box[0]) * (box[3] - box[1]), 1.0)
                        or _overlap(tile, box) >= 0.1 * TILE * TILE for box in boxes):
                    kind = "test_defect"
                else:
                    continue
                path = root / kind / name
                Image.fromarray(pixels).save(path)
                sets[kind].append(str(path))
                if kind == "test_defect":
                    mask = np.zeros((TILE, TILE), np.uint8)
                    for x0, y0, x1, y1 in boxes:
                        mask[max(0, int(y0) - tile[1]):max(0, int(np.ceil(y1)) - tile[1]),
                             max(0, int(x0) - tile[0]):max(0, int(np.ceil(x1)) - tile[0])] = 255
                    mask_path = root / "test_masks" / name
                    Image.fromarray(mask).save(mask_path)
                    sets["masks"][str(path)] = str(mask_path)
    listing.write_text(json.dumps(sets))
    return sets


def sample(paths: list[str], count: int, *, seed: int = 0) -> list[str]:
    if len(paths) <= count:
        return list(paths)
    chosen = np.random.default_rng(seed).choice(len(paths), count, replace=False)
    return [paths[i] for i in sorted(chosen)]
