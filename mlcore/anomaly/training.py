"""Training an anomaly model from good images only: ``train_anomaly_model(config, good, out_dir=...)``.

1. **scan**: each good image's content hash and size (headers only); byte-identical images count
   once, unreadable files are skipped and named;
2. **split** (``calibration.py``): held-out good images for the threshold, the rest for the memory;
3. **features** (``features.py``): the training images pass the frozen backbone once, batch by
   batch; their patch vectors stream into the coreset (``coreset.py``), so memory stays bounded
   however many images there are;
4. **calibrate**: the held-out images are scored against the memory, and the threshold is the
   conformal quantile at the stated false-alarm rate;
5. **save**: the feature model, the memory and config.json (everything needed to score).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from mlcore.anomaly.calibration import (
    GoodSetTooSmall,
    MIN_TRAIN_IMAGES,
    calibrate_threshold,
    min_calibration_images,
    split_good_images,
)
from mlcore.anomaly.config import AnomalyConfig
from mlcore.artefact import ANOMALY_FEATURES_FILE, ANOMALY_KIND, ANOMALY_MEMORY_FILE, CONFIG_FILE
from mlcore.io import IMAGE_SUFFIXES, ImageReadError, as_image_array, file_sha256, load_image
from mlcore.training.progress import TrainingCancelled

GoodImage = str | Path | np.ndarray
ProgressCallback = Callable[[float, dict], None]
PHASE_SPANS = {"scan": (0.0, 0.05), "features": (0.05, 0.8), "coreset": (0.8, 0.85),
               "calibrate": (0.85, 0.97), "save": (0.97, 1.0)}
log = logging.getLogger(__name__)
LISTED_UNREADABLE = 20  # unreadable files named in config.json (all are counted)

__all__ = ["AnomalyTrainResult", "GoodSetTooSmall", "TrainingCancelled", "find_images", "train_anomaly_model"]


@dataclass
class AnomalyTrainResult:
    model_dir: str
    config: dict                      # what config.json holds
    calibration_scores: list[float] = field(default_factory=list)  # held-out good images, raw units


@dataclass
class _Good:
    item: GoodImage
    key: str
    size: tuple[int, int]  # (height, width)

    @property
    def name(self) -> str:
        return str(self.item) if not isinstance(self.item, np.ndarray) else f"array {self.key[:12]}"

    def load(self) -> np.ndarray:
        return as_image_array(self.item) if isinstance(self.item, np.ndarray) else load_image(self.item)


class _Progress:
    def __init__(self, callback: ProgressCallback | None, should_cancel: Callable[[], bool] | None):
        self.callback, self.should_cancel, self.fraction = callback, should_cancel, 0.0

    def report(self, phase: str, within: float, **info) -> None:
        if self.should_cancel is not None and self.should_cancel():
            raise TrainingCancelled("training was cancelled")
        start, end = PHASE_SPANS[phase]
        self.fraction = max(self.fraction, start + (end - start) * min(max(within, 0.0), 1.0))
        if self.callback is not None:
            self.callback(self.fraction, {"phase": phase, **info})


def find_images(folders: Sequence[str | Path]) -> list[Path]:
    """Image files under each folder, recursively, in a stable order; hidden folders are skipped."""
    found = []
    for folder in folders:
        root = Path(folder)
        if not root.is_dir():
            raise FileNotFoundError(f"good-image folder not found: {root}")
        found.extend(sorted(
            path for path in root.rglob("*")
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
            and not any(part.startswith(".") for part in path.relative_to(root).parts)))
    return found


def train_anomaly_model(config: AnomalyConfig, good: Sequence[GoodImage], *, out_dir: str | Path,
                        progress: ProgressCallback | None = None,
                        should_cancel: Callable[[], bool] | None = None) -> AnomalyTrainResult:
    """Learn what good looks like from ``good`` (file paths or uint8 arrays) and write the model."""
    from mlcore.anomaly.coreset import StreamingCoreset
    from mlcore.anomaly.features import build_feature_model, input_shape_for, layer_stride
    from mlcore.anomaly.index import PatchIndex
    from mlcore.anomaly.model import PatchScorer, image_score

    bar = _Progress(progress, should_cancel)
    started = time.perf_counter()
    distinct, duplicates, unreadable = _scan(good, bar)
    split = split_good_images([g.key for g in distinct], false_alarm_rate=config.false_alarm_rate,
                              calibration_share=config.calibration_share,
                              max_calibration=config.max_calibration_images, seed=config.seed)
    train_set = [distinct[i] for i in split.train]
    calibration_set = [distinct[i] for i in split.calibration]
    input_shape = input_shape_for([g.size for g in train_set], input_size=config.input_size,
                                  multiple=max(layer_stride(config.backbone, name) for name in config.layers))
    feature_model, weight_source = build_feature_model(
        backbone=config.backbone, layers=config.layers, input_shape=input_shape,
        neighbourhood=config.neighbourhood, cache_dir=config.cache_dir)
    scanned = time.perf_counter()

    dim = int(feature_model.output.shape[-1])
    cells = _grid(input_shape, {name: layer_stride(config.backbone, name) for name in config.layers})
    coreset = StreamingCoreset(dim=dim, ratio=config.coreset_ratio, max_size=config.max_memory, seed=config.seed,
                               expected=len(train_set) * cells[0] * cells[1])
    scorer = PatchScorer(feature_model=feature_model, index=None, batch_size=config.batch_size)
    learned = 0
    for start in range(0, len(train_set), config.batch_size):
        images = _load_batch(train_set[start:start + config.batch_size], unreadable)
        for grid in scorer.features(images):
            coreset.add(grid.reshape(-1, dim))
        learned += len(images)
        bar.report("features", (start + config.batch_size) / len(train_set), images=learned, of=len(train_set))
    featured = time.perf_counter()
    if learned < MIN_TRAIN_IMAGES:
        raise GoodSetTooSmall(f"only {learned} good training images could be read; at least {MIN_TRAIN_IMAGES} needed")
    memory = coreset.result()
    bar.report("coreset", 1.0, memory=len(memory), patches=coreset.seen)
    cored = time.perf_counter()

    scorer.index = PatchIndex(memory, method=config.nn_method)
    scores, patch_medians = [], []
    for start in range(0, len(calibration_set), config.batch_size):
        images = _load_batch(calibration_set[start:start + config.batch_size], unreadable)
        grids = scorer.distances(images)
        scores.extend(image_score(grid, rule=config.image_score, input_shape=input_shape, sigma=config.map_sigma)
                      for grid in grids)
        patch_medians.extend(float(np.median(grid)) for grid in grids)
        bar.report("calibrate", (start + config.batch_size) / len(calibration_set),
                   images=len(scores), of=len(calibration_set))
    if len(scores) < min_calibration_images(config.false_alarm_rate):
        raise GoodSetTooSmall(f"only {len(scores)} held-out good images could be read; a false-alarm rate of "
                              f"{config.false_alarm_rate:.4g} needs {min_calibration_images(config.false_alarm_rate)}")
    calibration = calibrate_threshold(scores, false_alarm_rate=config.false_alarm_rate)
    calibrated = time.perf_counter()

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    feature_model.save(out / ANOMALY_FEATURES_FILE)
    np.savez_compressed(out / ANOMALY_MEMORY_FILE, memory=memory.astype(np.float32),
                        calibration_scores=np.sort(np.asarray(scores, np.float64)))
    black = float(np.median(patch_medians))
    strides = {name: layer_stride(config.backbone, name) for name in config.layers}
    artefact = {
        "kind": ANOMALY_KIND,
        "format": 1,
        "method": "patch memory: nearest good patch per patch (PatchCore-style), greedy coreset",
        "threshold": calibration.threshold,
        "false_alarm_rate": config.false_alarm_rate,
        "backbone": {"name": config.backbone, "layers": list(config.layers), "layer_strides": strides,
                     "input_shape": list(input_shape), "patch_grid": list(_grid(input_shape, strides)),
                     "feature_dim": dim, "neighbourhood": config.neighbourhood,
                     "weight_source": weight_source.to_dict()},
        "memory": {"size": int(len(memory)), "dim": dim, "patches_seen": int(coreset.seen),
                   "coreset_ratio": config.coreset_ratio, "max_memory": config.max_memory,
                   "nn_method": config.nn_method, "nn_library": "faiss-cpu"},
        "score": {"image_score": config.image_score, "map_sigma": config.map_sigma,
                  "anomaly_score": "image score / threshold; above 1 is anomalous"},
        "map": {"black": black, "mid_grey": calibration.threshold, "white": 2 * calibration.threshold - black,
                "rule": "8-bit, brighter = less like good: black the median patch of held-out good images, "
                        "128 the threshold, 255 twice as far"},
        "calibration": calibration.to_dict(),
        "training": {
            "config": config.to_dict(),
            "good_images": {"given": len(good), "distinct": len(distinct), "duplicates": duplicates,
                            "unreadable": len(unreadable), "train": learned, "calibration": len(scores)},
            "unreadable_files": unreadable[:LISTED_UNREADABLE],
            "seconds": {"scan_and_build": round(scanned - started, 2), "features": round(featured - scanned, 2),
                        "coreset": round(cored - featured, 2), "calibrate": round(calibrated - cored, 2)},
        },
        "versions": _versions(),
    }
    artefact["training"]["seconds"]["total"] = round(time.perf_counter() - started, 2)
    (out / CONFIG_FILE).write_text(json.dumps(artefact, indent=2) + "\n")
    bar.report("save", 1.0)
    return AnomalyTrainResult(model_dir=str(out), config=artefact, calibration_scores=scores)


def _scan(good: Sequence[GoodImage], bar: _Progress) -> tuple[list[_Good], int, list[str]]:
    distinct: dict[str, _Good] = {}
    unreadable: list[str] = []
    for position, item in enumerate(good):
        try:
            entry = _describe(item)
        except ImageReadError as error:
            unreadable.append(str(error))
            continue
        distinct.setdefault(entry.key, entry)
        if position % 200 == 0:
            bar.report("scan", position / max(len(good), 1), images=position, of=len(good))
    readable = len(good) - len(unreadable)
    return list(distinct.values()), readable - len(distinct), unreadable


def _describe(item: GoodImage) -> _Good:
    if isinstance(item, np.ndarray):
        array = as_image_array(item)
        digest = hashlib.sha256(repr(array.shape).encode() + array.tobytes()).hexdigest()
        return _Good(item=array, key=digest, size=array.shape[:2])
    path = Path(item)
    try:
        with Image.open(path) as picture:
            width, height = picture.size
        return _Good(item=path, key=file_sha256(path), size=(height, width))
    except FileNotFoundError:
        raise ImageReadError(f"image not found: {path}") from None
    except (OSError, ValueError) as error:
        raise ImageReadError(f"cannot read image {path}: {error}") from None


def _load_batch(entries: Sequence[_Good], unreadable: list[str]) -> list[np.ndarray]:
    images = []
    for entry in entries:
        try:
            images.append(entry.load())
        except ImageReadError as error:
            unreadable.append(str(error))
            log.warning("skipped %s", error)
    return images


def _grid(input_shape: tuple[int, int], strides: dict[str, int]) -> tuple[int, int]:
    finest = min(strides.values())
    return -(-input_shape[0] // finest), -(-input_shape[1] // finest)


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    import mlcore

    found = {"mlcore": mlcore.__version__}
    for package in ("tensorflow-cpu", "keras", "faiss-cpu", "numpy", "scipy"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found
