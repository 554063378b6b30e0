"""Per-class decision thresholds: the validation curve and the one review rule that uses them."""

import numpy as np
import pytest

from mlcore.artefact import REASON_LOW_CONFIDENCE, review_reasons_for
from mlcore.thresholds import CURVE_THRESHOLDS, default_thresholds, threshold_curves, thresholds_in_class_order

CLASSES = ["crack", "stain"]


def test_curve_grid_runs_from_zero_to_one():
    assert CURVE_THRESHOLDS[0] == 0.0 and CURVE_THRESHOLDS[-1] == 1.0
    assert all(b > a for a, b in zip(CURVE_THRESHOLDS, CURVE_THRESHOLDS[1:]))


def test_curve_gives_precision_and_share_auto_accepted_per_class():
    # Four predicted crack (confidences 0.9, 0.8, 0.7 right, 0.55 wrong), one predicted stain.
    probabilities = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.55, 0.45], [0.2, 0.8]])
    truth = [0, 0, 0, 1, 1]
    curves = threshold_curves(probabilities, truth, classes=CLASSES, thresholds=[0.0, 0.6, 0.75, 0.95])
    crack = curves["crack"]
    assert crack["predicted"] == 4
    assert crack["thresholds"] == [0.0, 0.6, 0.75, 0.95]
    assert crack["auto_accept"] == [1.0, 0.75, 0.5, 0.0]
    assert crack["precision"] == [0.75, 1.0, 1.0, None]  # nothing accepted: no precision
    assert curves["stain"]["predicted"] == 1 and curves["stain"]["precision"][:2] == [1.0, 1.0]


def test_a_class_never_predicted_has_no_share():
    curves = threshold_curves(np.array([[0.9, 0.1]]), [0], classes=CLASSES, thresholds=[0.5])
    assert curves["stain"] == {"thresholds": [0.5], "precision": [None], "auto_accept": [None], "predicted": 0}


def test_curve_refuses_mismatched_shapes():
    with pytest.raises(ValueError):
        threshold_curves(np.zeros((2, 3)), [0, 1], classes=CLASSES)
    with pytest.raises(ValueError):
        threshold_curves(np.zeros((2, 2)), [0], classes=CLASSES)


def test_defaults_are_the_global_threshold_and_order_follows_the_classes():
    assert default_thresholds(CLASSES, confidence_threshold=0.6) == {"crack": 0.6, "stain": 0.6}
    assert thresholds_in_class_order(CLASSES, {"stain": 0.3}, confidence_threshold=0.6) == [0.6, 0.3]
    assert thresholds_in_class_order(CLASSES, None, confidence_threshold=0.6) == [0.6, 0.6]


@pytest.mark.parametrize("probabilities, class_thresholds, low", [
    ([0.7, 0.3], None, False),            # global 0.6: accepted
    ([0.7, 0.3], [0.9, 0.6], True),       # crack's own 0.9: to review
    ([0.3, 0.7], [0.9, 0.6], False),      # stain predicted: stain's 0.6 applies, not crack's
    ([0.3, 0.7], [0.5, 0.75], True),
    ([0.55, 0.45], [0.5, 0.5], True),     # the margin rule still applies (0.1 < 0.2)
])
def test_review_rule_uses_the_predicted_class_threshold(probabilities, class_thresholds, low):
    reasons = review_reasons_for(probabilities, feature_score=0.0, frame_score=0.0, confidence_threshold=0.6,
                                 margin_threshold=0.2,
                                 class_thresholds=class_thresholds)
    assert (REASON_LOW_CONFIDENCE in reasons) is low


def test_review_rule_refuses_thresholds_of_another_length():
    with pytest.raises(ValueError):
        review_reasons_for([0.7, 0.3], feature_score=0.0, frame_score=0.0, class_thresholds=[0.5])
