"""Training a model version from labelled samples: ``train(config, samples, out_dir=...)``.

Phase 1 (always): the backbone stays frozen. Each training image is passed through it a few
times (one clean view and some line-condition augmentations) and only the pooled features
are kept; the softmax head then trains on those vectors in seconds, with class weights and
early stopping on validation loss. Phase 2 (optional): the top backbone blocks are
fine-tuned on images at a low learning rate with BatchNorm frozen in inference mode; it is
kept only if validation loss improves. The OOD detector is fitted on the final features.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mlcore.augment import AugmentConfig, augment_image
from mlcore.io import Sample, batched, load_image
from mlcore.ood import OodDetector, frame_statistics

__all__ = ["Sample", "TrainConfig", "TrainResult", "TrainingCancelled", "train"]

ProgressCallback = Callable[[float, dict], None]
# Share of the progress bar each phase fills; a skipped phase jumps to its end.
PHASE_SPANS = {"features": (0.0, 0.55), "head": (0.55, 0.7), "finetune": (0.7, 0.9), "evaluate": (0.9, 1.0)}


class TrainingCancelled(Exception):
    """``should_cancel()`` returned True; nothing was written as a finished model."""


@dataclass
class TrainConfig:
    backbone: str = "auto"               # "auto", "resnet50" or "efficientnet_lite0"
    weights: str | None = "imagenet"     # None: random init (tests)
    resnet50_weights: str | None = None  # path to the Keras ResNet50 notop .h5
    cache_dir: str | None = None         # converted-weights cache
    # NEU frames are 200 px; 192 keeps nearly all of that detail and costs ~27 % less than
    # ImageNet's 224, which is what brings batched CPU inference past 100 images/s.
    input_size: int = 192
    seed: int = 0
    batch_size: int = 32
    augmented_views: int = 5             # per training image, besides the clean view
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    dropout: float = 0.2
    head_epochs: int = 150
    head_learning_rate: float = 1e-3
    head_patience: int = 12
    finetune: str = "auto"               # "auto": only if phase 1 misses auto_finetune_below
    auto_finetune_below: float = 0.995   # validation accuracy
    finetune_blocks: int = 2
    finetune_epochs: int = 4
    finetune_learning_rate: float = 5e-5
    time_budget_s: float = 300.0         # phase 2 stops starting epochs past this
    ood_pass_rate: float = 0.95          # share of clean validation images that pass
    confidence_threshold: float = 0.6    # below this a prediction goes to review
    serving_export: bool = True          # add the verified TFLite copy for fast CPU serving

    def __post_init__(self) -> None:
        if self.finetune not in ("auto", "on", "off"):
            raise ValueError(f"finetune must be 'auto', 'on' or 'off', got {self.finetune!r}")
        if isinstance(self.augment, dict):
            self.augment = AugmentConfig(**self.augment)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    model_dir: str
    classes: list[str]
    metrics: dict                       # evaluation dict on the test split (val if none)
    history: dict = field(default_factory=dict)


class _Progress:
    """Maps per-phase fractions to one monotone 0..1 bar and checks for cancellation."""

    def __init__(self, callback: ProgressCallback | None, should_cancel: Callable[[], bool] | None):
        self.callback = callback
        self.should_cancel = should_cancel
        self.fraction = 0.0

    def report(self, phase: str, within: float, *, epoch: int | None = None, metrics: dict | None = None) -> None:
        self.check_cancel()
        start, end = PHASE_SPANS[phase]
        self.fraction = max(self.fraction, start + (end - start) * min(max(within, 0.0), 1.0))
        if self.callback is not None:
            self.callback(self.fraction, {"phase": phase, "epoch": epoch, "metrics": metrics or {}})

    def check_cancel(self) -> None:
        if self.should_cancel is not None and self.should_cancel():
            raise TrainingCancelled("training was cancelled")


def train(config: TrainConfig, samples: Sequence[Sample], *, out_dir: str | Path,
          progress: ProgressCallback | None = None,
          should_cancel: Callable[[], bool] | None = None) -> TrainResult:
    import keras

    from mlcore.backbones import build_backbone, resolve_backbone_name
    from mlcore.inference import compile_forward
    from mlcore.model import build_classifier, save_artefact
    from mlcore.plots import save_plots

    started = time.monotonic()
    tracker = _Progress(progress, should_cancel)
    classes, by_split = _check_samples(samples)
    keras.utils.set_random_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    backbone = build_backbone(
        resolve_backbone_name(config.backbone, resnet50_weights=config.resnet50_weights),
        weights=config.weights, resnet50_weights=config.resnet50_weights,
        cache_dir=config.cache_dir, input_size=config.input_size)
    model = build_classifier(backbone=backbone, num_classes=len(classes), dropout=config.dropout)
    forward = compile_forward(model)
    index = {name: i for i, name in enumerate(classes)}

    cache = _cache_features(forward, by_split, index=index, config=config, rng=rng, tracker=tracker)
    class_weights = _class_weights(cache.train_labels, len(classes))
    history = _fit_head(model, cache, class_weights=class_weights, config=config, tracker=tracker)
    finetuned = False
    if _should_finetune(config, history, started):
        finetuned = _finetune(model, backbone, by_split, index=index, class_weights=class_weights,
                              config=config, rng=rng, tracker=tracker, started=started,
                              history=history, forward=forward)
    tracker.report("finetune", 1.0)
    if finetuned:
        cache = _cache_features(forward, by_split, index=index, config=config, rng=rng,
                                tracker=None, clean_only=True)
    ood = OodDetector.fit(features=cache.train_features, labels=cache.train_labels,
                          num_classes=len(classes), pixel_stds=cache.train_pixel_stds)
    ood.calibrate(features=cache.val_features, pass_rate=config.ood_pass_rate)

    split = "test" if by_split["test"] else "val"
    metrics = _evaluate_split(forward, ood, by_split[split], classes=classes, config=config, tracker=tracker)
    metrics["split"] = split
    history["finetuned"] = finetuned
    save_artefact(out_dir=Path(out_dir), model=model, classes=classes, metrics=metrics, ood=ood,
                  config=_artefact_config(config, backbone=backbone, ood=ood, facts={
                      "finetuned": finetuned, "wall_time_s": round(time.monotonic() - started, 2),
                      "images": {name: len(items) for name, items in by_split.items()},
                      "typical_image_shape": cache.typical_shape,
                      "phase1_best": history["head_best"]}))
    save_plots(out_dir=Path(out_dir), metrics=metrics, history=history)
    if config.serving_export:
        _export_serving_copy(Path(out_dir), forward, by_split, typical_shape=cache.typical_shape,
                             num_classes=len(classes))
    tracker.report("evaluate", 1.0, metrics={"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]})
    return TrainResult(model_dir=str(out_dir), classes=classes, metrics=metrics, history=history)


def _evaluate_split(forward, ood: OodDetector, samples, *, classes, config: TrainConfig,
                    tracker: _Progress) -> dict:
    from mlcore.evaluation import evaluate
    from mlcore.inference import forward_in_batches

    probabilities, scores = [], []
    for done, chunk in enumerate(batched(samples, config.batch_size), start=1):
        images = [load_image(sample.path) for sample in chunk]
        batch_probabilities, features = forward_in_batches(forward, images, batch_size=config.batch_size)
        probabilities.append(batch_probabilities)
        scores.append(ood.scores(features=features, images=images))
        tracker.report("evaluate", 0.9 * done * config.batch_size / len(samples))
    probabilities, scores = np.concatenate(probabilities), np.concatenate(scores)
    metrics = evaluate(classes=classes, true_labels=[s.label for s in samples], probabilities=probabilities)
    review = (scores > 1.0) | (probabilities.max(axis=1) < config.confidence_threshold)
    metrics["review"] = {"ood_pass_rate": float(np.mean(scores <= 1.0)),
                         "needs_review_rate": float(np.mean(review))}
    return metrics


def _export_serving_copy(out_dir: Path, forward, by_split, *, typical_shape, num_classes: int) -> None:
    from mlcore.serving import serving_export

    want = tuple(typical_shape) if len(typical_shape) == 3 else (*typical_shape, 1)
    samples = []
    for sample in by_split["val"] + by_split["test"]:
        image = load_image(sample.path)
        if (image.shape if image.ndim == 3 else (*image.shape, 1)) == want:
            samples.append(image)
        if len(samples) == 32:
            break
    serving_export(model_dir=out_dir, sample_images=samples, keras_forward=forward, num_classes=num_classes)


def _artefact_config(config: TrainConfig, *, backbone, ood: OodDetector, facts: dict) -> dict:
    import mlcore

    return {
        "mlcore_version": mlcore.__version__,
        "backbone": {"name": backbone.name, "weight_source": backbone.weight_source.to_dict(),
                     "input_size": backbone.input_size, "last_conv_layer": backbone.last_conv_layer},
        "input": {"channels": [1, 3], "value_range": [0, 255], "any_size": True,
                  "typical_image_shape": facts["typical_image_shape"]},
        "training": {"params": config.to_dict(), **facts},
        "ood": ood.summary(),
        "review": {"confidence_threshold": config.confidence_threshold,
                   "rule": "needs_review = ood_score > 1 or confidence < confidence_threshold"},
    }


def _check_samples(samples: Sequence[Sample]) -> tuple[list[str], dict[str, list[Sample]]]:
    by_split: dict[str, list[Sample]] = {"train": [], "val": [], "test": []}
    for sample in samples:
        by_split[sample.split].append(sample)
    classes = sorted({sample.label for sample in samples})
    missing = sorted(set(classes) - {sample.label for sample in by_split["train"]})
    if len(classes) < 2:
        raise ValueError(f"need at least two classes to train, got {classes}")
    if missing:
        raise ValueError(f"classes with no training image: {', '.join(missing)}")
    if not by_split["val"]:
        raise ValueError("need at least one validation image (split 'val')")
    return classes, by_split


@dataclass
class _FeatureCache:
    train_features: np.ndarray
    train_labels: np.ndarray
    train_pixel_stds: np.ndarray
    val_features: np.ndarray
    val_labels: np.ndarray
    typical_shape: list[int]


def _cache_features(forward, by_split, *, index, config: TrainConfig, rng, tracker: _Progress | None,
                    clean_only: bool = False) -> _FeatureCache:
    from mlcore.inference import forward_in_batches

    views = 1 if clean_only else 1 + config.augmented_views
    work = len(by_split["train"]) * views + len(by_split["val"])
    done = 0
    shapes: dict[tuple, int] = {}
    parts: dict[str, list] = {"train": [], "train_labels": [], "stds": [], "val": [], "val_labels": []}
    for split, split_views in (("train", views), ("val", 1)):
        for chunk in batched(by_split[split], config.batch_size):
            # Decoded images live only for one chunk; only their pooled features are kept.
            images = [load_image(sample.path) for sample in chunk]
            labels = [index[sample.label] for sample in chunk]
            if split == "train":
                parts["stds"].extend(frame_statistics(image)[0] for image in images)
                for image in images:
                    shapes[image.shape] = shapes.get(image.shape, 0) + 1
            for view in range(split_views):
                batch = images if view == 0 else [
                    augment_image(image, rng=rng, config=config.augment) for image in images]
                _, features = forward_in_batches(forward, batch, batch_size=config.batch_size)
                parts[split].append(features)
                parts[f"{split}_labels"].extend(labels)
                done += len(chunk)
                if tracker is not None:
                    tracker.report("features", done / work)
    return _FeatureCache(
        train_features=np.concatenate(parts["train"]), train_labels=np.array(parts["train_labels"]),
        train_pixel_stds=np.array(parts["stds"]), val_features=np.concatenate(parts["val"]),
        val_labels=np.array(parts["val_labels"]), typical_shape=list(max(shapes, key=shapes.get)))


def _class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    counts = np.bincount(labels, minlength=num_classes).astype(float)
    return {k: float(len(labels) / (num_classes * counts[k])) if counts[k] else 0.0 for k in range(num_classes)}


def _fit_head(model, cache: _FeatureCache, *, class_weights, config: TrainConfig, tracker: _Progress) -> dict:
    import keras

    from mlcore.model import head_only

    head = head_only(model)
    head.compile(optimizer=keras.optimizers.Adam(config.head_learning_rate),
                 loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    class Report(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            tracker.report("head", (epoch + 1) / config.head_epochs, epoch=epoch + 1,
                           metrics={k: float(v) for k, v in (logs or {}).items()})

    fitted = head.fit(
        cache.train_features, cache.train_labels, batch_size=64, epochs=config.head_epochs,
        validation_data=(cache.val_features, cache.val_labels), class_weight=class_weights,
        shuffle=True, verbose=0,
        callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.head_patience,
                                                 restore_best_weights=True), Report()])
    history = {"head": {key: [float(v) for v in values] for key, values in fitted.history.items()}}
    best = int(np.argmin(history["head"]["val_loss"]))
    history["head_best"] = {key: values[best] for key, values in history["head"].items()}
    return history


def _should_finetune(config: TrainConfig, history: dict, started: float) -> bool:
    if config.finetune == "off":
        return False
    if config.finetune == "on":
        return True
    within_budget = time.monotonic() - started < 0.5 * config.time_budget_s
    return within_budget and history["head_best"]["val_accuracy"] < config.auto_finetune_below


def _finetune(model, backbone, by_split, *, index, class_weights, config: TrainConfig, rng,
              tracker: _Progress, started: float, history: dict, forward) -> bool:
    """Fine-tune the top blocks; returns whether the result beat phase 1 on validation loss."""
    import keras
    import tensorflow as tf

    from mlcore.model import backbone_submodel

    _unfreeze_top_blocks(backbone_submodel(model), backbone.blocks[-config.finetune_blocks:])
    trainable = model.trainable_variables
    optimizer = keras.optimizers.Adam(config.finetune_learning_rate)
    optimizer.build(trainable)
    weight_table = tf.constant([class_weights[k] for k in range(len(class_weights))], tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, None], tf.float32),
                                  tf.TensorSpec([None], tf.int32)])
    def step(images, labels):
        with tf.GradientTape() as tape:
            probabilities = model(images, training=True)
            losses = keras.losses.sparse_categorical_crossentropy(labels, probabilities)
            loss = tf.reduce_sum(losses * tf.gather(weight_table, labels)) / tf.cast(tf.size(labels), tf.float32)
        optimizer.apply_gradients(zip(tape.gradient(loss, trainable), trainable))
        return loss

    best_loss = history["head_best"]["val_loss"]
    best_weights, improved = model.get_weights(), False
    records: list[dict] = []
    epoch_seconds = 0.0
    for epoch in range(1, config.finetune_epochs + 1):
        if time.monotonic() - started + epoch_seconds > config.time_budget_s:
            break
        epoch_started = time.monotonic()
        order = rng.permutation(len(by_split["train"]))
        losses = []
        for chunk in batched(order, config.batch_size):
            tracker.check_cancel()
            images = [augment_image(load_image(by_split["train"][i].path), rng=rng, config=config.augment)
                      for i in chunk]
            if len({image.shape for image in images}) != 1:
                continue  # mixed sizes cannot share a batch; phase 1 already saw them
            batch = np.stack(images)[..., None] if images[0].ndim == 2 else np.stack(images)
            labels = np.array([index[by_split["train"][i].label] for i in chunk], dtype=np.int32)
            losses.append(float(step(tf.constant(batch), tf.constant(labels))))
        val_loss, val_accuracy = _validation_scores(forward, by_split["val"], index=index, config=config)
        records.append({"epoch": epoch, "loss": float(np.mean(losses)) if losses else float("nan"),
                        "val_loss": val_loss, "val_accuracy": val_accuracy})
        tracker.report("finetune", epoch / config.finetune_epochs, epoch=epoch, metrics=records[-1])
        if val_loss < best_loss:
            best_loss, best_weights, improved = val_loss, model.get_weights(), True
        epoch_seconds = time.monotonic() - epoch_started
    model.set_weights(best_weights)
    history["finetune"] = records
    return improved


def _unfreeze_top_blocks(backbone_model, blocks: Sequence[Sequence[str]]) -> None:
    import keras

    names = {name for block in blocks for name in block}
    backbone_model.trainable = True
    for layer in backbone_model.layers:
        # BatchNorm stays frozen: with trainable=False Keras runs it in inference mode, so
        # small fine-tuning batches cannot disturb the ImageNet running statistics.
        layer.trainable = layer.name in names and not isinstance(layer, keras.layers.BatchNormalization)


def _validation_scores(forward, samples, *, index, config: TrainConfig) -> tuple[float, float]:
    from mlcore.inference import forward_in_batches

    losses, correct = [], 0
    for chunk in batched(samples, config.batch_size):
        probabilities, _ = forward_in_batches(
            forward, [load_image(s.path) for s in chunk], batch_size=config.batch_size)
        labels = np.array([index[s.label] for s in chunk])
        losses.extend(-np.log(np.clip(probabilities[np.arange(len(labels)), labels], 1e-7, 1.0)))
        correct += int(np.sum(probabilities.argmax(axis=1) == labels))
    return float(np.mean(losses)), correct / max(len(samples), 1)
