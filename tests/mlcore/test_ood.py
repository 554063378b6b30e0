import numpy as np
import pytest

from mlcore.artefact import review_reasons
from mlcore.ood import (
    LEGACY_MAHALANOBIS,
    TEXTURE_KNN,
    FrameCheck,
    MahalanobisDetector,
    TextureKnnDetector,
    frame_statistics,
    load_detector,
)


@pytest.fixture
def clustered():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 5, size=(3, 16))
    labels = np.repeat(np.arange(3), 400)
    features = centres[labels] + rng.normal(0, 1, size=(len(labels), 16))
    return features, labels, centres, rng


def fitted(features, pass_rate=0.95, calibration=None):
    detector = TextureKnnDetector.fit(features=features, pixel_stds=np.full(10, 20.0), layers=["a", "b"])
    detector.calibrate(features=features if calibration is None else calibration, pass_rate=pass_rate)
    return detector


def textured(count):
    return [np.random.default_rng(i).integers(0, 255, (8, 8)).astype(np.uint8) for i in range(count)]


def test_calibration_lets_the_chosen_share_of_fresh_in_domain_features_pass(clustered):
    features, labels, centres, rng = clustered
    validation = centres[labels] + rng.normal(0, 1, size=features.shape)
    detector = fitted(features, calibration=validation)
    fresh = centres[labels] + rng.normal(0, 1, size=features.shape)
    assert np.mean(detector.distances(fresh) <= detector.threshold) == pytest.approx(0.95, abs=0.03)


def test_features_far_from_every_training_vector_score_above_one_and_near_ones_below(clustered):
    features, labels, centres, rng = clustered
    detector = fitted(features, calibration=centres[labels] + rng.normal(0, 1, size=features.shape))
    far = centres.mean(axis=0) + 30 + rng.normal(0, 1, size=(20, 16))
    near = features[:20] + rng.normal(0, 0.05, size=(20, 16))
    assert np.all(detector.scores(features=far, images=textured(20)) > 1.0)
    assert np.all(detector.scores(features=near, images=textured(20)) < 1.0)


def test_a_new_cluster_between_known_ones_is_foreign_even_when_a_class_mean_is_close():
    # Two known clusters; a novel one sits at their midpoint: a class-mean distance with a
    # broad shared covariance calls it typical, the nearest-neighbour memory does not.
    rng = np.random.default_rng(2)
    known = np.concatenate([rng.normal(-4, 0.3, (300, 8)), rng.normal(4, 0.3, (300, 8))])
    detector = fitted(known, calibration=np.concatenate([rng.normal(-4, 0.3, (100, 8)), rng.normal(4, 0.3, (100, 8))]))
    novel = rng.normal(0, 0.3, (50, 8))
    assert np.mean(detector.scores(features=novel, images=textured(50)) > 1.0) == 1.0


def test_memory_is_capped_by_a_seeded_sample():
    features = np.random.default_rng(0).normal(size=(500, 4))
    first = TextureKnnDetector.fit(features=features, pixel_stds=np.ones(3), layers=[], max_memory=100, seed=3)
    again = TextureKnnDetector.fit(features=features, pixel_stds=np.ones(3), layers=[], max_memory=100, seed=3)
    assert first.memory.shape == (100, 4)
    np.testing.assert_array_equal(first.memory, again.memory)


def test_blank_and_saturated_frames_fail_the_frame_check_whatever_their_features(clustered):
    features, _, _, _ = clustered
    detector = fitted(features)
    check = detector.frame_check
    lively = np.random.default_rng(3).integers(40, 200, (32, 32)).astype(np.uint8)
    assert check.ratio(lively) < 1.0
    assert check.ratio(np.full((32, 32), 128, np.uint8)) > 1.0
    assert check.ratio(np.where(np.eye(32) > 0, 100, 255).astype(np.uint8)) > 1.0
    assert frame_statistics(np.full((4, 4, 3), 255, np.uint8)) == (0.0, 1.0)
    parts = detector.parts(features=features[:1], images=[np.full((32, 32), 128, np.uint8)])
    assert parts.feature[0] < 1.0 < parts.frame[0] and parts.combined[0] == min(parts.frame[0], 1000.0)


def test_saved_detector_scores_like_the_original(clustered, tmp_path):
    features, _, _, _ = clustered
    detector = fitted(features)
    detector.save(tmp_path / "ood.npz")
    loaded = load_detector(tmp_path / "ood.npz")
    assert isinstance(loaded, TextureKnnDetector) and loaded.method == TEXTURE_KNN
    assert loaded.layers == ["a", "b"] and loaded.threshold == detector.threshold
    # The memory is stored as float16: distances agree to that precision.
    np.testing.assert_allclose(loaded.distances(features[:50] + 0.5), detector.distances(features[:50] + 0.5),
                               rtol=2e-3, atol=2e-3)


def test_an_artefact_of_the_earlier_mahalanobis_method_still_loads_and_scores(tmp_path):
    # The file layout mlcore 0.1 wrote: whitening matrix, whitened class means, five scalars.
    np.savez_compressed(tmp_path / "ood.npz", whitening=np.eye(2, dtype=np.float32),
                        whitened_means=np.array([[0.0, 0.0], [10.0, 0.0]], np.float32),
                        scalars=np.array([2.0, 0.95, 0.1, 3.0, 0.5]))
    legacy = load_detector(tmp_path / "ood.npz")
    assert isinstance(legacy, MahalanobisDetector) and legacy.method == LEGACY_MAHALANOBIS
    lively = textured(2)
    scores = legacy.scores(features=np.array([[1.0, 0.0], [5.0, 5.0]]), images=lively)
    assert scores[0] == pytest.approx(0.5) and scores[1] > 1.0


def test_a_file_of_no_known_method_is_refused_by_name(tmp_path):
    np.savez_compressed(tmp_path / "ood.npz", something=np.zeros(3))
    with pytest.raises(ValueError, match="no OOD detector"):
        load_detector(tmp_path / "ood.npz")


def test_frame_check_floor_follows_the_faintest_training_texture():
    assert FrameCheck.fit(np.array([4.0, 40.0, 80.0])).std_floor == pytest.approx(0.25 * np.percentile([4, 40, 80], 1))
    assert FrameCheck.fit(np.array([0.1])).std_floor == 0.5


@pytest.mark.parametrize(("feature", "frame", "confidence", "margin", "expected"), [
    (0.5, 0.2, 0.99, 0.98, []),
    (1.5, 0.2, 0.99, 0.98, ["foreign"]),
    (1.5, 3.0, 0.99, 0.98, ["blank_frame"]),
    (0.5, 0.2, 0.55, 0.30, ["low_confidence"]),
    (0.5, 0.2, 0.70, 0.10, ["low_confidence"]),
    (2.0, 0.2, 0.40, 0.05, ["foreign", "low_confidence"]),
])
def test_review_reasons_name_each_rule_that_fired(feature, frame, confidence, margin, expected):
    assert review_reasons(feature_score=feature, frame_score=frame, confidence=confidence, margin=margin,
                          confidence_threshold=0.6, margin_threshold=0.2) == expected
