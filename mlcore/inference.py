"""Serving a trained artefact: ``Classifier.load(dir).predict(images)``.

Images go to the model as they are (uint8, any size, 1 or 3 channels): the adapter layers
inside the model do all preprocessing. Images of equal shape are batched together; one
forward pass returns probabilities and the features the OOD check needs. Each answer says
whether it needs a person and why (``review_reasons``, see ``mlcore.artefact``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mlcore.artefact import (
    CONFIG_FILE,
    DEFAULT_CONFIDENCE_THRESHOLD,
    DETECTION_CONFIG_FILE,
    DETECTION_FILE,
    DEFAULT_MARGIN_THRESHOLD,
    OOD_FILE,
    REASON_BLANK_FRAME,
    review_reasons_for,
)
from mlcore.detection import BoxDecoding
from mlcore.io import as_image_array, load_image
from mlcore.model import load_keras_model, read_classes, read_json, with_features
from mlcore.ood import MAX_SCORE, OodDetector, OodParts, load_detector
from mlcore.thresholds import thresholds_in_class_order

Forward = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class PredictionResult:
    label: str
    confidence: float
    probabilities: dict[str, float]
    needs_review: bool
    ood_score: float
    review_reasons: list[str] = field(default_factory=list)
    # Where the defects are (mlcore.detection.DetectedBox.to_dict()), best first; empty when
    # the version has no detection head.
    boxes: list[dict] = field(default_factory=list)
    # What the frame check found when it flagged the frame (blank_frame): dark, saturated or
    # uniform (mlcore.ood.FRAME_ISSUES); None otherwise.
    frame_issue: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def compile_forward(model, detection_head=None) -> Forward:
    """A traced function that accepts any image shape once: (probabilities, features), and with
    ``detection_head`` also the detection map, from one pass through the backbone."""
    import tensorflow as tf

    dual = with_features(model, detection_head)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, None], tf.float32)])
    def forward(images):
        return tuple(dual(images, training=False))

    def run(batch: np.ndarray) -> tuple[np.ndarray, ...]:
        batch = np.asarray(batch, dtype=np.float32)
        if batch.ndim == 3:  # (N, H, W) grayscale -> explicit channel axis
            batch = batch[..., None]
        return tuple(output.numpy() for output in forward(tf.constant(batch)))

    return run


def forward_in_batches(forward: Forward, images: Sequence[np.ndarray], *,
                       batch_size: int) -> tuple[np.ndarray, ...]:
    """Run images through ``forward`` in batches of equal shape; each of its outputs (probabilities,
    features, and the detection map where there is one) stacked in input order."""
    if not images:
        return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
    by_shape: dict[tuple, list[int]] = {}
    for index, image in enumerate(images):
        by_shape.setdefault(np.shape(image), []).append(index)
    rows: list[tuple | None] = [None] * len(images)
    for indices in by_shape.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start:start + batch_size]
            outputs = forward(np.stack([images[i] for i in chunk]))
            for row, index in enumerate(chunk):
                rows[index] = tuple(output[row] for output in outputs)
    return tuple(np.stack(column) for column in zip(*rows))


class Classifier:
    """A loaded model version: classes, backbone facts, thresholds and the Keras model."""

    def __init__(self, *, model, classes: list[str], config: dict, ood: OodDetector,
                 model_dir: str, batch_size: int = 32, runtime: str = "auto", detection=None):
        self.model = model
        # (head model, its class names, how its map becomes boxes) when the version can say where
        # the defects are.
        self.detection_head, self.detection_classes, self.box_decoding = (
            detection if detection is not None else (None, [], None))
        self.classes = classes
        self.config = config
        self.ood = ood
        self.model_dir = model_dir
        self.batch_size = batch_size
        self.backbone = config["backbone"]["name"]
        self.weight_source = config["backbone"]["weight_source"]
        review = config.get("review") or {}
        self.confidence_threshold = float(review.get("confidence_threshold", DEFAULT_CONFIDENCE_THRESHOLD))
        # Artefacts from before the margin rule reviewed on confidence alone.
        self.margin_threshold = float(review.get("margin_threshold", 0.0 if review else DEFAULT_MARGIN_THRESHOLD))
        from mlcore.serving import serving_forward

        # "auto": the verified TFLite copy for the common image shape when the artefact has one.
        self._forward, self.runtime = serving_forward(
            model_dir=model_dir, config=config, num_classes=len(classes),
            general=compile_forward(model, self.detection_head), runtime=runtime,
            detection=self.detection_head is not None)

    @classmethod
    def load(cls, model_dir: str | Path, *, batch_size: int = 32, runtime: str = "auto") -> "Classifier":
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise FileNotFoundError(f"model folder not found: {model_dir}")
        classes = read_classes(model_dir)
        config = read_json(model_dir / CONFIG_FILE)
        model = load_keras_model(model_dir)
        if model.outputs[0].shape[-1] != len(classes):
            raise ValueError(f"model has {model.outputs[0].shape[-1]} outputs but "
                             f"classes.json lists {len(classes)} classes")
        try:
            ood = load_detector(model_dir / OOD_FILE)
        except (OSError, ValueError) as error:
            version = config.get("mlcore_version", "unknown")
            raise ValueError(f"model folder {model_dir} (written by mlcore {version}) has no usable "
                             f"OOD detector: {error}") from None
        return cls(model=model, classes=classes, config=config, ood=ood, model_dir=str(model_dir),
                   batch_size=batch_size, runtime=runtime, detection=load_detection_head(model_dir))

    def predict_parts(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, OodParts]:
        """(probabilities (N, K), the feature and frame halves of the OOD score) for uint8 images."""
        probabilities, _, parts, _ = self._run(images)
        return probabilities, parts

    def predict_arrays(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities (N, K), ood_scores (N,)) for uint8 images."""
        probabilities, parts = self.predict_parts(images)
        return probabilities, parts.combined

    def predict(self, images: Sequence[np.ndarray]) -> list[PredictionResult]:
        return self.predict_with_features(images)[0]

    def predict_with_features(self, images: Sequence[np.ndarray], *,
                              class_thresholds: Mapping[str, float] | None = None,
                              ) -> tuple[list[PredictionResult], np.ndarray]:
        """The answers and each image's descriptor (N, D): the vector the OOD memory compares,
        useful for finding look-alike images. ``class_thresholds`` (class name -> confidence
        threshold) overrides the artefact's global threshold for the classes it names."""
        probabilities, features, parts, maps = self._run(images)
        ordered = self.thresholds_in_order(class_thresholds)
        issues = parts.frame_issues or (None,) * len(probabilities)
        results = [self._result(p, feature, frame, ordered, frame_issue=issue)
                   for p, feature, frame, issue in zip(probabilities, parts.feature, parts.frame, issues)]
        if maps is not None:
            results = [replace(result, boxes=[box.to_dict()
                                              for box in self.box_decoding.decode(grid, self.detection_classes)])
                       for result, grid in zip(results, maps)]
        return results, features

    def _run(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, OodParts, np.ndarray | None]:
        images = [as_image_array(image) for image in images]
        if not images:
            empty = np.zeros(0)
            return (np.zeros((0, len(self.classes))), np.zeros((0, 0), np.float32),
                    OodParts(feature=empty, frame=empty), None)
        probabilities, features, *maps = forward_in_batches(self._forward, images, batch_size=self.batch_size)
        return probabilities, features, self.ood.parts(features=features, images=images), (maps[0] if maps else None)

    def predict_files(self, paths: Sequence[str | Path]) -> list[PredictionResult]:
        return self.predict([load_image(path) for path in paths])

    def thresholds_in_order(self, class_thresholds: Mapping[str, float] | None) -> list[float] | None:
        """Per-class thresholds in the model's class order (None: the global one for all)."""
        if not class_thresholds:
            return None
        return thresholds_in_class_order(self.classes, class_thresholds, confidence_threshold=self.confidence_threshold)

    def reasons(self, probabilities: np.ndarray, *, feature_score: float, frame_score: float,
                class_thresholds: Sequence[float] | None = None) -> list[str]:
        """Why one prediction needs a person (empty: it does not), by the artefact's thresholds
        (``class_thresholds``: per class in model order, from ``thresholds_in_order``)."""
        return review_reasons_for(probabilities, feature_score=feature_score, frame_score=frame_score,
                                  confidence_threshold=self.confidence_threshold,
                                  margin_threshold=self.margin_threshold, class_thresholds=class_thresholds)

    def _result(self, probabilities: np.ndarray, feature_score: float, frame_score: float,
                class_thresholds: Sequence[float] | None = None, *, frame_issue: str | None = None) -> PredictionResult:
        best = int(np.argmax(probabilities))
        reasons = self.reasons(probabilities, feature_score=feature_score, frame_score=frame_score,
                               class_thresholds=class_thresholds)
        return PredictionResult(
            label=self.classes[best],
            confidence=float(probabilities[best]),
            probabilities={name: float(p) for name, p in zip(self.classes, probabilities)},
            needs_review=bool(reasons),
            ood_score=float(min(max(feature_score, frame_score), MAX_SCORE)),
            review_reasons=reasons,
            frame_issue=frame_issue if REASON_BLANK_FRAME in reasons else None,
        )


class LoadedDetection(NamedTuple):
    head: object                 # the Keras head: backbone maps -> detection map
    classes: list[str]
    decoding: BoxDecoding


def load_detection_head(model_dir: str | Path) -> LoadedDetection | None:
    """(head model, class names, its decoding) from an artefact's detection files, or None without them."""
    import keras

    import mlcore.detection  # noqa: F401 -- registers the head's custom layers

    model_dir = Path(model_dir)
    if not (model_dir / DETECTION_FILE).is_file():
        return None
    facts = read_json(model_dir / DETECTION_CONFIG_FILE)
    return LoadedDetection(keras.saving.load_model(model_dir / DETECTION_FILE, compile=False), list(facts["classes"]),
                           BoxDecoding.from_facts(facts))
