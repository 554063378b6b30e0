"""Input adapter layers that live inside the saved model.

They turn whatever the camera gives (any height and width, 1 or 3 channels, values in the
uint8 range) into the square RGB float image a backbone expects, so training and serving run
exactly the same preprocessing. Both are registered, so ``keras.saving.load_model`` rebuilds
them from ``model.keras`` once this module is imported.
"""

from __future__ import annotations

import keras
from keras import ops

PACKAGE = "steelqc"


@keras.saving.register_keras_serializable(package=PACKAGE)
class ResizeToSquare(keras.layers.Layer):
    """Resize any (H, W, C) batch to (size, size, C), as float32 in the input's value range."""

    def __init__(self, *, size: int, antialias: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)
        self.antialias = bool(antialias)

    def call(self, images):
        images = ops.cast(images, "float32")
        # Antialiasing matters when a high-resolution frame is shrunk to the backbone size;
        # upscaling (NEU's 200 px -> 224 px) gives the same pixels either way.
        return ops.image.resize(
            images, (self.size, self.size), interpolation="bilinear", antialias=self.antialias
        )

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "size": self.size, "antialias": self.antialias}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ChannelsToRGB(keras.layers.Layer):
    """Make 3 channels: grayscale is repeated, RGB passes, a 4th (alpha) channel is dropped."""

    def call(self, images):
        images = images[..., :3]
        # Broadcasting against a zero RGB pixel repeats a single gray channel and leaves
        # three channels as they are, with no branch in the graph.
        return images + ops.zeros((1, 1, 1, 3), dtype=images.dtype)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 3)


@keras.saving.register_keras_serializable(package=PACKAGE)
class TextureDescriptor(keras.layers.Layer):
    """Feature maps of several depths -> one vector: each map averaged over the frame,
    scaled to unit length so no depth dominates, then joined (the OOD descriptor)."""

    def call(self, feature_maps):
        if not isinstance(feature_maps, (list, tuple)):
            feature_maps = [feature_maps]
        parts = []
        for feature_map in feature_maps:
            mean = ops.mean(ops.cast(feature_map, "float32"), axis=(1, 2))
            parts.append(mean / (ops.sqrt(ops.sum(mean * mean, axis=-1, keepdims=True)) + 1e-6))
        return ops.concatenate(parts, axis=-1)

    def compute_output_shape(self, input_shapes):
        if not isinstance(input_shapes, (list, tuple)) or not isinstance(input_shapes[0], (list, tuple)):
            input_shapes = [input_shapes]
        return (input_shapes[0][0], sum(int(shape[-1]) for shape in input_shapes))
