import numpy as np
import pytest

from mlcore.evaluation import evaluate, expected_calibration_error
from mlcore.io import ClassMismatchError

CLASSES = ["a", "b", "c"]


def one_hot(predicted, confidence=0.9):
    rows = np.full((len(predicted), len(CLASSES)), (1 - confidence) / (len(CLASSES) - 1))
    rows[np.arange(len(predicted)), [CLASSES.index(p) for p in predicted]] = confidence
    return rows


def test_hand_made_confusion_gives_hand_computed_metrics():
    true = ["a", "a", "a", "b", "b", "c"]
    predicted = ["a", "a", "b", "b", "b", "a"]
    metrics = evaluate(classes=CLASSES, true_labels=true, probabilities=one_hot(predicted))

    assert metrics["confusion_matrix"] == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    a, b, c = (metrics["per_class"][name] for name in CLASSES)
    assert (a["precision"], a["recall"], a["support"]) == (pytest.approx(2 / 3), pytest.approx(2 / 3), 3)
    assert (b["precision"], b["recall"], b["support"]) == (pytest.approx(2 / 3), pytest.approx(1.0), 2)
    assert b["f1"] == pytest.approx(0.8)
    assert (c["precision"], c["recall"], c["f1"], c["support"]) == (0.0, 0.0, 0.0, 1)
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 0.0) / 3)
    assert metrics["classes"] == CLASSES


def test_ece_of_overconfident_predictions_is_the_confidence_gap():
    # Confidence 0.9 everywhere, right half of the time -> ECE 0.4.
    probabilities = one_hot(["a", "a", "b", "b"], confidence=0.9)
    assert expected_calibration_error(probabilities=probabilities, y_true=np.array([0, 1, 1, 0])) == pytest.approx(0.4)


def test_ece_is_zero_when_confidence_matches_accuracy():
    probabilities = one_hot(["a", "b"], confidence=1.0)
    metrics = evaluate(classes=CLASSES, true_labels=["a", "b"], probabilities=probabilities)
    assert metrics["ece"] == pytest.approx(0.0)
    assert metrics["accuracy"] == 1.0


def test_label_unknown_to_the_model_is_a_class_mismatch():
    with pytest.raises(ClassMismatchError, match="weld_seam"):
        evaluate(classes=CLASSES, true_labels=["a", "weld_seam"], probabilities=one_hot(["a", "b"]))
