import keras
import numpy as np
import pytest

from mlcore.layers import ChannelsToRGB, ResizeToSquare


def adapt(images, size=16):
    return np.asarray(ChannelsToRGB()(ResizeToSquare(size=size)(images)))


def test_grayscale_is_repeated_into_three_identical_channels():
    gray = np.random.default_rng(0).integers(0, 255, (2, 20, 30, 1)).astype(np.float32)
    rgb = adapt(gray)
    assert rgb.shape == (2, 16, 16, 3)
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])
    np.testing.assert_allclose(rgb.mean(), gray.mean(), rtol=0.05)


def test_colour_channels_pass_through_unchanged_at_target_size():
    colour = np.random.default_rng(1).integers(0, 255, (1, 16, 16, 3)).astype(np.float32)
    np.testing.assert_allclose(adapt(colour), colour, atol=1e-3)


def test_alpha_channel_is_dropped():
    rgba = np.concatenate([np.full((1, 16, 16, 3), 50.0), np.full((1, 16, 16, 1), 255.0)], axis=-1)
    np.testing.assert_allclose(adapt(rgba.astype(np.float32)), 50.0, atol=1e-3)


@pytest.mark.parametrize("layer", [ResizeToSquare(size=24, antialias=False), ChannelsToRGB()])
def test_adapter_layers_survive_serialisation(layer):
    rebuilt = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(rebuilt) is type(layer)
    assert rebuilt.get_config() == layer.get_config()
