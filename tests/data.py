"""Synthetic steel surfaces for tests: the one home of the tiny textures and of the folder-per-class
data sets written from them (no Django here: the mlcore tests use it too).

The session's shared trained models are built from these exact images (same seeds, same order
of random draws), so a change here changes every model the suite trains and what it predicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image

SURFACE_SIZE = 32
PATTERNS = ("horizontal_stripes", "spots", "vertical_stripes")
# Index i of a class folder goes to SPLIT_CYCLE[i % 5]: every 5th image is val, the next test.
SPLIT_CYCLE = ("train", "train", "train", "val", "test")

# The platform tests' two classes (NEU names) and the pattern each is drawn with.
TINY_MODEL_CLASSES = ("crazing", "inclusion")
_TINY_MODEL_PATTERNS = {"crazing": "horizontal_stripes", "inclusion": "spots"}


def surface(pattern: str, rng: np.random.Generator, *, size: int = SURFACE_SIZE,
            spots_draw_frequency: bool = True) -> np.ndarray:
    """A size x size uint8 grayscale texture: horizontal stripes, vertical stripes or sparse spots.

    ``spots_draw_frequency=False`` is the platform data set's order of draws, kept so its images
    stay the same: spots take no stripe frequency from ``rng``.
    """
    if pattern not in PATTERNS:
        raise ValueError(f"unknown pattern {pattern!r}; one of {PATTERNS}")
    ys, xs = np.mgrid[0:size, 0:size]
    frequency = rng.uniform(0.6, 0.9) if pattern != "spots" or spots_draw_frequency else None
    if pattern == "horizontal_stripes":
        base = 128 + 90 * np.sin(ys * frequency)
    elif pattern == "vertical_stripes":
        base = 128 + 90 * np.sin(xs * frequency)
    else:
        base = 60 + 150 * (rng.random(ys.shape) > 0.9)
    return np.clip(base + rng.normal(0, 8, ys.shape), 0, 255).astype(np.uint8)


def write_class_folders(root: Path, patterns: Mapping[str, str], *, per_class: int = 10, seed: int = 0,
                        file_name: str = "{label}_{i}.png",
                        spots_draw_frequency: bool = True) -> list[tuple[Path, str, str]]:
    """Write ``per_class`` PNGs into ``root/<label>/`` for each label -> pattern, one random stream
    (``seed``) in the mapping's order; return (path, label, split) per image.

    ``file_name`` is formatted with ``label``, ``seed`` and ``i`` (the image's index in its class).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for label, pattern in patterns.items():
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            path = folder / file_name.format(label=label, seed=seed, i=i)
            Image.fromarray(surface(pattern, rng, spots_draw_frequency=spots_draw_frequency)).save(path)
            rows.append((path, label, SPLIT_CYCLE[i % len(SPLIT_CYCLE)]))
    return rows


def tiny_dataset(root: Path, *, seed: int = 0, per_class: int = 10) -> list[tuple[Path, str, str]]:
    """The platform tests' data set, (path, label, split) of small learnable textures: stripes are
    crazing, spots inclusion. Different seeds may share a folder (file names carry the seed)."""
    return write_class_folders(root, _TINY_MODEL_PATTERNS, per_class=per_class, seed=seed,
                               file_name="{seed}-{i}.png", spots_draw_frequency=False)


def tiny_model_surface(label: str, rng: np.random.Generator, *, size: int = SURFACE_SIZE) -> np.ndarray:
    """One texture as the platform data set draws it: crazing is stripes, any other label spots."""
    pattern = "horizontal_stripes" if label == "crazing" else "spots"
    return surface(pattern, rng, size=size, spots_draw_frequency=False)


# Anomaly models: good strip is horizontal stripes of random frequency and phase at a non-square
# size (so maps must come back at the image's own width x height); a defect is a flat square.
ANOMALY_SURFACE_SHAPE = (96, 160)  # height, width
ANOMALY_DEFECT_BOX = (36, 100, 56, 120)  # y0, x0, y1, x1 of the planted defect


def good_strip(rng: np.random.Generator, *, shape: tuple[int, int] = ANOMALY_SURFACE_SHAPE) -> np.ndarray:
    ys = np.mgrid[0:shape[0], 0:shape[1]][0]
    base = 128 + 90 * np.sin(ys * rng.uniform(0.6, 0.9) + rng.uniform(0, 2 * np.pi))
    return np.clip(base + rng.normal(0, 8, shape), 0, 255).astype(np.uint8)


def strip_with_defect(rng: np.random.Generator, *, value: int = 0,
                      box: tuple[int, int, int, int] = ANOMALY_DEFECT_BOX) -> np.ndarray:
    image = good_strip(rng)
    y0, x0, y1, x1 = box
    image[y0:y1, x0:x1] = value
    return image


# Anomaly models learn what good looks like from no_defect alone: good strip is horizontal stripes,
# a defect is anything else (spots here, the crazing-free texture of another class).
ANOMALY_GOOD_PATTERN, ANOMALY_DEFECT_PATTERN = "horizontal_stripes", "spots"


def good_and_defect_folders(root: Path, *, good: int = 50, defects: int = 8, seed: int = 0,
                            defect_class: str = "inclusion") -> list[tuple[Path, str, str]]:
    """``root/no_defect/`` with ``good`` striped surfaces and ``root/<defect_class>/`` with
    ``defects`` spotted ones, for ``import_dataset``: the anomaly tests' labelled line."""
    rows = write_class_folders(root, {"no_defect": ANOMALY_GOOD_PATTERN}, per_class=good, seed=seed,
                               file_name="good-{seed}-{i}.png")
    return rows + write_class_folders(root, {defect_class: ANOMALY_DEFECT_PATTERN}, per_class=defects, seed=seed + 1,
                                      file_name="defect-{seed}-{i}.png")


def good_with_a_blotch(rng: np.random.Generator, *, at: tuple[int, int] = (4, 18), size: int = 6) -> np.ndarray:
    """A good (striped) surface with one bright ``size`` x ``size`` blotch whose top-left corner is
    at ``at`` (row, column): a small defect the anomaly map should find where it is."""
    image = surface(ANOMALY_GOOD_PATTERN, rng).copy()
    image[at[0]:at[0] + size, at[1]:at[1] + size] = 250
    return image
