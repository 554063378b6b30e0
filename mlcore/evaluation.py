"""Classification metrics from predicted probabilities (pure NumPy).

``evaluate`` returns the JSON-ready dict the platform stores and the promotion gate reads:
accuracy, macro_f1, per_class {precision, recall, f1, support}, confusion_matrix (rows =
true class, columns = predicted), classes, ece.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mlcore.io import ClassMismatchError


def evaluate(*, classes: Sequence[str], true_labels: Sequence[str],
             probabilities: np.ndarray, ece_bins: int = 15) -> dict:
    classes = list(classes)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.shape != (len(true_labels), len(classes)):
        raise ValueError(
            f"probabilities shape {probabilities.shape} does not match "
            f"{len(true_labels)} labels x {len(classes)} classes")
    y_true = label_indices(true_labels, classes)
    y_pred = probabilities.argmax(axis=1) if len(y_true) else np.zeros(0, dtype=int)
    confusion = confusion_matrix(y_true=y_true, y_pred=y_pred, num_classes=len(classes))
    metrics = metrics_from_confusion(confusion, classes)
    metrics["ece"] = expected_calibration_error(
        probabilities=probabilities, y_true=y_true, bins=ece_bins)
    metrics["count"] = int(len(y_true))
    return metrics


def label_indices(labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted({label for label in labels if label not in index})
    if unknown:
        raise ClassMismatchError(
            f"labels not known to the model: {', '.join(unknown)} (model classes: {', '.join(classes)})")
    return np.array([index[label] for label in labels], dtype=int)


def confusion_matrix(*, y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    confusion = np.zeros((num_classes, num_classes), dtype=int)
    np.add.at(confusion, (np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)), 1)
    return confusion


def metrics_from_confusion(confusion: np.ndarray, classes: Sequence[str]) -> dict:
    confusion = np.asarray(confusion, dtype=int)
    true_positives = np.diag(confusion).astype(float)
    predicted = confusion.sum(axis=0).astype(float)
    support = confusion.sum(axis=1)
    precision = np.divide(true_positives, predicted, out=np.zeros_like(true_positives), where=predicted > 0)
    recall = np.divide(true_positives, support, out=np.zeros_like(true_positives), where=support > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(denominator), where=denominator > 0)
    total = confusion.sum()
    # Macro-F1 averages over classes that occur in the data or in the predictions, so a
    # class absent from a small evaluation set does not drag the mean to zero.
    present = (support > 0) | (predicted > 0)
    return {
        "accuracy": float(true_positives.sum() / total) if total else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]),
                   "f1": float(f1[i]), "support": int(support[i])}
            for i, name in enumerate(classes)
        },
        "confusion_matrix": confusion.tolist(),
        "classes": list(classes),
    }


def expected_calibration_error(*, probabilities: np.ndarray, y_true: np.ndarray, bins: int = 15) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by bin size."""
    if len(y_true) == 0:
        return 0.0
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == y_true).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            error += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(error)
