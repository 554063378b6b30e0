"""Inputs of a run: checked samples by split, and the features every later step reads.

The backbone is frozen in phase 1, so each training image goes through it a few times (one
clean view and some line-condition augmentations) and only its pooled descriptor is kept;
the head, the OOD memory and the suspect-label check then work on those vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mlcore.augment import augment_image
from mlcore.io import Sample, batched, load_image
from mlcore.ood import frame_statistics
from mlcore.training.config import TrainConfig
from mlcore.training.progress import Progress

SPLITS = ("train", "val", "test")


def check_samples(samples: Sequence[Sample]) -> tuple[list[str], dict[str, list[Sample]]]:
    """(sorted class names, samples by split); refuses what cannot train."""
    by_split: dict[str, list[Sample]] = {split: [] for split in SPLITS}
    for sample in samples:
        by_split[sample.split].append(sample)
    classes = sorted({sample.label for sample in samples})
    missing = sorted(set(classes) - {sample.label for sample in by_split["train"]})
    if len(classes) < 2:
        raise ValueError(f"need at least two classes to train, got {classes}")
    if missing:
        raise ValueError(f"classes with no training image: {', '.join(missing)}")
    if not by_split["val"]:
        raise ValueError("need at least one validation image (split 'val')")
    return classes, by_split


@dataclass
class FeatureCache:
    train_features: np.ndarray   # (N_train * views, D), clean view first within each chunk
    train_labels: np.ndarray
    train_clean: np.ndarray      # bool mask: rows that are a clean (unaugmented) view
    train_views: np.ndarray      # which view a row is (0 = clean)
    train_index: np.ndarray      # which training sample a row came from
    train_pixel_stds: np.ndarray
    val_features: np.ndarray
    val_labels: np.ndarray
    typical_shape: list[int]

    def clean_train(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(features, labels, sample index) of the clean views, in sample order."""
        rows = np.flatnonzero(self.train_clean)
        rows = rows[np.argsort(self.train_index[rows])]
        return self.train_features[rows], self.train_labels[rows], self.train_index[rows]


def cache_features(forward, by_split, *, index: dict[str, int], config: TrainConfig, rng,
                   tracker: Progress | None, clean_only: bool = False) -> FeatureCache:
    """Run the train (clean + augmented views) and val images through ``forward`` once."""
    from mlcore.inference import forward_in_batches

    views = 1 if clean_only else 1 + config.augmented_views
    work = len(by_split["train"]) * views + len(by_split["val"])
    done = 0
    shapes: dict[tuple, int] = {}
    parts: dict[str, list] = {"train": [], "train_labels": [], "views": [], "rows": [], "stds": [],
                              "val": [], "val_labels": []}
    for split, split_views in (("train", views), ("val", 1)):
        for start, chunk in _chunks(by_split[split], config.batch_size):
            # Decoded images live only for one chunk; only their features are kept.
            images = [load_image(sample.path) for sample in chunk]
            labels = [index[sample.label] for sample in chunk]
            if split == "train":
                parts["stds"].extend(frame_statistics(image)[0] for image in images)
                for image in images:
                    shapes[image.shape] = shapes.get(image.shape, 0) + 1
            for view in range(split_views):
                batch = images if view == 0 else [
                    augment_image(image, rng=rng, config=config.augment) for image in images]
                _, features = forward_in_batches(forward, batch, batch_size=config.batch_size)
                parts[split].append(features)
                parts[f"{split}_labels"].extend(labels)
                if split == "train":
                    parts["views"].extend([view] * len(chunk))
                    parts["rows"].extend(range(start, start + len(chunk)))
                done += len(chunk)
                if tracker is not None:
                    tracker.report("features", done / work)
    train_views = np.array(parts["views"], dtype=int)
    return FeatureCache(
        train_features=np.concatenate(parts["train"]), train_labels=np.array(parts["train_labels"]),
        train_clean=train_views == 0, train_views=train_views, train_index=np.array(parts["rows"], dtype=int),
        train_pixel_stds=np.array(parts["stds"]), val_features=np.concatenate(parts["val"]),
        val_labels=np.array(parts["val_labels"]), typical_shape=list(max(shapes, key=shapes.get)))


def _chunks(items: Sequence, size: int):
    for start, chunk in zip(range(0, len(items), size), batched(items, size)):
        yield start, chunk
