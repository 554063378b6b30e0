"""Pixels -> locally aware patch features, as one Keras model saved inside the artefact.

The model takes any image (any height and width, 1 or 3 channels, uint8 range), resizes it to
the artefact's input shape (fixed at training from the good images' aspect ratio), normalises it
as the backbone was trained, runs the frozen ImageNet backbone up to the chosen mid-level layers
and turns their maps into one grid of patch vectors (``PatchFeatures``). Preprocessing lives in
the saved model, so training and scoring cannot disagree, and scoring needs no weights package.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
from keras import ops

from mlcore.artefact import EFFICIENTNET_LITE0
from mlcore.backbones.contract import WeightSource
from mlcore.backbones.normalization import EfficientNetLiteNormalization
from mlcore.layers import ChannelsToRGB

PACKAGE = "steelqc_anomaly"
IMAGE_INPUT = "image"
# Stride (input pixels per map cell) of the EfficientNet-Lite0 layers an anomaly model may use.
LITE0_LAYER_STRIDES = {
    "block2b_add": 4, "block3b_add": 8, "block4a_expand_relu6": 8, "block4c_add": 16,
    "block5c_add": 16, "block6d_add": 32,
}
BACKBONE_LAYERS = {EFFICIENTNET_LITE0: LITE0_LAYER_STRIDES}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ResizeTo(keras.layers.Layer):
    """Resize any (H, W, C) batch to (height, width, C), float32, antialiased when shrinking."""

    def __init__(self, *, height: int, width: int, **kwargs):
        super().__init__(**kwargs)
        self.height, self.width = int(height), int(width)

    def call(self, images):
        images = ops.cast(images, "float32")
        return ops.image.resize(images, (self.height, self.width), interpolation="bilinear", antialias=True)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}


@keras.saving.register_keras_serializable(package=PACKAGE)
class PatchFeatures(keras.layers.Layer):
    """Feature maps of several depths -> one grid of patch vectors at the finest map's size.

    Each map is averaged over a ``neighbourhood`` x ``neighbourhood`` window (stride 1), so a
    patch vector describes its surroundings rather than one receptive field (a defect a little
    off-centre still moves it); coarser maps are resized to the finest grid; the maps are joined
    along channels.
    """

    def __init__(self, *, neighbourhood: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.neighbourhood = int(neighbourhood)

    def call(self, feature_maps):
        if not isinstance(feature_maps, (list, tuple)):
            feature_maps = [feature_maps]
        height, width = feature_maps[0].shape[1], feature_maps[0].shape[2]
        parts = []
        for feature_map in feature_maps:
            x = ops.cast(feature_map, "float32")
            if self.neighbourhood > 1:
                x = ops.average_pool(x, pool_size=self.neighbourhood, strides=1, padding="same")
            if (x.shape[1], x.shape[2]) != (height, width):
                x = ops.image.resize(x, (height, width), interpolation="bilinear")
            parts.append(x)
        return ops.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]

    def compute_output_shape(self, input_shapes):
        if not isinstance(input_shapes, (list, tuple)) or not isinstance(input_shapes[0], (list, tuple)):
            input_shapes = [input_shapes]
        first = input_shapes[0]
        return (first[0], first[1], first[2], sum(int(shape[-1]) for shape in input_shapes))

    def get_config(self):
        return {**super().get_config(), "neighbourhood": self.neighbourhood}


def layer_stride(backbone: str, layer: str) -> int:
    strides = BACKBONE_LAYERS.get(backbone)
    if strides is None:
        raise ValueError(f"anomaly models use the backbone {EFFICIENTNET_LITE0}; {backbone!r} is not supported")
    if layer not in strides:
        raise ValueError(f"{backbone} has no anomaly feature layer {layer!r}; choose from {', '.join(strides)}")
    return strides[layer]


def input_shape_for(sizes: Sequence[tuple[int, int]], *, input_size: int, multiple: int = 16) -> tuple[int, int]:
    """(height, width) of the network input: the median aspect ratio of the good images at about
    ``input_size`` x ``input_size`` pixels, each side a multiple of ``multiple`` (the coarsest
    layer's stride, so every map cell covers whole input pixels)."""
    if not sizes:
        return input_size, input_size
    aspect = float(np.median([width / max(height, 1) for height, width in sizes]))
    height = input_size / np.sqrt(aspect)
    width = input_size * np.sqrt(aspect)
    return (max(multiple, int(round(height / multiple)) * multiple),
            max(multiple, int(round(width / multiple)) * multiple))


def build_feature_model(*, backbone: str, layers: Sequence[str], input_shape: tuple[int, int],
                        neighbourhood: int, cache_dir: str | os.PathLike | None = None) -> tuple[keras.Model, WeightSource]:
    """The patch-feature model with ImageNet weights, and where the weights came from."""
    from mlcore.backbones import efficientnet_lite

    strides = [layer_stride(backbone, name) for name in layers]
    if strides[0] != min(strides):
        raise ValueError(f"list the finest layer first: {list(layers)} have strides {strides}")
    classifier, source = efficientnet_lite.build_imagenet_classifier(cache_dir=cache_dir, input_size=None)
    trunk = keras.Model(classifier.input, [classifier.get_layer(name).output for name in layers],
                        name=f"{backbone}_trunk")
    height, width = input_shape
    images = keras.Input(shape=(None, None, None), dtype="float32", name=IMAGE_INPUT)
    x = ResizeTo(height=height, width=width, name="resize_to_input")(images)
    x = ChannelsToRGB(name="channels_to_rgb")(x)
    x = EfficientNetLiteNormalization(name="efficientnet_lite0_normalization")(x)
    maps = trunk(x)
    patches = PatchFeatures(neighbourhood=neighbourhood, name="patch_features")(maps if len(layers) > 1 else [maps])
    return keras.Model(images, patches, name="steelqc_anomaly_features"), source


def load_feature_model(path: str | Path) -> keras.Model:
    return keras.saving.load_model(path, compile=False)


def compile_patch_forward(model: keras.Model):
    """A traced function: uint8-range batch (N, H, W[, C]) -> (N, h, w, D) float32 patch features."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, None], tf.float32)], reduce_retracing=True)
    def forward(images):
        return model(images, training=False)

    def run(batch: np.ndarray) -> np.ndarray:
        batch = np.asarray(batch, dtype=np.float32)
        if batch.ndim == 3:  # (N, H, W) grayscale -> explicit channel axis
            batch = batch[..., None]
        return forward(tf.constant(batch)).numpy()

    return run
