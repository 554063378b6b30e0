"""Step 5b: the detection head, when enough training images carry defect boxes.

The backbone stays frozen (the classifier's, after any fine-tuning), so every training image
goes through it once per view (the clean image and its flips, boxes flipped with it) and only
its feature maps are kept, in float16; the head then trains on those maps in seconds per epoch.
The epoch with the lowest validation loss is kept. mAP on the test split (val when there is
none) is measured through the whole model, as serving runs it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mlcore.detection import build_detection_head, decode, detection_metrics, encode_targets, flip_boxes
from mlcore.io import Sample, load_image
from mlcore.training.config import TrainConfig
from mlcore.training.progress import Progress

FLIPS = ((False, False), (True, False), (False, True), (True, True))


def boxed(samples: Sequence[Sample]) -> list[Sample]:
    """Samples whose boxes are known (an empty tuple is a frame known to have no defect)."""
    return [sample for sample in samples if sample.boxes is not None]


def detection_classes(by_split) -> list[str]:
    return sorted({box[0] for sample in boxed(by_split["train"]) for box in sample.boxes})


def should_train_detection(config: TrainConfig, by_split) -> tuple[bool, str]:
    """(train it?, why) by the config and how many training images have boxes."""
    if config.detection == "off":
        return False, "detection is off in the training parameters"
    with_boxes = [s for s in boxed(by_split["train"]) if s.boxes]
    if not with_boxes:
        return False, "no training image has defect boxes"
    if config.detection == "auto" and len(with_boxes) < config.detection_min_images:
        return False, (f"{len(with_boxes)} training images have boxes; "
                       f"at least {config.detection_min_images} are needed")
    if not boxed(by_split["val"]):
        return False, "no validation image has boxes"
    return True, f"{len(with_boxes)} training images have boxes"


@dataclass
class _Maps:
    maps: list[np.ndarray]          # per scale (N, h, w, c) float16
    boxes: list[list[tuple]]        # per row: (class index, x0, y0, x1, y1)


def _feature_maps(maps_model, samples: Sequence[Sample], *, index: dict[str, int], flips, batch_size: int,
                  tracker: Progress | None, done_before: int, total: int) -> _Maps:
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, None], tf.float32)])
    def run(images):
        return maps_model(images, training=False)

    per_scale: list[list[np.ndarray]] = []
    rows: list[list[tuple]] = []
    done = done_before
    for start in range(0, len(samples), batch_size):
        chunk = samples[start:start + batch_size]
        images = [load_image(sample.path) for sample in chunk]
        for horizontal, vertical in flips:
            views = [_flip(image, horizontal, vertical) for image in images]
            for shape in {v.shape for v in views}:  # equal shapes batch together
                picked = [i for i, v in enumerate(views) if v.shape == shape]
                batch = np.stack([views[i] for i in picked]).astype(np.float32)
                if batch.ndim == 3:
                    batch = batch[..., None]
                outputs = run(tf.constant(batch))
                outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
                if not per_scale:
                    per_scale = [[] for _ in outputs]
                for scale, tensor in zip(per_scale, outputs):
                    scale.append(tensor.numpy().astype(np.float16))
                for i in picked:
                    known = [(index[label], *box) for label, *box in chunk[i].boxes if label in index]
                    rows.append(flip_boxes(known, horizontal=horizontal, vertical=vertical))
            done += len(chunk)
            if tracker is not None:
                tracker.report("detection", 0.5 * done / max(total, 1))
    return _Maps(maps=[np.concatenate(scale) for scale in per_scale], boxes=rows)


def _flip(image: np.ndarray, horizontal: bool, vertical: bool) -> np.ndarray:
    if horizontal:
        image = image[:, ::-1]
    if vertical:
        image = image[::-1]
    return np.ascontiguousarray(image)


def _targets(rows: list[list[tuple]], *, grid: int, num_classes: int):
    encoded = [encode_targets(boxes, grid=grid, num_classes=num_classes) for boxes in rows]
    return tuple(np.stack(part) for part in zip(*encoded))


def detection_loss(output, heat_target, cells, regression, mask, *, num_classes: int, size_weight: float):
    """Focal loss on the heat map (CenterNet's variant, normalised by the number of boxes) plus
    L1 on width/height (weighted) and on the centre offset, at the boxes' centre cells."""
    import tensorflow as tf

    # Squeezed into [1e-4, 1 - 1e-4] affinely: clipping would stop the gradient of a saturated cell.
    heat = output[..., :num_classes] * (1 - 2e-4) + 1e-4
    positive = tf.cast(tf.equal(heat_target, 1.0), tf.float32)
    positive_loss = -tf.math.log(heat) * tf.square(1 - heat) * positive
    negative_loss = -tf.math.log(1 - heat) * tf.square(heat) * tf.pow(1 - heat_target, 4) * (1 - positive)
    boxes = tf.maximum(tf.reduce_sum(mask), 1.0)
    focal = (tf.reduce_sum(positive_loss) + tf.reduce_sum(negative_loss)) / boxes
    shape = tf.shape(output)
    flat = tf.reshape(output[..., num_classes:], (shape[0], shape[1] * shape[2], 4))
    picked = tf.gather(flat, cells, batch_dims=1)
    error = tf.abs(picked - regression) * mask[..., None]
    size = tf.reduce_sum(error[..., :2]) / boxes
    offset = tf.reduce_sum(error[..., 2:]) / boxes
    return focal + size_weight * size + offset


EXAMPLES = 6


def fit_detection(model, by_split, *, config: TrainConfig, tracker: Progress | None,
                  forward_with_head) -> tuple[object, dict, dict, list]:
    """Train the head; returns (head model, facts for detection.json, metrics on the test split,
    a few test images as (image, true boxes, predicted boxes) for the version page's plot).

    ``forward_with_head(head)`` builds the serving forward (probabilities, features, detection
    map): mAP is measured through it, as the version will run.
    """
    import keras
    import tensorflow as tf

    from mlcore.model import feature_maps

    started = time.monotonic()
    classes = detection_classes(by_split)
    index = {name: i for i, name in enumerate(classes)}
    maps_model = keras.Model(model.inputs[0], feature_maps(model), name="steelqc_feature_maps")
    train, val = boxed(by_split["train"]), boxed(by_split["val"])
    flips = FLIPS if config.detection_flips else FLIPS[:1]
    total = len(train) * len(flips) + len(val)
    cached = _feature_maps(maps_model, train, index=index, flips=flips, batch_size=config.batch_size,
                           tracker=tracker, done_before=0, total=total)
    held = _feature_maps(maps_model, val, index=index, flips=FLIPS[:1], batch_size=config.batch_size,
                         tracker=tracker, done_before=len(train) * len(flips), total=total)
    use = _maps_to_use(config.detection_maps, len(cached.maps))
    grid = int(cached.maps[use[0]].shape[1])
    targets = _targets(cached.boxes, grid=grid, num_classes=len(classes))
    val_targets = _targets(held.boxes, grid=grid, num_classes=len(classes))

    keras.utils.set_random_seed(config.seed)
    head = build_detection_head([m.shape[-1] for m in cached.maps], num_classes=len(classes),
                                width=config.detection_width, use_maps=use)
    steps = max(1, int(np.ceil(len(cached.boxes) / config.batch_size)))
    schedule = keras.optimizers.schedules.CosineDecay(config.detection_learning_rate,
                                                      decay_steps=steps * config.detection_epochs, alpha=0.05)
    optimizer = keras.optimizers.Adam(schedule)
    k = len(classes)

    @tf.function(reduce_retracing=True)
    def train_step(maps, heat, cells, regression, mask):
        with tf.GradientTape() as tape:
            output = head(maps, training=True)
            loss = detection_loss(output, heat, cells, regression, mask, num_classes=k,
                                  size_weight=config.detection_size_weight)
        gradients = tape.gradient(loss, head.trainable_variables)
        optimizer.apply_gradients(zip(gradients, head.trainable_variables))
        return loss

    @tf.function(reduce_retracing=True)
    def val_step(maps, heat, cells, regression, mask):
        return detection_loss(head(maps, training=False), heat, cells, regression, mask, num_classes=k,
                              size_weight=config.detection_size_weight)

    def batches(data: _Maps, parts, order):
        for start in range(0, len(order), config.batch_size):
            rows = order[start:start + config.batch_size]
            yield ([tf.constant(m[rows], tf.float32) for m in data.maps],
                   *[tf.constant(p[rows]) for p in parts])

    rng = np.random.default_rng(config.seed)
    history = {"loss": [], "val_loss": []}
    # The budget bounds the epochs, not the caching before them (that scales with the images and
    # the machine, and a head stopped after one epoch is worse than none).
    epochs_started = time.monotonic()
    stopped_by_budget = False
    best, best_weights = np.inf, head.get_weights()
    epochs_run = 0
    for epoch in range(config.detection_epochs):
        losses = [float(train_step(*batch)) for batch in batches(cached, targets, rng.permutation(len(cached.boxes)))]
        val_losses = [float(val_step(*batch)) for batch in batches(held, val_targets, np.arange(len(held.boxes)))]
        history["loss"].append(float(np.mean(losses)))
        history["val_loss"].append(float(np.mean(val_losses)))
        epochs_run = epoch + 1
        if history["val_loss"][-1] < best:
            best, best_weights = history["val_loss"][-1], head.get_weights()
        if tracker is not None:
            tracker.report("detection", 0.5 + 0.4 * epochs_run / config.detection_epochs, epoch=epochs_run,
                           metrics={"loss": history["loss"][-1], "val_loss": history["val_loss"][-1]})
        if time.monotonic() - epochs_started > config.detection_time_budget_s:
            stopped_by_budget = epochs_run < config.detection_epochs
            break
    head.set_weights(best_weights)
    del cached

    split = "test" if boxed(by_split["test"]) else "val"
    evaluated = boxed(by_split[split])
    truth = [[box for box in s.boxes if box[0] in index] for s in evaluated]
    predicted, sizes, examples = _predict_boxes(forward_with_head(head), evaluated, truth, classes=classes,
                                                batch_size=config.batch_size)
    metrics = detection_metrics(truth, predicted, classes=classes, sizes=sizes)
    metrics["split"] = split
    facts = {"classes": classes, "grid": grid, "maps": use, "width": config.detection_width,
             "flips": len(flips), "epochs_run": epochs_run, "stopped_by_time_budget": stopped_by_budget,
             "best_val_loss": float(best),
             "train_images": len(train), "wall_time_s": round(time.monotonic() - started, 2),
             "history": history}
    if tracker is not None:
        tracker.report("detection", 1.0, metrics={"map50": metrics["map50"]})
    return head, facts, metrics, examples


def _predict_boxes(forward, samples: Sequence[Sample], truth: list[list[tuple]], *, classes: list[str],
                   batch_size: int) -> tuple[list, list, list]:
    """(predicted boxes per sample, (width, height) per sample, a few (image, true, predicted)
    examples, one per main class first) through the serving forward, in batches."""
    from mlcore.inference import forward_in_batches

    predicted, sizes, examples, shown = [], [], [], set()
    for start in range(0, len(samples), batch_size):
        images = [load_image(sample.path) for sample in samples[start:start + batch_size]]
        _, _, grid_maps = forward_in_batches(forward, images, batch_size=batch_size)
        for image, boxes, grid_map in zip(images, truth[start:start + batch_size], grid_maps):
            predicted.append(decode(grid_map, classes))
            sizes.append((image.shape[1], image.shape[0]))
            main = boxes[0][0] if boxes else None
            if len(examples) < EXAMPLES and main not in shown:
                shown.add(main)
                examples.append((image, boxes, predicted[-1]))
    return predicted, sizes, examples


def _maps_to_use(choice: str, available: int) -> list[int]:
    """"all": every backbone map, the output grid at stride 8; "coarse": all but the finest
    (stride 16 grid, a quarter of the cells)."""
    if choice == "all":
        return list(range(available))
    if choice == "coarse":
        return list(range(1, available)) if available > 1 else [0]
    raise ValueError(f"detection_maps must be 'all' or 'coarse', got {choice!r}")
