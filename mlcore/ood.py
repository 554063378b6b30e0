"""Foreign and novel images: is this frame like anything the model was trained on?

Max softmax is not enough (a classifier is often confidently wrong far from its data), and a
distance in the classifier's own top features is not enough either: those 1280 ImageNet
dimensions describe objects, and a new defect type on the same steel lands close to an old
class. Surfaces are textures, so the detector looks at texture statistics at several depths.

**Method** (``multi_depth_texture_knn``): the backbone's activations at four depths (for
EfficientNet-Lite0 the last block of stages 3-6, strides 8 to 32) are averaged over the
frame, each depth's vector is scaled to unit length (so no depth dominates) and the four are
joined. That descriptor is compared with a memory of the training images' descriptors; the
score is the distance to the nearest one. The threshold is the distance that a chosen share
(95 %) of clean validation images stay under. Measured side by side with Mahalanobis
distance on the top features, k-NN on the top features, patch-level memories (the way
industrial anomaly detectors score the most unusual patch) and several layer mixes, it was
the one that separated held-out NEU classes, another steel line's defects and defect-free
metal at once (figures in docs/benchmarks.md). The layers are frozen ImageNet weights in
every training phase, so the descriptor means the same thing for every model.

A frame check runs beside it: a camera that returns a blank, nearly blank or mostly clipped
frame is flagged from its pixels, whatever features the backbone makes of it, and says which
(``frame_issue``): ``dark`` (most pixels black, or an even frame too dark to show anything: unlit,
a covered lens), ``saturated`` (most pixels clipped white: overexposed) or ``uniform`` (an even
frame without texture: a plain sheet, a lens out of focus). A frame clipped at one end while a
real share of its pixels lies in the far quarter of the range is not an exposure fault, since
exposure moves every level the same way: it is a high-contrast scene (print on paper, a label,
the bright patches of NEU's own ``patches`` class), and whether it is steel is the feature
check's question, the one that generalises to any picture that is not an inspection frame.

``ood_score`` is the larger of the two ratios (feature distance / threshold, frame check), so
a score above 1 means "send to a person" and the scale reads the same for every model; the
two parts are kept apart so that a review reason can say which one fired.

Artefacts written before this method (``mahalanobis_shared_covariance_ledoit_wolf`` on the
pooled top features) still load and score as they did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CLIP_LOW, CLIP_HIGH = 2, 253
# A frame clipped at one end is an exposure fault only if almost none of it lies in the far
# quarter of the range: a page of print has several per cent of near-black ink (3 to 9 % for
# 10 to 24 px type), an overexposed frame none.
OPPOSITE_QUARTER_SHARE = 0.02
# An even frame darker than this on average is an unlit one, not a plain sheet.
DARK_MEAN = 48.0
# What the frame check found (PredictionResult.frame_issue); None: nothing.
FRAME_DARK, FRAME_SATURATED, FRAME_UNIFORM = "dark", "saturated", "uniform"
FRAME_ISSUES = (FRAME_DARK, FRAME_SATURATED, FRAME_UNIFORM)
MAX_SCORE = 1000.0
TEXTURE_KNN = "multi_depth_texture_knn"
LEGACY_MAHALANOBIS = "mahalanobis_shared_covariance_ledoit_wolf"
MAX_MEMORY = 30_000


@dataclass(frozen=True)
class OodParts:
    """The two halves of ``ood_score`` for a batch: feature distance ratio and frame check ratio,
    and per image what the frame check found (``FRAME_ISSUES`` or None) when its ratio is > 1."""

    feature: np.ndarray
    frame: np.ndarray
    frame_issues: tuple = ()

    @property
    def combined(self) -> np.ndarray:
        return np.minimum(np.maximum(self.feature, self.frame), MAX_SCORE)


@dataclass
class FrameCheck:
    std_floor: float            # pixel standard deviation below which a frame is blank
    clipped_share_limit: float  # share of clipped pixels above which a frame is saturated

    @classmethod
    def fit(cls, pixel_stds: np.ndarray) -> "FrameCheck":
        # A quarter of the faintest training texture: low-contrast NEU classes (crazing)
        # must pass, a lens cap or an unlit strip must not.
        floor = 0.25 * float(np.percentile(pixel_stds, 1)) if len(pixel_stds) else 1.0
        return cls(std_floor=max(floor, 0.5), clipped_share_limit=0.5)

    def assess(self, image: np.ndarray) -> tuple[float, str | None]:
        """(ratio, issue): ratio > 1 flags the frame, and then ``issue`` says which fault."""
        facts = frame_facts(image)
        # Exposure first: a clipped frame is dark or saturated, whatever its texture.
        dark = facts.dark_share / self.clipped_share_limit if facts.bright_quarter_share < OPPOSITE_QUARTER_SHARE else 0.0
        bright = facts.bright_share / self.clipped_share_limit if facts.dark_quarter_share < OPPOSITE_QUARTER_SHARE else 0.0
        texture = self.std_floor / max(facts.std, 1e-6)
        ratio = max(dark, bright, texture)
        if ratio <= 1.0:
            return ratio, None
        if max(dark, bright) > 1.0:
            return ratio, FRAME_DARK if dark >= bright else FRAME_SATURATED
        return ratio, FRAME_DARK if facts.mean < DARK_MEAN else FRAME_UNIFORM

    def ratio(self, image: np.ndarray) -> float:
        return self.assess(image)[0]

    def ratios(self, images: list[np.ndarray]) -> np.ndarray:
        return np.array([self.ratio(image) for image in images], dtype=np.float64)


class _DistanceScore:
    """``ood_score`` from a detector's ``distances``, ``threshold`` and ``frame_check``."""

    def parts(self, *, features: np.ndarray, images: list[np.ndarray]) -> OodParts:
        feature = self.distances(features) / max(self.threshold, 1e-12) if len(images) else np.zeros(0)
        assessed = [self.frame_check.assess(image) for image in images]
        return OodParts(feature=np.asarray(feature, np.float64),
                        frame=np.array([ratio for ratio, _ in assessed], dtype=np.float64),
                        frame_issues=tuple(issue for _, issue in assessed))

    def scores(self, *, features: np.ndarray, images: list[np.ndarray]) -> np.ndarray:
        return self.parts(features=features, images=images).combined


@dataclass
class TextureKnnDetector(_DistanceScore):
    """Nearest-neighbour distance of multi-depth texture descriptors to the training memory."""

    memory: np.ndarray                      # (M, D) float32 descriptors of training images
    frame_check: FrameCheck
    layers: list[str] = field(default_factory=list)
    threshold: float = float("nan")         # distance at the calibrated pass rate
    pass_rate: float = float("nan")
    method: str = TEXTURE_KNN

    @classmethod
    def fit(cls, *, features: np.ndarray, pixel_stds: np.ndarray, layers: list[str],
            seed: int = 0, max_memory: int = MAX_MEMORY) -> "TextureKnnDetector":
        memory = np.asarray(features, dtype=np.float32)
        if len(memory) > max_memory:
            keep = np.random.default_rng(seed).choice(len(memory), max_memory, replace=False)
            memory = memory[np.sort(keep)]
        return cls(memory=memory, frame_check=FrameCheck.fit(pixel_stds), layers=list(layers))

    def calibrate(self, *, features: np.ndarray, pass_rate: float,
                  extra_distances: np.ndarray | None = None) -> None:
        """Threshold = the ``pass_rate`` quantile of held-out in-domain distances: the validation
        features, plus ``extra_distances`` (training images scored without themselves, see
        ``leave_one_out_distances``), which steadies the quantile when validation is small."""
        distances = self.distances(features)
        if extra_distances is not None and len(extra_distances):
            distances = np.concatenate([distances, np.asarray(extra_distances, np.float32)])
        self.threshold = float(np.quantile(distances, pass_rate))
        self.pass_rate = float(pass_rate)

    def distances(self, features: np.ndarray, *, chunk: int = 1024) -> np.ndarray:
        """Euclidean distance from each row to its nearest training descriptor."""
        if getattr(self, "_memory_norms", None) is None or len(self._memory_norms) != len(self.memory):
            # Squared norms of the memory rows, once per loaded detector rather than per call.
            self._memory_norms = np.sum(np.asarray(self.memory, np.float32) ** 2, axis=1)
        return nearest_distances(features, self.memory, chunk=chunk, memory_norms=self._memory_norms)

    def save(self, path: str | Path) -> None:
        np.savez_compressed(
            path, method=np.array(self.method), layers=np.array(self.layers),
            memory=self.memory.astype(np.float16),
            scalars=np.array([self.threshold, self.pass_rate, self.frame_check.std_floor,
                              self.frame_check.clipped_share_limit]))

    def summary(self) -> dict:
        """The numbers worth recording in config.json (the memory lives in ood.npz)."""
        return {
            "method": self.method, "layers": self.layers, "neighbours": 1,
            "memory_size": int(len(self.memory)), "descriptor_size": int(self.memory.shape[1]),
            "threshold": self.threshold, "validation_pass_rate": self.pass_rate,
            "frame_std_floor": self.frame_check.std_floor,
            "clipped_share_limit": self.frame_check.clipped_share_limit,
            "score": "max(nearest-neighbour distance / threshold, frame check); > 1 means foreign",
        }


@dataclass
class MahalanobisDetector(_DistanceScore):
    """The earlier method, kept so that artefacts written with it load and score unchanged."""

    whitening: np.ndarray       # (D, D): x @ whitening has identity shared covariance
    whitened_means: np.ndarray  # (K, D)
    threshold: float
    pass_rate: float
    shrinkage: float
    frame_check: FrameCheck
    layers: list[str] = field(default_factory=list)  # empty: scores the pooled top features
    method: str = LEGACY_MAHALANOBIS

    def distances(self, features: np.ndarray) -> np.ndarray:
        whitened = np.asarray(features, dtype=np.float32) @ self.whitening
        squared = (np.sum(whitened ** 2, axis=1, keepdims=True) - 2.0 * whitened @ self.whitened_means.T
                   + np.sum(self.whitened_means ** 2, axis=1)[None, :])
        return np.sqrt(np.maximum(squared.min(axis=1), 0.0))

    def summary(self) -> dict:
        return {"method": self.method, "threshold": self.threshold, "validation_pass_rate": self.pass_rate,
                "shrinkage": self.shrinkage, "frame_std_floor": self.frame_check.std_floor,
                "clipped_share_limit": self.frame_check.clipped_share_limit}


OodDetector = TextureKnnDetector | MahalanobisDetector


def load_detector(path: str | Path) -> OodDetector:
    """Read ``ood.npz`` of either method; a file of neither kind is refused by name."""
    with np.load(path) as data:
        if "memory" in data:
            threshold, pass_rate, floor, clipped = data["scalars"].tolist()
            return TextureKnnDetector(
                memory=data["memory"].astype(np.float32), layers=[str(v) for v in data["layers"]],
                frame_check=FrameCheck(std_floor=floor, clipped_share_limit=clipped),
                threshold=threshold, pass_rate=pass_rate, method=str(data["method"]))
        if "whitening" in data:
            threshold, pass_rate, shrinkage, floor, clipped = data["scalars"].tolist()
            return MahalanobisDetector(
                whitening=data["whitening"], whitened_means=data["whitened_means"], threshold=threshold,
                pass_rate=pass_rate, shrinkage=shrinkage,
                frame_check=FrameCheck(std_floor=floor, clipped_share_limit=clipped))
    raise ValueError(f"{path} holds no OOD detector this version of mlcore knows")


def nearest_distances(queries: np.ndarray, memory: np.ndarray, *, query_groups: np.ndarray | None = None,
                      memory_groups: np.ndarray | None = None, chunk: int = 1024,
                      memory_norms: np.ndarray | None = None) -> np.ndarray:
    """Distance from each query row to its nearest memory row, skipping memory rows of the
    query's own group (the views of the same image) when groups are given."""
    queries = np.asarray(queries, dtype=np.float32)
    memory = np.asarray(memory, dtype=np.float32)
    if memory_norms is None:
        memory_norms = np.sum(memory ** 2, axis=1)
    nearest = np.empty(len(queries), np.float32)
    for start in range(0, len(queries), chunk):
        block = queries[start:start + chunk]
        squared = np.sum(block ** 2, axis=1, keepdims=True) - 2.0 * block @ memory.T + memory_norms
        if query_groups is not None:
            squared[query_groups[start:start + chunk, None] == memory_groups[None, :]] = np.inf
        nearest[start:start + chunk] = squared.min(axis=1)
    return np.sqrt(np.maximum(nearest, 0.0))


@dataclass(frozen=True)
class FrameFacts:
    """The pixel facts of one frame (gray levels 0..255) the frame check reads."""

    std: float
    mean: float
    dark_share: float         # clipped black (<= CLIP_LOW)
    bright_share: float       # clipped white (>= CLIP_HIGH)
    dark_quarter_share: float    # the darkest quarter of the range (< 64)
    bright_quarter_share: float  # the brightest quarter (>= 192)


def frame_facts(image: np.ndarray) -> FrameFacts:
    gray = np.asarray(image, dtype=np.float32)
    if gray.ndim == 3:
        gray = gray.mean(axis=-1)
    return FrameFacts(std=float(gray.std()), mean=float(gray.mean()), dark_share=float(np.mean(gray <= CLIP_LOW)),
                      bright_share=float(np.mean(gray >= CLIP_HIGH)), dark_quarter_share=float(np.mean(gray < 64)),
                      bright_quarter_share=float(np.mean(gray >= 192)))


def frame_statistics(image: np.ndarray) -> tuple[float, float]:
    """(pixel standard deviation, share of clipped pixels) of a uint8 frame, gray levels."""
    facts = frame_facts(image)
    return facts.std, facts.dark_share + facts.bright_share
