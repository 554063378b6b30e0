"""Two model versions side by side on the same labelled images (pure Python and NumPy).

``compare`` takes each version's predicted label and confidence per image and returns the
JSON-ready comparison the registry shows: per-class precision/recall/F1 of both and their
deltas (second minus first), both confusion matrices over the union of classes and their
difference, and the indices of the images where the two predictions differ.

Classes are the union of what both versions know plus any true label neither knows. A class
only one version knows is marked (``known_by``); the version that does not know it has no
metrics for it (``None``), and its deltas are ``None`` too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mlcore.evaluation import confusion_matrix, metrics_from_confusion

METRICS = ("precision", "recall", "f1")


def union_classes(first_classes: Sequence[str], second_classes: Sequence[str], labels: Sequence[str] = ()) -> list[str]:
    """The first version's classes in its order, then the second's new ones, then unknown true labels."""
    seen: dict[str, None] = {}
    for name in [*first_classes, *second_classes, *sorted(set(labels))]:
        seen.setdefault(name, None)
    return list(seen)


def disagreements(first_predictions: Sequence[str], second_predictions: Sequence[str]) -> list[int]:
    """Indices of the images where the two versions predict different classes."""
    if len(first_predictions) != len(second_predictions):
        raise ValueError("the two prediction lists differ in length")
    return [i for i, (a, b) in enumerate(zip(first_predictions, second_predictions)) if a != b]


def _known_by(name: str, first: set[str], second: set[str]) -> str:
    if name in first and name in second:
        return "both"
    if name in first:
        return "first"
    return "second" if name in second else "neither"


def _delta(first: float | None, second: float | None) -> float | None:
    return None if first is None or second is None else second - first


def compare(*, labels: Sequence[str], first_predictions: Sequence[str], first_classes: Sequence[str],
            second_predictions: Sequence[str], second_classes: Sequence[str]) -> dict:
    """Per-class metrics of both versions, deltas (second - first), confusion matrices, disagreements."""
    if not len(labels) == len(first_predictions) == len(second_predictions):
        raise ValueError("labels and the two prediction lists must have the same length")
    classes = union_classes(first_classes, second_classes, labels)
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted({p for p in [*first_predictions, *second_predictions] if p not in index})
    if unknown:
        raise ValueError(f"predictions of classes neither version knows: {', '.join(unknown)}")
    y_true = np.array([index[label] for label in labels], dtype=int)
    matrices, scores = [], []
    for predictions in (first_predictions, second_predictions):
        y_pred = np.array([index[p] for p in predictions], dtype=int)
        matrix = confusion_matrix(y_true=y_true, y_pred=y_pred, num_classes=len(classes))
        matrices.append(matrix)
        scores.append(metrics_from_confusion(matrix, classes))
    first_known, second_known = set(first_classes), set(second_classes)
    per_class = {}
    for name in classes:
        known_by = _known_by(name, first_known, second_known)
        first = {m: scores[0]["per_class"][name][m] for m in METRICS} if name in first_known else None
        second = {m: scores[1]["per_class"][name][m] for m in METRICS} if name in second_known else None
        per_class[name] = {
            "known_by": known_by,
            "support": scores[0]["per_class"][name]["support"],
            "first": first,
            "second": second,
            "delta": {m: _delta(first and first[m], second and second[m]) for m in METRICS}
            if first and second else None,
        }
    return {
        "classes": classes,
        "images": len(labels),
        "accuracy": {"first": scores[0]["accuracy"], "second": scores[1]["accuracy"],
                     "delta": scores[1]["accuracy"] - scores[0]["accuracy"]},
        "per_class": per_class,
        "confusion_matrices": {"first": matrices[0].tolist(), "second": matrices[1].tolist(),
                               "difference": (matrices[1] - matrices[0]).tolist()},
        "disagreements": disagreements(first_predictions, second_predictions),
    }
