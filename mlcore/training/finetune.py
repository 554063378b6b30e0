"""Phase 2 (optional): fine-tune the top backbone blocks on augmented images.

BatchNorm stays frozen (inference mode), so small batches cannot disturb the ImageNet running
statistics; the result is kept only if validation loss beats phase 1.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mlcore.augment import augment_image
from mlcore.io import Sample, batched, load_image
from mlcore.training.config import TrainConfig
from mlcore.training.losses import weighted_cross_entropy
from mlcore.training.progress import Progress


@dataclass
class FinetuneData:
    train: Sequence[Sample]
    val: Sequence[Sample]
    index: dict[str, int]       # class name -> output index
    weights: np.ndarray         # per-class loss weights


def should_finetune(config: TrainConfig, history: dict, *, elapsed_s: float) -> bool:
    if config.finetune == "off":
        return False
    if config.finetune == "on":
        return True
    within_budget = elapsed_s < 0.5 * config.time_budget_s
    return within_budget and history["head_best"]["val_accuracy"] < config.auto_finetune_below


def finetune(model, backbone, data: FinetuneData, *, config: TrainConfig, rng, tracker: Progress,
             started: float, history: dict, forward) -> bool:
    """Fine-tune the top blocks; returns whether the result beat phase 1 on validation loss."""
    from mlcore.model import backbone_submodel

    unfreeze_top_blocks(backbone_submodel(model), backbone.blocks[-config.finetune_blocks:])
    loss = weighted_cross_entropy(data.weights)
    step = _train_step(model, loss, config.finetune_learning_rate)
    best_loss = history["head_best"]["val_loss"]
    best_weights, improved = model.get_weights(), False
    records: list[dict] = []
    epoch_seconds = 0.0
    for epoch in range(1, config.finetune_epochs + 1):
        if time.monotonic() - started + epoch_seconds > config.time_budget_s:
            break
        epoch_started = time.monotonic()
        losses = [step(images, labels) for images, labels in _augmented_batches(data, config=config, rng=rng,
                                                                                 tracker=tracker)]
        val_loss, val_accuracy = validation_scores(forward, data, loss=loss, batch_size=config.batch_size)
        records.append({"epoch": epoch, "loss": float(np.mean(losses)) if losses else float("nan"),
                        "val_loss": val_loss, "val_accuracy": val_accuracy})
        tracker.report("finetune", epoch / config.finetune_epochs, epoch=epoch, metrics=records[-1])
        if val_loss < best_loss:
            best_loss, best_weights, improved = val_loss, model.get_weights(), True
        epoch_seconds = time.monotonic() - epoch_started
    model.set_weights(best_weights)
    history["finetune"] = records
    return improved


def _train_step(model, loss, learning_rate: float):
    import keras
    import tensorflow as tf

    trainable = model.trainable_variables
    optimizer = keras.optimizers.Adam(learning_rate)
    optimizer.build(trainable)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, None], tf.float32),
                                  tf.TensorSpec([None], tf.int32)])
    def step(images, labels):
        with tf.GradientTape() as tape:
            value = loss(labels, model(images, training=True))
        optimizer.apply_gradients(zip(tape.gradient(value, trainable), trainable))
        return value

    return lambda images, labels: float(step(tf.constant(images), tf.constant(labels)))


def _augmented_batches(data: FinetuneData, *, config: TrainConfig, rng, tracker: Progress):
    order = rng.permutation(len(data.train))
    for chunk in batched(order, config.batch_size):
        tracker.check_cancel()
        images = [augment_image(load_image(data.train[i].path), rng=rng, config=config.augment) for i in chunk]
        if len({image.shape for image in images}) != 1:
            continue  # mixed sizes cannot share a batch; phase 1 already saw them
        batch = np.stack(images)[..., None] if images[0].ndim == 2 else np.stack(images)
        yield batch, np.array([data.index[data.train[i].label] for i in chunk], dtype=np.int32)


def unfreeze_top_blocks(backbone_model, blocks: Sequence[Sequence[str]]) -> None:
    import keras

    names = {name for block in blocks for name in block}
    backbone_model.trainable = True
    for layer in backbone_model.layers:
        # BatchNorm stays frozen: with trainable=False Keras runs it in inference mode, so
        # small fine-tuning batches cannot disturb the ImageNet running statistics.
        layer.trainable = layer.name in names and not isinstance(layer, keras.layers.BatchNormalization)


def validation_scores(forward, data: FinetuneData, *, loss, batch_size: int) -> tuple[float, float]:
    """(loss, accuracy) on the validation images, with the training loss."""
    from mlcore.inference import forward_in_batches

    probabilities = np.concatenate([
        forward_in_batches(forward, [load_image(s.path) for s in chunk], batch_size=batch_size)[0]
        for chunk in batched(data.val, batch_size)])
    labels = np.array([data.index[s.label] for s in data.val], dtype=np.int32)
    return float(loss(labels, probabilities)), float(np.mean(probabilities.argmax(axis=1) == labels))
