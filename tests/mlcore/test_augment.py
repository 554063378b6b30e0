import numpy as np
import pytest

from mlcore.augment import AugmentConfig, augment_image, corrupt, gaussian_blur, illumination_gradient


@pytest.fixture
def surface():
    return np.random.default_rng(1).integers(30, 220, size=(40, 40)).astype(np.uint8)


def test_augmented_view_keeps_shape_and_uint8_range(surface):
    rng = np.random.default_rng(0)
    for _ in range(20):
        view = augment_image(surface, rng=rng)
        assert view.shape == surface.shape
        assert view.min() >= 0 and view.max() <= 255


def test_augmentation_is_repeatable_for_a_seed_and_varies_between_draws(surface):
    first = augment_image(surface, rng=np.random.default_rng(7))
    again = augment_image(surface, rng=np.random.default_rng(7))
    other = augment_image(surface, rng=np.random.default_rng(8))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_non_square_frames_keep_their_orientation():
    frame = np.zeros((20, 30), np.uint8)
    rng = np.random.default_rng(0)
    assert {augment_image(frame, rng=rng).shape for _ in range(20)} == {(20, 30)}


def test_colour_frames_are_augmented_per_pixel_not_collapsed():
    frame = np.random.default_rng(2).integers(0, 255, size=(16, 16, 3)).astype(np.uint8)
    assert augment_image(frame, rng=np.random.default_rng(0), config=AugmentConfig()).shape == (16, 16, 3)


def test_illumination_gradient_darkens_left_and_brightens_right():
    lit = illumination_gradient(np.full((10, 50), 100.0), amplitude=0.4, angle=0.0)
    assert lit[:, 0].mean() == pytest.approx(60.0)
    assert lit[:, -1].mean() == pytest.approx(140.0)


def test_blur_keeps_mean_and_lowers_contrast(surface):
    blurred = gaussian_blur(surface, sigma=1.5)
    assert blurred.mean() == pytest.approx(surface.mean(), rel=0.02)
    assert blurred.std() < 0.7 * surface.std()


def test_corruptions_return_uint8_and_change_the_image(surface):
    for kind in ("gaussian_noise", "gaussian_blur", "illumination_gradient"):
        corrupted = corrupt(surface, kind=kind, rng=np.random.default_rng(0))
        assert corrupted.dtype == np.uint8 and corrupted.shape == surface.shape
        assert np.abs(corrupted.astype(int) - surface).mean() > 1.0
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt(surface, kind="fog", rng=np.random.default_rng(0))
