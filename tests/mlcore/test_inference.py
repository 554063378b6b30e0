import numpy as np
import pytest


def test_prediction_carries_label_probabilities_review_flag_and_ood_score(tiny_classifier, tiny_tools):
    image = tiny_tools.surface("spots", np.random.default_rng(21))
    (result,) = tiny_classifier.predict([image])
    assert result.label in tiny_tools.classes
    assert set(result.probabilities) == set(tiny_tools.classes)
    assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert result.confidence == pytest.approx(max(result.probabilities.values()))
    assert isinstance(result.needs_review, bool) and result.ood_score >= 0.0


def test_each_tiny_surface_gets_its_own_label(tiny_classifier, tiny_tools):
    rng = np.random.default_rng(24)
    labels = [r.label for r in tiny_classifier.predict([tiny_tools.surface(c, rng) for c in tiny_tools.classes])]
    assert labels == list(tiny_tools.classes)


def test_blank_frame_needs_review(tiny_classifier):
    results = tiny_classifier.predict([np.full((32, 32), 128, np.uint8), np.zeros((48, 64, 3), np.uint8)])
    assert [r.needs_review for r in results] == [True, True]
    assert all(r.ood_score > 1.0 for r in results)


def test_batched_prediction_matches_one_at_a_time(tiny_classifier, tiny_tools):
    rng = np.random.default_rng(22)
    images = [tiny_tools.surface(label, rng) for label in tiny_tools.classes * 2]
    images.append(np.repeat(images[0][..., None], 3, axis=-1)[:30, :28])  # another shape, RGB
    together = tiny_classifier.predict(images)
    alone = [tiny_classifier.predict([image])[0] for image in images]
    for batched, single in zip(together, alone):
        assert batched.label == single.label
        assert batched.ood_score == pytest.approx(single.ood_score, rel=1e-4)
        for name in tiny_tools.classes:
            assert batched.probabilities[name] == pytest.approx(single.probabilities[name], abs=1e-5)


def test_low_confidence_alone_sends_a_prediction_to_review(tiny_classifier, tiny_tools):
    image = tiny_tools.surface("spots", np.random.default_rng(23))
    (result,) = tiny_classifier.predict([image])
    threshold = tiny_classifier.confidence_threshold
    try:
        tiny_classifier.confidence_threshold = 1.01
        assert tiny_classifier.predict([image])[0].needs_review is True
        tiny_classifier.confidence_threshold = 0.0
        assert tiny_classifier.predict([image])[0].needs_review is (result.ood_score > 1.0)
    finally:
        tiny_classifier.confidence_threshold = threshold


def test_classifier_exposes_backbone_and_weight_source(tiny_classifier, tiny_tools):
    assert tiny_classifier.classes == list(tiny_tools.classes)
    assert tiny_classifier.backbone == "efficientnet_lite0"
    assert tiny_classifier.weight_source["kind"] == "imagenet"
    assert tiny_classifier.config["ood"]["threshold"] == pytest.approx(tiny_classifier.ood.threshold)
