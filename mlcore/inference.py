"""Serving a trained artefact: ``Classifier.load(dir).predict(images)``.

Images go to the model as they are (uint8, any size, 1 or 3 channels): the adapter layers
inside the model do all preprocessing. Images of equal shape are batched together; one
forward pass returns probabilities and the pooled features the OOD check needs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mlcore.io import as_image_array, load_image
from mlcore.model import CONFIG_FILE, OOD_FILE, load_keras_model, read_classes, read_json, with_features
from mlcore.ood import OodDetector

Forward = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class PredictionResult:
    label: str
    confidence: float
    probabilities: dict[str, float]
    needs_review: bool
    ood_score: float

    def to_dict(self) -> dict:
        return asdict(self)


def compile_forward(model) -> Forward:
    """A traced (probabilities, features) function that accepts any image shape once."""
    import tensorflow as tf

    dual = with_features(model)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, None], tf.float32)])
    def forward(images):
        probabilities, features = dual(images, training=False)
        return probabilities, features

    def run(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        batch = np.asarray(batch, dtype=np.float32)
        if batch.ndim == 3:  # (N, H, W) grayscale -> explicit channel axis
            batch = batch[..., None]
        probabilities, features = forward(tf.constant(batch))
        return probabilities.numpy(), features.numpy()

    return run


def forward_in_batches(forward: Forward, images: Sequence[np.ndarray], *,
                       batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Run images through ``forward`` in batches of equal shape, results in input order."""
    by_shape: dict[tuple, list[int]] = {}
    for index, image in enumerate(images):
        by_shape.setdefault(np.shape(image), []).append(index)
    probabilities: list[np.ndarray | None] = [None] * len(images)
    features: list[np.ndarray | None] = [None] * len(images)
    for indices in by_shape.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start:start + batch_size]
            batch_probabilities, batch_features = forward(np.stack([images[i] for i in chunk]))
            for row, index in enumerate(chunk):
                probabilities[index] = batch_probabilities[row]
                features[index] = batch_features[row]
    if not images:
        return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
    return np.stack(probabilities), np.stack(features)


class Classifier:
    """A loaded model version: classes, backbone facts, thresholds and the Keras model."""

    def __init__(self, *, model, classes: list[str], config: dict, ood: OodDetector,
                 model_dir: str, batch_size: int = 32, runtime: str = "auto"):
        self.model = model
        self.classes = classes
        self.config = config
        self.ood = ood
        self.model_dir = model_dir
        self.batch_size = batch_size
        self.backbone = config["backbone"]["name"]
        self.weight_source = config["backbone"]["weight_source"]
        self.confidence_threshold = float(config["review"]["confidence_threshold"])
        from mlcore.serving import serving_forward

        # "auto": the verified TFLite copy for the common image shape when the artefact has one.
        self._forward, self.runtime = serving_forward(
            model_dir=model_dir, config=config, num_classes=len(classes), general=compile_forward(model),
            runtime=runtime)

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
        return cls(model=model, classes=classes, config=config,
                   ood=OodDetector.load(model_dir / OOD_FILE), model_dir=str(model_dir),
                   batch_size=batch_size, runtime=runtime)

    def predict_arrays(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities (N, K), ood_scores (N,)) for uint8 images."""
        images = [as_image_array(image) for image in images]
        probabilities, features = forward_in_batches(self._forward, images, batch_size=self.batch_size)
        if not images:
            return np.zeros((0, len(self.classes))), np.zeros(0)
        return probabilities, self.ood.scores(features=features, images=images)

    def predict(self, images: Sequence[np.ndarray]) -> list[PredictionResult]:
        probabilities, ood_scores = self.predict_arrays(images)
        return [self._result(p, s) for p, s in zip(probabilities, ood_scores)]

    def predict_files(self, paths: Sequence[str | Path]) -> list[PredictionResult]:
        return self.predict([load_image(path) for path in paths])

    def _result(self, probabilities: np.ndarray, ood_score: float) -> PredictionResult:
        best = int(np.argmax(probabilities))
        confidence = float(probabilities[best])
        return PredictionResult(
            label=self.classes[best],
            confidence=confidence,
            probabilities={name: float(p) for name, p in zip(self.classes, probabilities)},
            needs_review=bool(ood_score > 1.0 or confidence < self.confidence_threshold),
            ood_score=float(ood_score),
        )
