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
    threshold, margin = tiny_classifier.confidence_threshold, tiny_classifier.margin_threshold
    try:
        tiny_classifier.confidence_threshold = 1.01
        raised = tiny_classifier.predict([image])[0]
        assert raised.needs_review is True and "low_confidence" in raised.review_reasons
        tiny_classifier.confidence_threshold, tiny_classifier.margin_threshold = 0.0, 0.0
        lowered = tiny_classifier.predict([image])[0]
        assert lowered.needs_review is (result.ood_score > 1.0) and "low_confidence" not in lowered.review_reasons
        tiny_classifier.margin_threshold = 1.01  # the top-2 gap is never above 1
        assert tiny_classifier.predict([image])[0].review_reasons[-1] == "low_confidence"
    finally:
        tiny_classifier.confidence_threshold, tiny_classifier.margin_threshold = threshold, margin


def test_classifier_exposes_backbone_and_weight_source(tiny_classifier, tiny_tools):
    assert tiny_classifier.classes == list(tiny_tools.classes)
    assert tiny_classifier.backbone == "efficientnet_lite0"
    assert tiny_classifier.weight_source["kind"] == "imagenet"
    assert tiny_classifier.config["ood"]["threshold"] == pytest.approx(tiny_classifier.ood.threshold)


def _unlike_any_training_surface():
    """Frames no tiny class resembles: checkerboards, rings, a smooth ramp with blobs."""
    ys, xs = np.mgrid[0:32, 0:32].astype(np.float32)
    frames = [128 + 100 * (((xs // p) + (ys // p)) % 2 * 2 - 1) for p in (2, 4, 8)]
    frames += [128 + 100 * np.sin(np.hypot(xs - 16, ys - 16) * f) for f in (0.8, 1.6)]
    frames += [xs * 8 + 20 * np.sin(xs / 3) * np.cos(ys / 3)]
    return [np.clip(frame, 0, 255).astype(np.uint8) for frame in frames]


def test_a_texture_unlike_the_training_data_is_foreign(tiny_classifier):
    results = tiny_classifier.predict(_unlike_any_training_surface())
    assert all(r.ood_score > 1.0 and "foreign" in r.review_reasons and r.needs_review for r in results), \
        [(r.ood_score, r.review_reasons) for r in results]


def test_fresh_surfaces_like_the_training_ones_are_not_foreign(tiny_classifier, tiny_tools):
    rng = np.random.default_rng(99)
    images = [tiny_tools.surface(name, rng) for name in tiny_tools.classes for _ in range(8)]
    results = tiny_classifier.predict(images)
    # Calibrated so that about 95 % of validation images pass; fresh draws of the same textures too.
    assert np.mean([r.ood_score <= 1.0 for r in results]) >= 0.85
    assert np.mean(["foreign" in r.review_reasons for r in results]) <= 0.15


def test_blank_frames_say_blank_frame_not_foreign(tiny_classifier):
    for result in tiny_classifier.predict([np.zeros((32, 32), np.uint8), np.full((32, 32), 180, np.uint8)]):
        assert result.review_reasons[0] == "blank_frame" and "foreign" not in result.review_reasons


def test_artefact_records_the_ood_method_and_its_layers(tiny_classifier):
    ood = tiny_classifier.config["ood"]
    assert ood["method"] == "multi_depth_texture_knn"
    assert ood["layers"] == tiny_classifier.config["backbone"]["feature_layers"] and len(ood["layers"]) == 4
    assert ood["memory_size"] == len(tiny_classifier.ood.memory) > 0
    assert tiny_classifier.config["review"]["margin_threshold"] == tiny_classifier.margin_threshold


def test_descriptors_come_back_with_the_answers(tiny_classifier, tiny_tools):
    rng = np.random.default_rng(5)
    images = [tiny_tools.surface("spots", rng), tiny_tools.surface("spots", rng), tiny_tools.surface("vertical_stripes", rng)]
    results, features = tiny_classifier.predict_with_features(images)
    assert features.shape == (3, tiny_classifier.ood.memory.shape[1]) and len(results) == 3
    same, other = np.linalg.norm(features[0] - features[1]), np.linalg.norm(features[0] - features[2])
    assert same < other
