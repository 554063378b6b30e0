import numpy as np
import pytest

from mlcore.ood import OodDetector, frame_statistics, ledoit_wolf


@pytest.fixture
def clustered():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 5, size=(3, 16))
    labels = np.repeat(np.arange(3), 400)
    features = centres[labels] + rng.normal(0, 1, size=(len(labels), 16))
    return features, labels, centres, rng


def fitted(features, labels, pass_rate=0.95):
    detector = OodDetector.fit(features=features, labels=labels, num_classes=3, pixel_stds=np.full(10, 20.0))
    detector.calibrate(features=features, pass_rate=pass_rate)
    return detector


def test_calibration_lets_the_chosen_share_of_in_domain_features_pass(clustered):
    features, labels, centres, rng = clustered
    detector = fitted(features, labels)
    fresh = centres[labels] + rng.normal(0, 1, size=features.shape)
    assert np.mean(detector.distances(fresh) <= detector.threshold) == pytest.approx(0.95, abs=0.03)


def test_features_far_from_every_class_score_above_one(clustered):
    features, labels, centres, rng = clustered
    detector = fitted(features, labels)
    far = centres.mean(axis=0) + 30 + rng.normal(0, 1, size=(20, 16))
    textured = [np.random.default_rng(i).integers(0, 255, (8, 8)).astype(np.uint8) for i in range(20)]
    assert np.all(detector.scores(features=far, images=textured) > 1.0)


def test_covariance_shape_matters_not_just_euclidean_distance():
    # Spread along axis 0 is normal; the same Euclidean step along axis 1 is not.
    rng = np.random.default_rng(1)
    features = np.column_stack([rng.normal(0, 10, 2000), rng.normal(0, 0.5, 2000)])
    detector = OodDetector.fit(features=features, labels=np.zeros(2000, int), num_classes=1,
                               pixel_stds=np.full(3, 20.0))
    along, across = detector.distances(np.array([[8.0, 0.0], [0.0, 8.0]]))
    assert across > 5 * along


def test_blank_and_saturated_frames_fail_the_frame_check(clustered):
    features, labels, _, _ = clustered
    detector = fitted(features, labels)
    textured = np.random.default_rng(3).integers(40, 200, (32, 32)).astype(np.uint8)
    assert detector.frame_ratio(textured) < 1.0
    assert detector.frame_ratio(np.full((32, 32), 128, np.uint8)) > 1.0
    assert detector.frame_ratio(np.where(np.eye(32) > 0, 100, 255).astype(np.uint8)) > 1.0
    assert frame_statistics(np.full((4, 4, 3), 255, np.uint8)) == (0.0, 1.0)


def test_saved_detector_scores_like_the_original(clustered, tmp_path):
    features, labels, _, _ = clustered
    detector = fitted(features, labels)
    detector.save(tmp_path / "ood.npz")
    loaded = OodDetector.load(tmp_path / "ood.npz")
    np.testing.assert_allclose(loaded.distances(features[:50]), detector.distances(features[:50]), rtol=1e-5)
    assert loaded.threshold == detector.threshold


def test_ledoit_wolf_shrinks_more_when_samples_are_few():
    rng = np.random.default_rng(0)
    scales = np.linspace(0.2, 3.0, 50)
    _, few = ledoit_wolf(rng.normal(size=(20, 50)) * scales)
    _, many = ledoit_wolf(rng.normal(size=(5000, 50)) * scales)
    assert 0.0 <= many < few <= 1.0
