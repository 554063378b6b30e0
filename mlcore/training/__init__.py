"""Training a model version from labelled samples: ``train(config, samples, out_dir=...)``.

A run is a sequence of steps, each in its own module:

1. **inputs** (``inputs.py``): check the samples, then pass every training image through the
   frozen backbone once clean and a few times augmented (``mlcore.augment``), keeping only the
   pooled multi-depth descriptor (``mlcore.model``);
2. **head** (``head.py``): phase 1, the softmax head on those vectors, early-stopped on
   validation loss (``losses.py`` has the one loss every step uses);
3. **fine-tuning** (``finetune.py``): phase 2, optional, the top backbone blocks on images;
4. **detection** (``detection.py``), when images carry boxes: the detector's head and the
   backbone's top blocks train with the detection loss (the classifier's loss joins in, so the
   one shared backbone keeps serving both);
5. **OOD** (``ood.py`` at package level): the descriptors of the training views (read again when
   fine-tuning or detection moved the backbone) become the nearest-neighbour memory, calibrated
   so 95 % of validation images pass; **suspect labels** (``mlcore.suspects``): out-of-fold
   scores of every labelled image;
6. **evaluation** (``evaluate.py``): metrics on the test split;
7. **export** (``artefact.py`` here): the artefact directory, plots and the verified serving copies.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from mlcore.io import Sample
from mlcore.training.config import TrainConfig, TrainResult
from mlcore.training.progress import Progress, ProgressCallback, TrainingCancelled

__all__ = ["Sample", "TrainConfig", "TrainResult", "TrainingCancelled", "train"]


def train(config: TrainConfig, samples: Sequence[Sample], *, out_dir: str | Path,
          progress: ProgressCallback | None = None,
          should_cancel: Callable[[], bool] | None = None) -> TrainResult:
    import keras

    from mlcore.backbones import build_backbone, resolve_backbone_name
    from mlcore.inference import compile_forward
    from mlcore.model import build_classifier
    from mlcore.training.artefact import write_artefact
    from mlcore.training.detection import fit_detection, should_train_detection
    from mlcore.training.evaluate import evaluate_split, validation_threshold_curves
    from mlcore.training.finetune import FinetuneData, finetune, should_finetune
    from mlcore.training.head import fit_head
    from mlcore.training.inputs import cache_features, check_samples
    from mlcore.training.losses import class_weights
    from mlcore.training.ood import fit_ood, score_suspects

    started = time.monotonic()
    tracker = Progress(progress, should_cancel)
    classes, by_split = check_samples(samples)
    index = {name: i for i, name in enumerate(classes)}
    keras.utils.set_random_seed(config.seed)
    rng = np.random.default_rng(config.seed)

    backbone = build_backbone(
        resolve_backbone_name(config.backbone, resnet50_weights=config.resnet50_weights),
        weights=config.weights, resnet50_weights=config.resnet50_weights,
        cache_dir=config.cache_dir, input_size=config.input_size)
    model = build_classifier(backbone=backbone, num_classes=len(classes), dropout=config.dropout)
    forward = compile_forward(model)

    cache = cache_features(forward, by_split, index=index, config=config, rng=rng, tracker=tracker)
    weights = class_weights(cache.train_labels, len(classes))
    history = fit_head(model, cache, weights=weights, config=config, tracker=tracker)

    finetuned = False
    if should_finetune(config, history, elapsed_s=time.monotonic() - started):
        data = FinetuneData(train=by_split["train"], val=by_split["val"], index=index, weights=weights)
        finetuned = finetune(model, backbone, data, config=config, rng=rng, tracker=tracker,
                             started=started, history=history, forward=forward)
    tracker.report("finetune", 1.0)
    history["finetuned"] = finetuned

    detect, why = should_train_detection(config, by_split)
    detection = None
    if detect:
        head, facts, detection_metrics, examples = fit_detection(
            model, backbone, by_split, config=config, tracker=tracker, class_weights=weights, class_index=index,
            forward_with_head=lambda trained: compile_forward(model, trained))
        detection = (head, facts, examples)
    if finetuned or (detection is not None and detection[1]["finetuned_blocks"]):
        # The descriptors moved with the backbone: the OOD memory and the suspect scores need new ones.
        cache = cache_features(forward, by_split, index=index, config=config,
                               rng=np.random.default_rng(config.seed + 1), tracker=None)

    ood = fit_ood(cache, config=config, layers=list(backbone.texture_layers))
    suspects = score_suspects(cache, by_split, classes=classes, config=config)
    split = "test" if by_split["test"] else "val"
    metrics = evaluate_split(forward, ood, by_split[split], classes=classes, config=config, tracker=tracker)
    metrics["split"] = split
    metrics["thresholds"] = validation_threshold_curves(model, cache, classes=classes, config=config)
    metrics["detection"] = detection_metrics if detect else {"trained": False, "reason": why}
    write_artefact(Path(out_dir), model=model, classes=classes, metrics=metrics, ood=ood, suspects=suspects,
                   history=history, config=config, backbone=backbone, cache=cache, by_split=by_split,
                   forward=compile_forward(model, detection[0]) if detection else forward,
                   wall_time_s=time.monotonic() - started, detection=detection, tracker=tracker)
    tracker.report("export", 1.0, metrics={"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]})
    return TrainResult(model_dir=str(out_dir), classes=classes, metrics=metrics, history=history)
