"""Step 6b: the artefact directory: model, classes, config, metrics, OOD memory, suspects,
plots and the verified serving copy (names in ``mlcore.artefact``)."""

from __future__ import annotations

from pathlib import Path

from mlcore.artefact import DETECTION_CONFIG_FILE, DETECTION_FILE, DETECTION_PLOT_FILE, REVIEW_RULE, SUSPECTS_FILE
from mlcore.io import load_image
from mlcore.training.config import TrainConfig
from mlcore.training.inputs import FeatureCache
from mlcore.training.progress import Progress


def write_artefact(out_dir: Path, *, model, classes: list[str], metrics: dict, ood, suspects: list[dict],
                   history: dict, config: TrainConfig, backbone, cache: FeatureCache, by_split,
                   forward, wall_time_s: float, detection=None, tracker: Progress | None = None) -> None:
    """``detection``: (head model, facts, example images) when a detection head was trained;
    ``forward`` then gives its map too, so the serving copy is checked with it. ``tracker`` hears
    the "export" phase begin and pass its steps."""
    report = tracker.report if tracker is not None else (lambda *args, **kwargs: None)
    report("export", 0.0)
    from mlcore.model import save_artefact, write_json
    from mlcore.plots import save_plots

    facts = {"finetuned": history["finetuned"], "wall_time_s": round(wall_time_s, 2),
             "images": {name: len(items) for name, items in by_split.items()},
             "typical_image_shape": cache.typical_shape, "phase1_best": history["head_best"]}
    save_artefact(out_dir=out_dir, model=model, classes=classes, metrics=metrics, ood=ood,
                  config=artefact_config(config, backbone=backbone, ood=ood, facts=facts))
    write_json(out_dir / SUSPECTS_FILE, suspects)
    if detection is not None:
        from mlcore.plots import plot_detection_examples

        head, facts, examples = detection
        head.save(out_dir / DETECTION_FILE)
        write_json(out_dir / DETECTION_CONFIG_FILE, facts)
        plot_detection_examples(out_dir / DETECTION_PLOT_FILE, examples=examples)
    save_plots(out_dir=out_dir, metrics=metrics, history=history)
    report("export", 0.1)
    if config.serving_export:
        export_serving_copy(out_dir, forward, by_split, typical_shape=cache.typical_shape, classes=classes,
                            ood=ood, int8=config.serving_int8, report=report)


def artefact_config(config: TrainConfig, *, backbone, ood, facts: dict) -> dict:
    import mlcore

    return {
        "mlcore_version": mlcore.__version__,
        "backbone": {"name": backbone.name, "weight_source": backbone.weight_source.to_dict(),
                     "input_size": backbone.input_size, "last_conv_layer": backbone.last_conv_layer,
                     "feature_layers": list(backbone.texture_layers)},
        "input": {"channels": [1, 3], "value_range": [0, 255], "any_size": True,
                  "typical_image_shape": facts["typical_image_shape"]},
        "training": {"params": config.to_dict(), **facts},
        "ood": ood.summary(),
        "review": {"confidence_threshold": config.confidence_threshold,
                   "margin_threshold": config.margin_threshold, "rule": REVIEW_RULE},
    }


def export_serving_copy(out_dir: Path, forward, by_split, *, typical_shape, classes: list[str], ood,
                        int8: bool = True, report=lambda *args, **kwargs: None) -> None:
    """The verified fp32 TFLite copy, then (``int8``) the full-integer copy, kept only if it is
    as good on the validation split (``mlcore.serving.int8_check``)."""
    from mlcore.serving import INT8_CALIBRATION_IMAGES, int8_serving_export, serving_export

    want = tuple(typical_shape) if len(typical_shape) == 3 else (*typical_shape, 1)

    def of_shape(samples, limit: int):
        for sample in samples:
            image = load_image(sample.path)
            if (image.shape if image.ndim == 3 else (*image.shape, 1)) == want:
                yield sample, image
                limit -= 1
                if limit == 0:
                    return

    samples = [image for _, image in of_shape(by_split["val"] + by_split["test"], 32)]
    serving = serving_export(model_dir=out_dir, sample_images=samples, keras_forward=forward, num_classes=len(classes))
    report("export", 0.5)
    if not int8 or serving.get("runtime") != "tflite":
        return
    check = list(of_shape(by_split["val"] or by_split["test"], 10_000))
    index = {name: i for i, name in enumerate(classes)}
    train = by_split["train"]
    spread = train[::max(1, len(train) // INT8_CALIBRATION_IMAGES)]  # every class, not the first few
    int8_serving_export(
        model_dir=out_dir, calibration_images=[image for _, image in of_shape(spread, INT8_CALIBRATION_IMAGES)],
        check_images=[image for _, image in check], check_labels=[index[sample.label] for sample, _ in check],
        num_classes=len(classes), distances=ood.distances, threshold=getattr(ood, "threshold", None))
