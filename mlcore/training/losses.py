"""The one training loss: class-weighted cross-entropy on softmax probabilities."""

from __future__ import annotations

import numpy as np


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Inverse class frequency, so that every class weighs the same in the loss; 0 for absent classes."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float32)
    return np.where(counts > 0, len(labels) / (num_classes * np.maximum(counts, 1)), 0.0).astype(np.float32)


def weighted_cross_entropy(weights: np.ndarray):
    """A Keras loss ``(labels, probabilities) -> mean of weight[label] * -log p[label]``.

    The same function trains the head, fine-tunes the backbone and scores validation, so the
    three numbers are comparable.
    """
    import keras
    from keras import ops

    table = ops.convert_to_tensor(np.asarray(weights, np.float32))

    def loss(labels, probabilities):
        labels = ops.cast(ops.reshape(labels, (-1,)), "int32")
        per_image = keras.losses.sparse_categorical_crossentropy(labels, probabilities)
        return ops.mean(per_image * ops.take(table, labels))

    return loss
