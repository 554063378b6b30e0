"""Phase 1: the softmax head trains on cached descriptors in seconds (backbone frozen)."""

from __future__ import annotations

import numpy as np

from mlcore.training.config import TrainConfig
from mlcore.training.inputs import FeatureCache
from mlcore.training.losses import weighted_cross_entropy
from mlcore.training.progress import Progress


def fit_head(model, cache: FeatureCache, *, weights: np.ndarray, config: TrainConfig, tracker: Progress) -> dict:
    """Train dropout + dense on the cache with early stopping on validation loss; returns history."""
    import keras

    from mlcore.model import head_only

    head = head_only(model)
    head.compile(optimizer=keras.optimizers.Adam(config.head_learning_rate),
                 loss=weighted_cross_entropy(weights), metrics=["accuracy"])

    class Report(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            tracker.report("head", (epoch + 1) / config.head_epochs, epoch=epoch + 1,
                           metrics={k: float(v) for k, v in (logs or {}).items()})

    fitted = head.fit(
        cache.train_features, cache.train_labels, batch_size=64, epochs=config.head_epochs,
        validation_data=(cache.val_features, cache.val_labels), shuffle=True, verbose=0,
        callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.head_patience,
                                                 restore_best_weights=True), Report()])
    history = {"head": {key: [float(v) for v in values] for key, values in fitted.history.items()}}
    best = int(np.argmin(history["head"]["val_loss"]))
    history["head_best"] = {key: values[best] for key, values in history["head"].items()}
    return history
