"""Scoring with a trained anomaly model: ``AnomalyModel.load(model_dir).score(images)``.

An image's patch features (``features.py``) are compared with the memory of good patches
(``index.py``); each patch's distance to its nearest good patch makes an (h, w) grid, smoothed
into the anomaly map (``maps.py``). The image score is the map's peak (or the largest patch
distance, as the artefact says); ``anomaly_score`` is that divided by the calibrated threshold,
so above 1 is anomalous and the scale reads the same for every model, as ``ood_score`` does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlcore.anomaly import maps as anomaly_maps
from mlcore.artefact import ANOMALY_FEATURES_FILE, ANOMALY_KIND, ANOMALY_MEMORY_FILE, CONFIG_FILE, MODEL_FILE
from mlcore.io import ImageReadError, as_image_array, load_image

FORMAT = 1
PATCH_MAX = "patch_max"


class AnomalyModelError(ValueError):
    """The folder is missing, is not an anomaly model, or is incomplete."""


@dataclass
class AnomalyResult:
    anomaly_score: float                   # image score / threshold; above 1 is anomalous
    anomalous: bool
    map: np.ndarray | None = None          # (H, W) uint8 at the image's size, brighter = less like good
    map_values: np.ndarray | None = None   # the same map in distance units (the threshold's scale)

    def to_dict(self) -> dict:
        return {"anomaly_score": round(float(self.anomaly_score), 6), "anomalous": bool(self.anomalous)}

    def png(self) -> bytes:
        if self.map is None:
            raise ValueError("scored without maps=True")
        return anomaly_maps.png_bytes(self.map)


class PatchScorer:
    """Images -> (h, w) grids of nearest-good-patch distances; shared by training and serving."""

    def __init__(self, *, feature_model, index, batch_size: int):
        from mlcore.anomaly.features import compile_patch_forward

        self.index = index
        self.batch_size = int(batch_size)
        self._forward = compile_patch_forward(feature_model)

    def features(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """(h, w, D) patch features per image, batched among images of the same shape."""
        out: list[np.ndarray | None] = [None] * len(images)
        by_shape: dict[tuple, list[int]] = {}
        for position, image in enumerate(images):
            by_shape.setdefault(np.shape(image), []).append(position)
        for positions in by_shape.values():
            for start in range(0, len(positions), self.batch_size):
                chunk = positions[start:start + self.batch_size]
                grids = self._forward(np.stack([images[i] for i in chunk]))
                for position, grid in zip(chunk, grids):
                    out[position] = grid
        return out

    def distances(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        grids = self.features(images)
        if not grids:
            return []
        height, width, dim = grids[0].shape
        flat = self.index.distances(np.stack(grids).reshape(-1, dim))
        return list(flat.reshape(len(grids), height, width))


class AnomalyModel:
    """A loaded anomaly artefact; keep one per process and call ``score`` for every batch."""

    def __init__(self, *, model_dir: Path, config: dict, scorer: PatchScorer, calibration_scores: np.ndarray):
        self.model_dir = model_dir
        self.config = config
        self.scorer = scorer
        self.threshold = float(config["threshold"])
        self.map_black = float(config["map"]["black"])
        self.input_shape = tuple(config["backbone"]["input_shape"])
        self.map_sigma = float(config["score"]["map_sigma"])
        self.image_score_rule = config["score"]["image_score"]
        self.calibration_scores = np.asarray(calibration_scores)  # held-out good images' raw scores, sorted

    @classmethod
    def load(cls, model_dir: str | Path, *, batch_size: int | None = None) -> "AnomalyModel":
        from mlcore.anomaly.features import load_feature_model
        from mlcore.anomaly.index import PatchIndex

        model_dir = Path(model_dir)
        config = read_anomaly_config(model_dir)
        with np.load(model_dir / ANOMALY_MEMORY_FILE) as stored:
            if not {"memory", "calibration_scores"} <= set(stored.files):
                raise AnomalyModelError(f"{model_dir / ANOMALY_MEMORY_FILE} lacks the memory or the calibration scores")
            memory, calibration_scores = stored["memory"], stored["calibration_scores"]
        index = PatchIndex(memory, method=config["memory"]["nn_method"])
        scorer = PatchScorer(feature_model=load_feature_model(model_dir / ANOMALY_FEATURES_FILE), index=index,
                             batch_size=batch_size or config["training"]["config"]["batch_size"])
        return cls(model_dir=model_dir, config=config, scorer=scorer, calibration_scores=calibration_scores)

    def threshold_for(self, false_alarm_rate: float):
        """The ``Calibration`` the same held-out good images give for another false-alarm rate
        (raw units, like ``threshold``): a person may trade misses for false alarms without retraining."""
        from mlcore.anomaly.calibration import calibrate_threshold

        return calibrate_threshold(self.calibration_scores, false_alarm_rate=false_alarm_rate)

    def score(self, images: Sequence[np.ndarray], *, maps: bool = False) -> list[AnomalyResult]:
        """One result per image (uint8, (H, W) or (H, W, 3), any size); ``maps`` adds each map."""
        arrays = [as_image_array(image) for image in images]
        results = []
        for image, grid in zip(arrays, self.scorer.distances(arrays)):
            smooth = anomaly_maps.smooth_map(grid, input_shape=self.input_shape, sigma=self.map_sigma)
            raw = image_score(grid, rule=self.image_score_rule, input_shape=self.input_shape, sigma=self.map_sigma,
                              smooth=smooth)
            result = AnomalyResult(anomaly_score=raw / self.threshold, anomalous=raw > self.threshold)
            if maps:
                values = anomaly_maps.at_image_size(smooth, image_shape=image.shape[:2])
                result.map_values = values
                result.map = anomaly_maps.map_to_uint8(values, low=self.map_black, threshold=self.threshold)
            results.append(result)
        return results

    def score_files(self, paths: Sequence[str | Path], *, maps: bool = False) -> list[AnomalyResult | ImageReadError]:
        """Like ``score`` for files; an unreadable file gives its ``ImageReadError`` in its place."""
        loaded: list[np.ndarray | ImageReadError] = []
        for path in paths:
            try:
                loaded.append(load_image(path))
            except ImageReadError as error:
                loaded.append(error)
        readable = [item for item in loaded if not isinstance(item, ImageReadError)]
        scored = iter(self.score(readable, maps=maps))
        return [item if isinstance(item, ImageReadError) else next(scored) for item in loaded]


def image_score(grid: np.ndarray, *, rule: str, input_shape: tuple[int, int], sigma: float,
                smooth: np.ndarray | None = None) -> float:
    """An image's raw score (distance units) from its patch-distance grid: the largest patch
    distance, or the peak of the smoothed map (``smooth`` when already computed)."""
    if rule == PATCH_MAX:
        return float(np.max(grid))
    if smooth is None:
        smooth = anomaly_maps.smooth_map(grid, input_shape=input_shape, sigma=sigma)
    return float(smooth.max())


def read_anomaly_config(model_dir: str | Path) -> dict:
    """config.json of an anomaly model folder, or ``AnomalyModelError`` saying what the folder is."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise AnomalyModelError(f"model folder not found: {model_dir}")
    config_path = model_dir / CONFIG_FILE
    if not config_path.is_file():
        raise AnomalyModelError(f"{model_dir} is not an anomaly model folder (no {CONFIG_FILE}); "
                                "make one with: python -m mlcore anomaly-train")
    try:
        config = json.loads(config_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AnomalyModelError(f"{config_path} cannot be read: {error}") from None
    kind = config.get("kind") if isinstance(config, dict) else None
    if kind != ANOMALY_KIND:
        what = "a classifier model folder" if (model_dir / MODEL_FILE).is_file() else f"a model of kind {kind!r}"
        raise AnomalyModelError(f"{model_dir} is {what}, not an anomaly model; score it with "
                                "python -m mlcore predict, or train one with python -m mlcore anomaly-train")
    if config.get("format") != FORMAT:
        raise AnomalyModelError(f"{model_dir} is an anomaly model of format {config.get('format')!r}; "
                                f"this mlcore reads format {FORMAT}")
    missing = [name for name in (ANOMALY_FEATURES_FILE, ANOMALY_MEMORY_FILE) if not (model_dir / name).is_file()]
    if missing:
        raise AnomalyModelError(f"{model_dir} is an incomplete anomaly model: {', '.join(missing)} missing")
    return config
