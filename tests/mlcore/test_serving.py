"""The verified TFLite copy used for serving: same answers as Keras, used only when it matches."""

import json
from pathlib import Path

import numpy as np
import pytest

from mlcore.inference import Classifier
from mlcore.model import CONFIG_FILE
from mlcore.serving import SERVING_FILE, serving_export


def _images(tiny_tools, count=8, seed=3):
    rng = np.random.default_rng(seed)
    return [tiny_tools.surface(tiny_tools.classes[i % len(tiny_tools.classes)], rng) for i in range(count)]


def test_training_writes_a_verified_tflite_copy_and_loading_uses_it(tiny_trained):
    model_dir = Path(tiny_trained[0].model_dir)
    serving = json.loads((model_dir / CONFIG_FILE).read_text())["serving"]
    assert serving["runtime"] == "tflite", serving
    assert (model_dir / SERVING_FILE).is_file()
    assert serving["max_probability_difference"] <= 1e-3
    assert serving["image_shape"][:2] == [32, 32]
    assert Classifier.load(model_dir).runtime == "tflite"
    assert Classifier.load(model_dir, runtime="keras").runtime == "keras"


def test_tflite_and_keras_runtimes_give_the_same_predictions(tiny_trained, tiny_tools):
    fast = Classifier.load(tiny_trained[0].model_dir)
    reference = Classifier.load(tiny_trained[0].model_dir, runtime="keras")
    images = _images(tiny_tools)
    got, got_ood = fast.predict_arrays(images)
    expected, expected_ood = reference.predict_arrays(images)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    np.testing.assert_allclose(got_ood, expected_ood, rtol=1e-3, atol=1e-3)


def test_other_image_shapes_still_go_through_keras(tiny_trained, tiny_tools):
    fast = Classifier.load(tiny_trained[0].model_dir)
    reference = Classifier.load(tiny_trained[0].model_dir, runtime="keras")
    rgb = [np.stack([image] * 3, axis=-1) for image in _images(tiny_tools, count=3)]
    larger = [np.kron(image, np.ones((3, 3), dtype=np.uint8)) for image in _images(tiny_tools, count=3)]
    for batch in (rgb, larger):
        np.testing.assert_allclose(fast.predict_arrays(batch)[0], reference.predict_arrays(batch)[0], atol=1e-5)


def test_a_copy_that_disagrees_with_keras_is_discarded(tiny_trained, tiny_tools, tmp_path):
    import shutil

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_trained[0].model_dir, model_dir)
    reference = Classifier.load(model_dir, runtime="keras")

    def skewed(batch):
        probabilities, features = reference._forward(batch)
        return probabilities[:, ::-1], features

    serving = serving_export(model_dir=model_dir, sample_images=_images(tiny_tools), keras_forward=skewed,
                             num_classes=len(reference.classes))
    assert serving["runtime"] == "keras" and "did not match" in serving["reason"]
    assert not (model_dir / SERVING_FILE).exists()
    assert Classifier.load(model_dir).runtime == "keras"


def test_shrinking_large_frames_is_exact_in_the_tflite_copy(tiny_trained, tiny_tools, tmp_path):
    """Camera frames larger than the backbone input are shrunk with antialiasing; the TFLite copy
    expresses that resize as two matrices and must match Keras."""
    import shutil

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_trained[0].model_dir, model_dir)
    reference = Classifier.load(model_dir, runtime="keras")
    large = [np.kron(image, np.ones((4, 4), dtype=np.uint8)) for image in _images(tiny_tools)]  # 128 px > 64 px input
    serving = serving_export(model_dir=model_dir, sample_images=large, keras_forward=reference._forward,
                             num_classes=len(reference.classes))
    assert serving["runtime"] == "tflite", serving
    assert serving["image_shape"] == [128, 128, 1]
    np.testing.assert_allclose(Classifier.load(model_dir).predict_arrays(large)[0],
                               reference.predict_arrays(large)[0], atol=1e-4)


@pytest.mark.parametrize("samples", [[], "mixed"])
def test_without_one_common_sample_shape_serving_stays_on_keras(tiny_trained, tiny_tools, tmp_path, samples):
    import shutil

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_trained[0].model_dir, model_dir)
    (model_dir / SERVING_FILE).unlink()
    images = [] if samples == [] else [_images(tiny_tools)[0], np.zeros((40, 40), np.uint8)]
    reference = Classifier.load(model_dir, runtime="keras")
    serving = serving_export(model_dir=model_dir, sample_images=images, keras_forward=reference._forward,
                             num_classes=len(reference.classes))
    assert serving["runtime"] == "keras"
    assert not (model_dir / SERVING_FILE).exists()


def test_the_serving_copy_runs_on_litert_not_the_deprecated_tf_lite_interpreter():
    from mlcore.serving import interpreter_class

    assert interpreter_class().__module__.startswith("ai_edge_litert")
