"""The classifier graph: save/load round trip and preprocessing parity."""

import numpy as np
import pytest

from mlcore.model import CLASS_PROBABILITIES, build_classifier, load_keras_model, with_features


@pytest.fixture(scope="module")
def small_model(lite0_weights_cache_dir):
    import keras

    from mlcore.backbones import build_backbone

    keras.utils.set_random_seed(3)
    backbone = build_backbone("efficientnet_lite0", weights="imagenet", cache_dir=lite0_weights_cache_dir,
                              input_size=32)
    model = build_classifier(backbone=backbone, num_classes=3, dropout=0.2)
    # A random, non-trivial head so that outputs differ between inputs.
    dense = model.get_layer(CLASS_PROBABILITIES)
    kernel, bias = dense.get_weights()
    dense.set_weights([np.random.default_rng(0).normal(0, 5, kernel.shape).astype(np.float32), bias])
    return model


def images_of_mixed_shapes():
    rng = np.random.default_rng(5)
    return [rng.integers(0, 255, (4, 40, 50, 1)).astype(np.float32),
            rng.integers(0, 255, (3, 64, 48, 3)).astype(np.float32),
            rng.integers(0, 255, (2, 32, 32, 1)).astype(np.float32)]


def test_saved_model_reloads_with_the_same_outputs(small_model, tmp_path):
    small_model.save(tmp_path / "model.keras")
    reloaded = load_keras_model(tmp_path)
    for batch in images_of_mixed_shapes():
        expected = small_model.predict(batch, verbose=0)
        np.testing.assert_allclose(reloaded.predict(batch, verbose=0), expected, rtol=1e-5, atol=1e-6)


def test_training_path_and_reloaded_model_preprocess_identically(small_model, tmp_path):
    """Training extracts features through compile_forward; serving reloads model.keras."""
    from mlcore.inference import compile_forward

    small_model.save(tmp_path / "model.keras")
    training_forward = compile_forward(small_model)
    serving = with_features(load_keras_model(tmp_path))
    for batch in images_of_mixed_shapes():
        train_probabilities, train_features = training_forward(batch)
        serve_probabilities, serve_features = (np.asarray(t) for t in serving(batch, training=False))
        np.testing.assert_allclose(serve_features, train_features, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(serve_probabilities, train_probabilities, rtol=1e-4, atol=1e-6)


def test_outputs_depend_on_the_image(small_model):
    rng = np.random.default_rng(9)
    batch = rng.integers(0, 255, (4, 32, 32, 1)).astype(np.float32)
    batch[1] = 0.0
    probabilities = small_model.predict(batch, verbose=0)
    assert probabilities.shape == (4, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert np.abs(probabilities[0] - probabilities[1]).max() > 1e-4


def test_grayscale_and_its_rgb_copy_give_the_same_prediction(small_model):
    gray = np.random.default_rng(4).integers(0, 255, (2, 36, 36, 1)).astype(np.float32)
    rgb = np.repeat(gray, 3, axis=-1)
    np.testing.assert_allclose(small_model.predict(gray, verbose=0), small_model.predict(rgb, verbose=0),
                               rtol=1e-5, atol=1e-6)
