"""Grad-CAM heatmaps: where in the image the classifier looked for a class.

The classifier (``mlcore.model.build_classifier``) is one chain: input adapters -> the nested
backbone model (one feature map, or several depths) -> pooling -> dense softmax. Grad-CAM needs
the activations of the backbone's last convolutional block and the gradient of the class score with respect to them, so the
chain is run layer by layer here with the backbone split at that block. The block's name is
recorded in the artefact's ``config.json`` (``config["backbone"]["last_conv_layer"]``).
"""

from __future__ import annotations

import numpy as np

from mlcore.io import as_image_array
from mlcore.model import backbone_submodel, split_at_backbone


def gradcam(classifier_or_model, image_uint8: np.ndarray, class_index: int | None = None, *,
            last_conv_layer: str | None = None) -> np.ndarray:
    """A (H, W) float32 heatmap in [0, 1] at ``image_uint8``'s size.

    ``classifier_or_model`` is an ``mlcore.inference.Classifier`` (the layer name comes from its
    config) or the Keras classifier model itself (give ``last_conv_layer``, else the backbone's
    last 4-D layer is used). ``class_index`` defaults to the predicted class. A class the image
    gives no positive evidence for yields an all-zero map.
    """
    import tensorflow as tf

    model, layer_name = _model_and_layer(classifier_or_model, last_conv_layer)
    image = as_image_array(np.asarray(image_uint8))
    height, width = image.shape[:2]
    if image.ndim == 2:  # grayscale: the model takes an explicit channel axis
        image = image[..., None]
    batch = tf.constant(image[None, ...].astype(np.float32))

    before, backbone, after = split_at_backbone(model)
    conv_and_top = _conv_and_top_model(backbone, layer_name)
    with tf.GradientTape() as tape:
        x = batch
        for layer in before:
            x = layer(x, training=False)
        activations, *outputs = conv_and_top(x, training=False)
        tape.watch(activations)
        outputs = [activations if i in conv_and_top.conv_outputs else output for i, output in enumerate(outputs)]
        probabilities = outputs if len(outputs) > 1 else outputs[0]
        for layer in after:
            probabilities = layer(probabilities, training=False)
        if class_index is None:
            class_index = int(tf.argmax(probabilities[0]))
        score = probabilities[0, int(class_index)]
    gradients = tape.gradient(score, activations)
    if gradients is None:
        raise ValueError(f"layer {layer_name!r} does not feed the class scores")
    weights = tf.reduce_mean(gradients, axis=(1, 2))  # (1, channels): importance of each map
    cam = tf.nn.relu(tf.reduce_sum(activations * weights[:, None, None, :], axis=-1))[0].numpy()
    return _normalised_at_size(cam, height=height, width=width)


def _model_and_layer(classifier_or_model, last_conv_layer: str | None):
    model = getattr(classifier_or_model, "model", classifier_or_model)
    config = getattr(classifier_or_model, "config", None) or {}
    name = last_conv_layer or config.get("backbone", {}).get("last_conv_layer")
    if name is None:
        four_d = [layer.name for layer in backbone_submodel(model).layers if len(layer.output.shape) == 4]
        if not four_d:
            raise ValueError("the backbone has no convolutional layer")
        name = four_d[-1]
    return model, name


def _conv_and_top_model(backbone, layer_name: str):
    import keras

    try:
        conv = backbone.get_layer(layer_name)
    except ValueError:
        raise ValueError(f"the backbone has no layer named {layer_name!r}") from None
    split = keras.Model(backbone.inputs, [conv.output, *backbone.outputs], name="gradcam_backbone")
    # When the named layer is one of the backbone's outputs, its activations are pooled
    # directly, and the gradient must flow from them rather than from the identical output.
    split.conv_outputs = [i for i, output in enumerate(backbone.outputs) if output is conv.output]
    if not split.conv_outputs and len(backbone.outputs) == 1 and backbone.layers[-1] is conv:
        split.conv_outputs = [0]
    return split


def _normalised_at_size(cam: np.ndarray, *, height: int, width: int) -> np.ndarray:
    from PIL import Image

    peak = float(cam.max()) if cam.size else 0.0
    if not np.isfinite(peak) or peak <= 1e-12:
        return np.zeros((height, width), np.float32)
    scaled = Image.fromarray((cam / peak).astype(np.float32), mode="F").resize((width, height), Image.BILINEAR)
    return np.clip(np.asarray(scaled, dtype=np.float32), 0.0, 1.0)
