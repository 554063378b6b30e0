"""Step 6a: metrics on the held-out split, with the review rule applied as serving applies it,
and the validation curves per-class decision thresholds are chosen from."""

from __future__ import annotations

import numpy as np

from mlcore.artefact import REVIEW_REASONS, review_reasons_for
from mlcore.io import batched, load_image
from mlcore.training.config import TrainConfig
from mlcore.training.progress import Progress


def evaluate_split(forward, ood, samples, *, classes, config: TrainConfig, tracker: Progress) -> dict:
    from mlcore.evaluation import evaluate
    from mlcore.inference import forward_in_batches

    probabilities, features_ratio, frame_ratio = [], [], []
    for done, chunk in enumerate(batched(samples, config.batch_size), start=1):
        images = [load_image(sample.path) for sample in chunk]
        batch_probabilities, features = forward_in_batches(forward, images, batch_size=config.batch_size)
        parts = ood.parts(features=features, images=images)
        probabilities.append(batch_probabilities)
        features_ratio.append(parts.feature)
        frame_ratio.append(parts.frame)
        tracker.report("evaluate", 0.9 * done * config.batch_size / len(samples))
    probabilities = np.concatenate(probabilities)
    metrics = evaluate(classes=classes, true_labels=[s.label for s in samples], probabilities=probabilities)
    metrics["review"] = review_summary(probabilities, np.concatenate(features_ratio), np.concatenate(frame_ratio),
                                       config=config)
    return metrics


def review_summary(probabilities: np.ndarray, feature_ratio: np.ndarray, frame_ratio: np.ndarray, *,
                   config: TrainConfig) -> dict:
    """Shares of images that pass the OOD check, need review, and per review reason."""
    reasons = [review_reasons_for(p, feature_score=f, frame_score=b,
                                  confidence_threshold=config.confidence_threshold,
                                  margin_threshold=config.margin_threshold)
               for p, f, b in zip(probabilities, feature_ratio, frame_ratio)]
    count = max(len(reasons), 1)
    return {"ood_pass_rate": float(np.mean(np.maximum(feature_ratio, frame_ratio) <= 1.0)),
            "needs_review_rate": sum(bool(r) for r in reasons) / count,
            "reasons": {code: sum(code in r for r in reasons) / count for code in REVIEW_REASONS}}


def validation_threshold_curves(model, cache, *, classes, config: TrainConfig) -> dict:
    """The per-class decision-threshold curves on the validation split (``mlcore.thresholds``)
    and the default thresholds; the head runs on the cached validation descriptors, so this
    needs no further pass through the backbone."""
    from mlcore.model import head_only
    from mlcore.thresholds import CURVE_STEP, default_thresholds, threshold_curves

    probabilities = head_only(model).predict(cache.val_features, batch_size=256, verbose=0)
    return {"split": "val", "images": int(len(cache.val_labels)), "step": CURVE_STEP,
            "defaults": default_thresholds(classes, confidence_threshold=config.confidence_threshold),
            "curves": threshold_curves(probabilities, cache.val_labels, classes=classes)}
