"""Foreign-image detection: is this frame like anything the model was trained on?

Max softmax is not enough (a classifier is often confidently wrong far from its data), so
the score is a Mahalanobis distance in the pooled backbone-feature space: class-conditional
means with one shared covariance, shrunk towards a scaled identity (Ledoit-Wolf) because
1280 dimensions are many for a few thousand vectors. The threshold is the distance that a
chosen share (95 %) of clean validation images stay under.

A frame check runs beside it: a camera that returns a blank, nearly blank or mostly clipped
frame is flagged from its pixels, whatever features the backbone makes of it.

``ood_score`` is the larger of distance / threshold and the frame check's ratio, so a score
above 1 means "foreign" and the scale reads the same for every model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLIP_LOW, CLIP_HIGH = 2, 253
MAX_SCORE = 1000.0


@dataclass
class OodDetector:
    whitening: np.ndarray       # (D, D): x @ whitening has identity shared covariance
    whitened_means: np.ndarray  # (K, D)
    threshold: float            # distance at the calibrated pass rate
    pass_rate: float
    shrinkage: float
    frame_std_floor: float      # pixel standard deviation below which a frame is blank
    clipped_share_limit: float  # share of clipped pixels above which a frame is saturated

    @classmethod
    def fit(cls, *, features: np.ndarray, labels: np.ndarray, num_classes: int,
            pixel_stds: np.ndarray) -> "OodDetector":
        features = np.asarray(features, dtype=np.float64)
        labels = np.asarray(labels)
        means = np.stack([
            features[labels == k].mean(axis=0) if np.any(labels == k) else features.mean(axis=0)
            for k in range(num_classes)
        ])
        centred = features - means[labels]
        covariance, shrinkage = ledoit_wolf(centred)
        whitening = inverse_square_root(covariance)
        # A quarter of the faintest training texture: low-contrast NEU classes (crazing)
        # must pass, a lens cap or an unlit strip must not.
        floor = 0.25 * float(np.percentile(pixel_stds, 1)) if len(pixel_stds) else 1.0
        return cls(
            whitening=whitening.astype(np.float32),
            whitened_means=(means @ whitening).astype(np.float32),
            threshold=float("nan"), pass_rate=float("nan"), shrinkage=float(shrinkage),
            frame_std_floor=max(floor, 0.5), clipped_share_limit=0.5,
        )

    def calibrate(self, *, features: np.ndarray, pass_rate: float) -> None:
        distances = self.distances(features)
        self.threshold = float(np.quantile(distances, pass_rate))
        self.pass_rate = float(pass_rate)

    def distances(self, features: np.ndarray) -> np.ndarray:
        """Distance to the nearest class mean, in units of the shared spread."""
        whitened = np.asarray(features, dtype=np.float32) @ self.whitening
        squared = (
            np.sum(whitened ** 2, axis=1, keepdims=True)
            - 2.0 * whitened @ self.whitened_means.T
            + np.sum(self.whitened_means ** 2, axis=1)[None, :]
        )
        return np.sqrt(np.maximum(squared.min(axis=1), 0.0))

    def scores(self, *, features: np.ndarray, images: list[np.ndarray]) -> np.ndarray:
        feature_ratio = self.distances(features) / max(self.threshold, 1e-12)
        frame_ratio = np.array([self.frame_ratio(image) for image in images], dtype=np.float64)
        return np.minimum(np.maximum(feature_ratio, frame_ratio), MAX_SCORE)

    def frame_ratio(self, image: np.ndarray) -> float:
        std, clipped = frame_statistics(image)
        return max(self.frame_std_floor / max(std, 1e-6), clipped / self.clipped_share_limit)

    def save(self, path: str | Path) -> None:
        np.savez_compressed(
            path, whitening=self.whitening, whitened_means=self.whitened_means,
            scalars=np.array([self.threshold, self.pass_rate, self.shrinkage,
                              self.frame_std_floor, self.clipped_share_limit]),
        )

    @classmethod
    def load(cls, path: str | Path) -> "OodDetector":
        with np.load(path) as data:
            threshold, pass_rate, shrinkage, floor, clipped = data["scalars"].tolist()
            return cls(whitening=data["whitening"], whitened_means=data["whitened_means"],
                       threshold=threshold, pass_rate=pass_rate, shrinkage=shrinkage,
                       frame_std_floor=floor, clipped_share_limit=clipped)

    def summary(self) -> dict:
        """The numbers worth recording in config.json (the matrices live in ood.npz)."""
        return {
            "method": "mahalanobis_shared_covariance_ledoit_wolf",
            "threshold": self.threshold, "validation_pass_rate": self.pass_rate,
            "shrinkage": self.shrinkage, "frame_std_floor": self.frame_std_floor,
            "clipped_share_limit": self.clipped_share_limit,
            "score": "max(distance / threshold, frame check); > 1 means foreign",
        }


def frame_statistics(image: np.ndarray) -> tuple[float, float]:
    """(pixel standard deviation, share of clipped pixels) of a uint8 frame, gray levels."""
    gray = np.asarray(image, dtype=np.float32)
    if gray.ndim == 3:
        gray = gray.mean(axis=-1)
    clipped = np.mean((gray <= CLIP_LOW) | (gray >= CLIP_HIGH))
    return float(gray.std()), float(clipped)


def ledoit_wolf(centred: np.ndarray) -> tuple[np.ndarray, float]:
    """Shrunk covariance of centred rows and the shrinkage weight in [0, 1]."""
    n, dims = centred.shape
    sample = centred.T @ centred / n
    target_scale = np.trace(sample) / dims
    distance = np.sum(sample ** 2) - 2 * target_scale * np.trace(sample) + dims * target_scale ** 2
    # sum_k ||x_k x_k^T - S||_F^2 == sum_k ||x_k||^4 - n ||S||_F^2, without D x D per row.
    spread = (np.sum(np.sum(centred ** 2, axis=1) ** 2) - n * np.sum(sample ** 2)) / n ** 2
    shrinkage = float(np.clip(spread / max(distance, 1e-12), 0.0, 1.0))
    covariance = (1 - shrinkage) * sample + shrinkage * target_scale * np.eye(dims)
    return covariance, shrinkage


def inverse_square_root(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    values = np.maximum(values, values.max() * 1e-9)
    return (vectors / np.sqrt(values)) @ vectors.T
