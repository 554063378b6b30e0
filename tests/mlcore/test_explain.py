"""Grad-CAM: a heatmap at the image's size, in [0, 1], that points where the class evidence is."""

import numpy as np
import pytest

from mlcore.explain import gradcam


def _bright_square_model(*, last_conv_layer: str = "last_conv"):
    """A classifier built like build_classifier whose class 0 score grows with image brightness.

    Its one-filter 1x1 convolution copies the (normalised) pixel values, so class 0's Grad-CAM
    must follow the bright region and class 1 (negative weight) has no positive evidence.
    """
    import keras

    from mlcore.backbones.contract import NO_WEIGHTS, BuiltBackbone
    from mlcore.model import CLASS_PROBABILITIES, build_classifier

    inputs = keras.Input(shape=(16, 16, 3))
    conv = keras.layers.Conv2D(1, 1, activation="relu", name=last_conv_layer,
                               kernel_initializer=keras.initializers.Constant(1 / 3),
                               bias_initializer="zeros")(inputs)
    backbone = BuiltBackbone(name="toy", model=keras.Model(inputs, conv, name="toy_backbone"),
                             normalization=keras.layers.Rescaling(1 / 255, name="to_unit"), input_size=16,
                             weight_source=NO_WEIGHTS, last_conv_layer=last_conv_layer)
    model = build_classifier(backbone=backbone, num_classes=2, dropout=0.0)
    model.get_layer(CLASS_PROBABILITIES).set_weights([np.array([[4.0, -4.0]], np.float32), np.zeros(2, np.float32)])
    return model


def _image_with_bright_square() -> np.ndarray:
    image = np.full((48, 64), 10, np.uint8)
    image[8:24, 40:56] = 250
    return image


def test_heatmap_has_the_image_size_and_values_in_0_1():
    heat = gradcam(_bright_square_model(), _image_with_bright_square(), last_conv_layer="last_conv")
    assert heat.shape == (48, 64)
    assert heat.dtype == np.float32
    assert 0.0 <= heat.min() and heat.max() <= 1.0
    assert heat.max() == pytest.approx(1.0, abs=1e-3)


def test_heatmap_follows_the_region_that_raises_the_class_score():
    heat = gradcam(_bright_square_model(), _image_with_bright_square(), class_index=0, last_conv_layer="last_conv")
    inside = heat[10:22, 42:54].mean()
    outside = heat[30:, :30].mean()
    assert inside > 0.8
    assert outside < 0.2


def test_a_class_without_positive_evidence_gives_an_empty_map():
    heat = gradcam(_bright_square_model(), _image_with_bright_square(), class_index=1, last_conv_layer="last_conv")
    assert heat.shape == (48, 64)
    assert float(heat.max()) == 0.0


def test_default_class_is_the_predicted_one():
    model, image = _bright_square_model(), _image_with_bright_square()
    # The toy model predicts class 0 for this bright image, so the default map is class 0's.
    np.testing.assert_allclose(gradcam(model, image, last_conv_layer="last_conv"),
                               gradcam(model, image, class_index=0, last_conv_layer="last_conv"))


def test_unknown_layer_name_is_a_clear_error():
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        gradcam(_bright_square_model(), _image_with_bright_square(), last_conv_layer="nope")


def test_a_trained_classifier_uses_the_layer_named_in_its_config(tiny_classifier, tiny_tools):
    assert tiny_classifier.config["backbone"]["last_conv_layer"]
    image = tiny_tools.surface("spots", np.random.default_rng(3))
    for index in range(len(tiny_classifier.classes)):
        heat = gradcam(tiny_classifier, image, class_index=index)
        assert heat.shape == image.shape
        assert 0.0 <= heat.min() and heat.max() <= 1.0
    predicted = gradcam(tiny_classifier, image)
    assert predicted.max() == pytest.approx(1.0, abs=1e-3)  # the predicted class has evidence somewhere
