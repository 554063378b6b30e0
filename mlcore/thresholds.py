"""Per-class decision thresholds: the validation curve an ML admin picks them from.

A prediction of class *c* is auto-accepted when its top probability reaches *c*'s threshold
(and the rest of the review rule in ``mlcore.artefact`` passes). For each class and each
threshold on a fixed grid, the curve says how many of the validation images predicted as *c*
would be auto-accepted (``auto_accept``) and how many of those are truly *c* (``precision``).
Pure numpy; no TensorFlow, no Django.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

CURVE_STEP = 0.05
CURVE_THRESHOLDS = tuple(round(i * CURVE_STEP, 2) for i in range(int(round(1 / CURVE_STEP)) + 1))  # 0.00..1.00


def threshold_curves(probabilities: np.ndarray, true_labels: Sequence[int], *, classes: Sequence[str],
                     thresholds: Sequence[float] = CURVE_THRESHOLDS) -> dict[str, dict]:
    """Per class: ``{"thresholds", "precision", "auto_accept", "predicted"}``.

    ``probabilities`` is (N, K) in the order of ``classes``; ``true_labels`` the class index of
    each row. ``precision[i]`` is None where no prediction of the class reaches ``thresholds[i]``
    (nothing auto-accepted, nothing to be right about); ``auto_accept[i]`` is None when the split
    has no prediction of the class at all.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    true_labels = np.asarray(true_labels, dtype=np.int64)
    if probabilities.ndim != 2 or probabilities.shape[1] != len(classes):
        raise ValueError(f"probabilities must be (N, {len(classes)}), got {probabilities.shape}")
    if len(true_labels) != len(probabilities):
        raise ValueError("one true label per row of probabilities is needed")
    predicted = probabilities.argmax(axis=1) if len(probabilities) else np.zeros(0, np.int64)
    confidence = probabilities.max(axis=1) if len(probabilities) else np.zeros(0)
    curves = {}
    for index, name in enumerate(classes):
        mine = predicted == index
        count = int(mine.sum())
        precision, share = [], []
        for threshold in thresholds:
            accepted = mine & (confidence >= threshold)
            kept = int(accepted.sum())
            precision.append(round(float((true_labels[accepted] == index).mean()), 4) if kept else None)
            share.append(round(kept / count, 4) if count else None)
        curves[name] = {"thresholds": [float(t) for t in thresholds], "precision": precision,
                        "auto_accept": share, "predicted": count}
    return curves


def default_thresholds(classes: Sequence[str], *, confidence_threshold: float) -> dict[str, float]:
    """The thresholds a new version starts with: the global confidence threshold for every class
    (so a new version reviews exactly as before until an ML admin decides otherwise)."""
    return {name: float(confidence_threshold) for name in classes}


def thresholds_in_class_order(classes: Sequence[str], thresholds: Mapping[str, float] | None, *,
                              confidence_threshold: float) -> list[float]:
    """The threshold of each class in ``classes`` order; classes not in ``thresholds`` get the global one."""
    thresholds = thresholds or {}
    return [float(thresholds.get(name, confidence_threshold)) for name in classes]
