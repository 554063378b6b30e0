"""Per-backbone input normalisation as Keras layers, so it is saved inside the model."""

from __future__ import annotations

import keras
from keras import ops

# ImageNet channel means in BGR order, as used to train Keras' ResNet50 weights.
IMAGENET_BGR_MEANS = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="mlcore")
class CaffeImageNetNormalization(keras.layers.Layer):
    """RGB 0..255 -> BGR with the ImageNet channel means subtracted (Keras ResNet50 weights)."""

    def call(self, inputs):
        bgr = ops.flip(ops.cast(inputs, self.compute_dtype), axis=-1)
        return bgr - ops.convert_to_tensor(IMAGENET_BGR_MEANS, dtype=self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return super().get_config()


@keras.saving.register_keras_serializable(package="mlcore")
class EfficientNetLiteNormalization(keras.layers.Layer):
    """RGB 0..255 -> (x - 127) / 128, the range EfficientNet-Lite was trained on."""

    def call(self, inputs):
        return (ops.cast(inputs, self.compute_dtype) - 127.0) / 128.0

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return super().get_config()
