"""Step 5b: the detector, when enough training images carry defect boxes.

The detector is trained for localisation, not bolted onto frozen classification maps: the head
(``mlcore.detection``) and the backbone's upper blocks (``detection_finetune_blocks``; BatchNorm
stays in inference mode) train together on views made per step from the decoded images (random
crop with scale and aspect jitter, flips: ``detection_views``), with a focal heat-map loss and a
GIoU box loss (``detection_loss``). The classifier shares that backbone, so one forward pass
still serves both: its cross-entropy is part of the same loss, and its validation accuracy is
watched so the detector may not buy its boxes with the classifier's answers: the epoch kept is
the best by validation mAP@0.5 among those within ``CLASSIFIER_TOLERANCE`` (or one image) of the classifier's
validation accuracy before the step (if none is, the epoch with the best accuracy).

Each epoch ends with the validation split's mAP@0.5 through the model as it serves. The run's
``detection_time_budget_s`` bounds the whole step: no epoch starts that would not end within it
(the first always runs). Then the class-aware NMS threshold is chosen on validation, and mAP on
the test split (val when there is none) is measured through the serving forward.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from mlcore.detection import LTRB, BoxDecoding, build_detection_head, detection_metrics
from mlcore.io import Sample, load_image
from mlcore.training.config import TrainConfig
from mlcore.training.detection_targets import encode_targets
from mlcore.training.detection_views import ViewConfig, view_batch
from mlcore.training.progress import Progress

EXAMPLES = 6
# Candidate class-aware NMS thresholds (None: heat-map peaks only), chosen on validation.
NMS_CANDIDATES = (None, 0.7, 0.6, 0.5, 0.4, 0.3)
TRAINING_NMS = 0.5            # the threshold the per-epoch validation mAP uses
CLASSIFIER_TOLERANCE = 0.01   # validation accuracy an epoch may cost the classifier
WARMUP_EPOCHS = 1


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


def learning_rate_at(step: int, *, total: int, warmup: int, peak: float, floor: float = 0.05) -> float:
    """Linear warm-up, then cosine decay to ``floor`` x ``peak`` at ``total`` steps."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    return peak * (floor + (1 - floor) * 0.5 * (1 + np.cos(np.pi * progress)))


class EpochBudget:
    """Starts epochs while the next one, as long as the longest so far, ends within the budget."""

    def __init__(self, budget_s: float, *, epochs: int, clock=time.monotonic):
        self.budget_s, self.epochs, self.clock = budget_s, epochs, clock
        self.started = clock()
        self.longest = 0.0
        self.run = 0

    def may_start(self) -> bool:
        if self.run >= self.epochs:
            return False
        return self.run == 0 or self.clock() - self.started + self.longest <= self.budget_s

    def ended(self, seconds: float) -> None:
        self.run += 1
        self.longest = max(self.longest, seconds)

    def epochs_that_fit(self) -> int:
        """How many epochs the budget holds at the pace so far (at least those run)."""
        if not self.run:
            return self.epochs
        pace = (self.clock() - self.started) / self.run
        return int(min(self.epochs, max(self.run, self.budget_s // max(pace, 1e-9))))

    @property
    def stopped_early(self) -> bool:
        return self.run < self.epochs


def fit_detection(model, backbone, by_split, *, config: TrainConfig, tracker: Progress | None, forward_with_head,
                  class_weights: np.ndarray | None = None, class_index: dict[str, int] | None = None,
                  ) -> tuple[object, dict, dict, list]:
    """Train the detector (and tune the shared backbone's upper blocks); returns (head model, facts
    for detection.json, metrics on the test split, a few test images as (image, true boxes,
    predicted boxes) for the version page's plot).

    ``forward_with_head(head)`` builds the serving forward (probabilities, features, detection
    map): every mAP is measured through it, as the version will run. ``class_index`` maps the
    classifier's classes to its outputs (for its share of the loss, weighted by ``class_weights``).
    """
    import keras

    from mlcore.model import backbone_submodel, feature_maps
    from mlcore.training.finetune import unfreeze_top_blocks

    started = time.monotonic()
    report = tracker.report if tracker is not None else (lambda *args, **kwargs: None)
    classes = detection_classes(by_split)
    index = {name: i for i, name in enumerate(classes)}
    train, val = boxed(by_split["train"]), boxed(by_split["val"])
    report("detection", 0.0)
    train_images = [load_image(sample.path) for sample in train]
    val_images = [load_image(sample.path) for sample in val]
    train_boxes = [[(index[label], *box) for label, *box in s.boxes if label in index] for s in train]
    val_truth = [[box for box in s.boxes if box[0] in index] for s in val]

    keras.utils.set_random_seed(config.seed)
    maps = feature_maps(model)
    use, upsample = _maps_to_use(config.detection_maps, len(maps))
    head = build_detection_head([m.shape[-1] for m in maps], num_classes=len(classes),
                                width=config.detection_width, use_maps=use, upsample=upsample)
    blocks = backbone.blocks[-config.detection_finetune_blocks:] if config.detection_finetune_blocks else []
    unfreeze_top_blocks(backbone_submodel(model), blocks)
    trainer = keras.Model(model.inputs[0], [model.outputs[0], head(maps)], name="steelqc_detector_training")
    forward = forward_with_head(head)
    grid = int(trainer(np.zeros((1, config.input_size, config.input_size, 3), np.float32))[1].shape[1])
    labels = np.array([class_index[s.label] if class_index and s.label in class_index else -1 for s in train])
    step = _train_step(trainer, head, config=config, num_classes=len(classes), class_weights=class_weights)

    budget = EpochBudget(config.detection_time_budget_s - (time.monotonic() - started), epochs=config.detection_epochs)
    val_labels = np.array([class_index.get(s.label, -1) if class_index else -1 for s in val])
    scored = _validate(forward, val_images, val_truth, val_labels, classes=classes, batch_size=config.batch_size)
    history = {"loss": [], "focal": [], "giou": [], "val_map50": [], "val_classifier_accuracy": [],
               "before": scored}
    # One validation image, or CLASSIFIER_TOLERANCE where that is more: a small split cannot resolve less.
    floor = scored["classifier_accuracy"] - max(CLASSIFIER_TOLERANCE, 1 / max(int((val_labels >= 0).sum()), 1))
    best = {"epoch": 0, "map50": -1.0, "weights": None}
    fallback = {"epoch": 0, "map50": -1.0, "weights": None, "accuracy": -1.0}
    rng = np.random.default_rng(config.seed)
    steps_per_epoch = max(1, int(np.ceil(len(train) / config.batch_size)))
    views = ViewConfig(crop_probability=config.detection_crop_probability, min_crop=config.detection_min_crop,
                       flips=config.detection_flips)
    global_step = 0
    while budget.may_start():
        epoch_started = time.monotonic()
        total_steps = steps_per_epoch * budget.epochs_that_fit()
        losses = []
        for n, batch in enumerate(_batches(train_images, train_boxes, labels, rng=rng, grid=grid,
                                           num_classes=len(classes), config=config, views=views)):
            rate = learning_rate_at(global_step, total=total_steps, warmup=steps_per_epoch * WARMUP_EPOCHS,
                                    peak=config.detection_learning_rate)
            losses.append(step(rate, *batch))
            global_step += 1
            report("detection", 0.05 + 0.85 * (budget.run + (n + 1) / steps_per_epoch) / budget.epochs_that_fit())
        scored = _validate(forward, val_images, val_truth, val_labels, classes=classes, batch_size=config.batch_size)
        budget.ended(time.monotonic() - epoch_started)
        for key, values in zip(("loss", "focal", "giou"), zip(*losses)):
            history[key].append(float(np.mean(values)))
        history["val_map50"].append(scored["map50"])
        history["val_classifier_accuracy"].append(scored["classifier_accuracy"])
        candidate = (model.get_weights(), head.get_weights())
        if scored["classifier_accuracy"] >= floor and scored["map50"] > best["map50"]:
            best = {"epoch": budget.run, "map50": scored["map50"], "weights": candidate}
        if scored["classifier_accuracy"] > fallback["accuracy"]:
            fallback = {"epoch": budget.run, "map50": scored["map50"], "weights": candidate,
                        "accuracy": scored["classifier_accuracy"]}
        report("detection", 0.05 + 0.85 * budget.run / budget.epochs_that_fit(), epoch=budget.run,
               metrics={"loss": history["loss"][-1], "val_map50": scored["map50"]})
    history["classifier_kept"] = best["weights"] is not None
    if best["weights"] is None:  # no epoch kept the classifier: the one that kept the most of it
        best = fallback
    model.set_weights(best["weights"][0])
    head.set_weights(best["weights"][1])
    decoding, nms_scores = choose_nms(forward, val_images, val_truth, classes=classes, batch_size=config.batch_size)
    report("detection", 0.95)

    split = "test" if boxed(by_split["test"]) else "val"
    evaluated = boxed(by_split[split])
    truth = [[box for box in s.boxes if box[0] in index] for s in evaluated]
    predicted, sizes, examples = _predict_boxes(forward, evaluated, truth, classes=classes,
                                                batch_size=config.batch_size, decoding=decoding)
    metrics = detection_metrics(truth, predicted, classes=classes, sizes=sizes)
    metrics["split"] = split
    facts = {"classes": classes, "grid": grid, "maps": use, "upsample": upsample, "width": config.detection_width,
             "decoding": decoding.to_dict(), "nms_validation_map50": nms_scores,
             "finetuned_blocks": [block[0].split("_")[0] for block in blocks],
             "augmentation": {"crop_probability": views.crop_probability, "min_crop": views.min_crop,
                              "flips": views.flips},
             "epochs_run": budget.run, "best_epoch": best["epoch"], "best_val_map50": best["map50"],
             "stopped_by_time_budget": budget.stopped_early,
             "train_images": len(train), "wall_time_s": round(time.monotonic() - started, 2), "history": history}
    report("detection", 1.0, metrics={"map50": metrics["map50"]})
    return head, facts, metrics, examples


def _train_step(trainer, head, *, config: TrainConfig, num_classes: int, class_weights):
    """One optimisation step: the head at the learning rate, the backbone's unfrozen blocks and the
    classifier's dense layer at ``detection_backbone_lr_scale`` of it."""
    import keras
    import tensorflow as tf

    from mlcore.training.detection_loss import detection_loss

    head_variables = list(head.trainable_variables)
    own = {id(v) for v in head_variables}
    shared_variables = [v for v in trainer.trainable_variables if id(v) not in own]
    head_optimizer, shared_optimizer = keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-4)
    head_optimizer.build(head_variables)
    if shared_variables:
        shared_optimizer.build(shared_variables)
    weights = tf.constant(class_weights if class_weights is not None else np.ones(1024), tf.float32)
    scale = config.detection_backbone_lr_scale
    classifier_weight = config.detection_classifier_weight

    @tf.function(reduce_retracing=True)
    def step(images, labels, heat, box_target, box_weight):
        with tf.GradientTape() as tape:
            probabilities, output = trainer(images, training=True)
            total, focal, box = detection_loss(output, heat, box_target, box_weight, num_classes=num_classes,
                                               box_loss_weight=config.detection_box_weight)
            if classifier_weight > 0:  # the classifier's cross-entropy on the views whose class it knows
                known = labels >= 0
                truth = tf.boolean_mask(labels, known)
                per_image = keras.losses.sparse_categorical_crossentropy(truth, tf.boolean_mask(probabilities, known))
                per_image *= tf.gather(weights, truth)
                total += classifier_weight * tf.reduce_sum(per_image) / tf.maximum(
                    tf.reduce_sum(tf.cast(known, tf.float32)), 1.0)
        gradients = tape.gradient(total, head_variables + shared_variables)
        head_optimizer.apply_gradients(zip(gradients[:len(head_variables)], head_variables))
        if shared_variables:
            shared_optimizer.apply_gradients(zip(gradients[len(head_variables):], shared_variables))
        return total, focal, box

    def run(rate: float, images, labels, heat, box_target, box_weight):
        head_optimizer.learning_rate.assign(rate)
        shared_optimizer.learning_rate.assign(rate * scale)
        outputs = step(tf.constant(images), tf.constant(labels, tf.int32), tf.constant(heat),
                       tf.constant(box_target), tf.constant(box_weight))
        return tuple(float(v) for v in outputs)

    return run


def _batches(images, boxes, labels, *, rng, grid: int, num_classes: int, config: TrainConfig, views: ViewConfig):
    """Shuffled training batches of fresh views and their targets; the next batch is made on a
    second thread while the current one trains."""
    order = rng.permutation(len(images))
    chunks = [order[start:start + config.batch_size] for start in range(0, len(order), config.batch_size)]
    seeds = rng.integers(0, 2**31, len(chunks))

    def make(chunk, seed):
        local = np.random.default_rng(seed)
        pictures, moved = view_batch([images[i] for i in chunk], [boxes[i] for i in chunk], size=config.input_size,
                                     rng=local, config=views)
        heat, target, weight = (np.stack(part) for part in zip(*[
            encode_targets(known, grid=grid, num_classes=num_classes) for known in moved]))
        return pictures, labels[chunk], heat, target, weight

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(make, chunks[0], seeds[0]) if chunks else None
        for n in range(len(chunks)):
            batch = pending.result()
            pending = pool.submit(make, chunks[n + 1], seeds[n + 1]) if n + 1 < len(chunks) else None
            yield batch


def _validate(forward, images, truth, labels, *, classes, batch_size: int) -> dict:
    """Validation mAP@0.5 (at the training NMS) and the classifier's accuracy, through ``forward``."""
    from mlcore.inference import forward_in_batches

    probabilities, _, grid_maps = forward_in_batches(forward, images, batch_size=batch_size)
    decoding = BoxDecoding(encoding=LTRB, nms_iou=TRAINING_NMS)
    predicted = [decoding.decode(grid_map, classes) for grid_map in grid_maps]
    sizes = [(image.shape[1], image.shape[0]) for image in images]
    known = labels >= 0
    accuracy = float(np.mean(probabilities[known].argmax(axis=1) == labels[known])) if known.any() else 0.0
    return {"map50": detection_metrics(truth, predicted, classes=classes, sizes=sizes)["map50"],
            "classifier_accuracy": accuracy}


def choose_nms(forward, images, truth, *, classes, batch_size: int) -> tuple[BoxDecoding, dict]:
    """The decoding whose class-aware NMS threshold gives the best validation mAP@0.5 (ties: the
    better mAP@0.5:0.95), and each candidate's figures."""
    from mlcore.inference import forward_in_batches

    _, _, grid_maps = forward_in_batches(forward, images, batch_size=batch_size)
    sizes = [(image.shape[1], image.shape[0]) for image in images]
    scores, best, best_key = {}, None, None
    for nms in NMS_CANDIDATES:
        decoding = BoxDecoding(encoding=LTRB, nms_iou=nms)
        result = detection_metrics(truth, [decoding.decode(m, classes) for m in grid_maps], classes=classes,
                                   sizes=sizes)
        scores[str(nms)] = {"map50": result["map50"], "map50_95": result["map50_95"]}
        key = (round(result["map50"], 4), result["map50_95"])
        if best_key is None or key > best_key:
            best, best_key = decoding, key
    return best, scores


def _predict_boxes(forward, samples: Sequence[Sample], truth: list[list[tuple]], *, classes: list[str],
                   batch_size: int, decoding: BoxDecoding = BoxDecoding()) -> tuple[list, list, list]:
    """(predicted boxes per sample, (width, height) per sample, a few (image, true, predicted)
    examples, one per main class first) through the serving forward, in batches."""
    from mlcore.inference import forward_in_batches

    predicted, sizes, examples, shown = [], [], [], set()
    for start in range(0, len(samples), batch_size):
        images = [load_image(sample.path) for sample in samples[start:start + batch_size]]
        _, _, grid_maps = forward_in_batches(forward, images, batch_size=batch_size)
        for image, boxes, grid_map in zip(images, truth[start:start + batch_size], grid_maps):
            predicted.append(decoding.decode(grid_map, classes))
            sizes.append((image.shape[1], image.shape[0]))
            main = boxes[0][0] if boxes else None
            if len(examples) < EXAMPLES and main not in shown:
                shown.add(main)
                examples.append((image, boxes, predicted[-1]))
    return predicted, sizes, examples


DETECTION_MAPS = ("all", "fine", "coarse")


def _maps_to_use(choice: str, available: int) -> tuple[list[int], int]:
    """(the backbone maps fused, the head's upsampling): "all": every map, the output grid at
    stride 8; "fine": every map, the grid upsampled to stride 4; "coarse": all but the finest
    (stride 16 grid, a quarter of the cells)."""
    if choice == "all":
        return list(range(available)), 1
    if choice == "fine":
        return list(range(available)), 2
    if choice == "coarse":
        return (list(range(1, available)) if available > 1 else [0]), 1
    raise ValueError(f"detection_maps must be one of {', '.join(DETECTION_MAPS)}, got {choice!r}")
