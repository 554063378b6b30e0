"""``python -m mlcore``: train, evaluate, predict and export from the command line.

Arguments and folders are checked before TensorFlow is imported, so a typo fails in well
under a second. Every expected failure ends as one ``error: ...`` line on stderr and a
non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from mlcore.anomaly.cli import add_anomaly_commands
from mlcore.artefact import CLASSES_FILE, EXPORT_FORMATS, MODEL_FILE, REVIEW_REASONS
from mlcore.io import (
    ClassMismatchError,
    DatasetError,
    ImageReadError,
    Sample,
    batched,
    scan_class_folders,
)
from mlcore.training import parameters as training_parameters
from mlcore.training.parameters import (
    AUTO_ON_OFF,
    BOOL,
    CHOICE,
    Parameter,
    ParameterError,
    describe,
    train_config,
)

EXIT_ERROR = 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Keep TensorFlow's C++ start-up chatter off stderr, where our one error line goes.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except (DatasetError, ImageReadError, ClassMismatchError, FileNotFoundError, ValueError) as exc:
        return _fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - the contract is one line, never a traceback
        return _fail(f"{type(exc).__name__}: {exc}")


def _fail(message: str) -> int:
    print("error: " + " ".join(message.split()), file=sys.stderr)
    return EXIT_ERROR


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mlcore", description="steelqc's steel-surface defect classifier engine.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a model from a folder-per-class dataset",
                                description="Train a model version. DIR holds one sub-folder per class; "
                                "images are split 70/15/15 (train/val/test), stratified, byte-identical "
                                "files on the same side. Reads STEELQC_RESNET50_WEIGHTS and STEELQC_CACHE_DIR.")
    train.add_argument("--data", required=True, metavar="DIR", help="folder with one sub-folder per class")
    train.add_argument("--out", required=True, metavar="MODEL_DIR", help="where to write the artefact")
    train.add_argument("--split-seed", type=int, default=0, help="seed of the train/val/test assignment")
    add_parameter_options(train.add_argument_group("training parameters (the platform's, with the same limits)"))
    train.add_argument("--serving", default="auto", choices=("auto", "fp32", "off"),
                       help="serving copies: auto (the verified fp32 TFLite copy, and the int8 copy when it passes its "
                            "check), fp32 (that copy only), off (none: the Keras model serves)")
    train.add_argument("--annotations", default=None, metavar="ADIR",
                       help="defect boxes for the images: VOC XML (NEU-DET naming too) or YOLO text; with enough "
                            "boxed images the run also trains the detection head")
    train.add_argument("--yolo-classes", default=None, metavar="A,B,C",
                       help="YOLO class names in id order (default: ADIR/classes.txt, or inferred from ADIR's "
                            "class folders)")
    train.add_argument("--json", action="store_true", help="print the result as one JSON object")
    train.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser("evaluate", help="score a model on a folder-per-class dataset")
    evaluate.add_argument("--model", required=True, metavar="MODEL_DIR")
    evaluate.add_argument("--data", required=True, metavar="DIR")
    evaluate.add_argument("--split", default="all", choices=("all", "train", "val", "test"),
                          help="score only one split of DIR (same rule and --split-seed as train)")
    evaluate.add_argument("--split-seed", type=int, default=0)
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(handler=_evaluate)

    predict = commands.add_parser("predict", help="classify image files")
    predict.add_argument("--model", required=True, metavar="MODEL_DIR")
    predict.add_argument("--json", action="store_true", help="one JSON line per file")
    predict.add_argument("files", nargs="+", metavar="FILE")
    predict.set_defaults(handler=_predict)

    export = commands.add_parser("export", help="write a SavedModel, TFLite or ONNX copy for edge devices")
    export.add_argument("--model", required=True, metavar="MODEL_DIR")
    export.add_argument("--out", required=True, metavar="OUT")
    export.add_argument("--format", default="saved_model", choices=EXPORT_FORMATS)
    export.set_defaults(handler=_export)

    fetch = commands.add_parser(
        "fetch-weights", help="download a backbone's published ImageNet weights once (needs network)",
        description="Download the published weights file, check its hash and store it where "
                    "--backbone auto looks. Nothing else in mlcore ever downloads.")
    fetch.add_argument("backbone", choices=("resnet50",))
    fetch.add_argument("--to", default=None, metavar="PATH",
                       help="file to write (default: $STEELQC_RESNET50_WEIGHTS or $KERAS_HOME/models/...)")
    fetch.add_argument("--url", default=None, help="a mirror of the file (default: Keras' own address)")
    fetch.add_argument("--md5", default=None, help="expected md5 (default: the hash Keras publishes)")
    fetch.set_defaults(handler=_fetch_weights)

    add_anomaly_commands(commands)
    return parser


def add_parameter_options(group, parameters: Sequence[Parameter] | None = None) -> None:
    """One option per training parameter the command line offers, from mlcore's schema: its name
    with dashes (and older spellings), its limits, help and default. A value is checked by the
    schema as it is parsed, so a bad one is refused in the platform's words; an option left out
    leaves TrainConfig's default."""
    for param in (training_parameters.PARAMETERS if parameters is None else parameters):
        if not param.cli:
            continue
        flag = "--" + param.name.replace("_", "-")
        about = describe(param).replace("%", "%%")
        if param.kind == CHOICE and param.choices == AUTO_ON_OFF:  # a mode: --NAME is on, --no-NAME off
            modes = group.add_mutually_exclusive_group()
            modes.add_argument(flag, dest=param.name, action="store_const", const="on", default=None,
                               help=f"{param.name} on: {about}")
            modes.add_argument(f"--no-{flag[2:]}", dest=param.name, action="store_const", const="off",
                               default=None, help=f"{param.name} off")
        elif param.kind == BOOL:
            group.add_argument(flag, *param.cli_aliases, dest=param.name, action=argparse.BooleanOptionalAction,
                               default=None, help=about)
        else:
            group.add_argument(flag, *param.cli_aliases, dest=param.name, type=_checked(param), default=None,
                               metavar="{" + ",".join(param.choices) + "}" if param.kind == CHOICE else None,
                               help=about)


def _checked(param: Parameter):
    def parse(text: str):
        try:
            return param.clean(text)
        except ParameterError as error:
            raise argparse.ArgumentTypeError(error.message) from None

    return parse


def parameter_values(args, parameters: Sequence[Parameter] | None = None) -> dict:
    """The training parameters given on the command line (already checked as they were parsed)."""
    if parameters is None:
        parameters = training_parameters.PARAMETERS
    return {param.name: getattr(args, param.name) for param in parameters
            if param.cli and getattr(args, param.name, None) is not None}


def split_samples(data_dir: str, *, seed: int) -> list[Sample]:
    """Folder-per-class files with their 70/15/15 split (duplicates share a side)."""
    from mlcore.io import file_sha256
    from mlcore.splits import assign_splits

    files = scan_class_folders(data_dir)
    keys = [file_sha256(f.path) for f in files]
    splits = assign_splits(zip(keys, (f.label for f in files)), seed=seed)
    return [Sample(path=f.path, label=f.label, split=splits[key]) for f, key in zip(files, keys)]


def _require_model_dir(path: str) -> None:
    if not Path(path).is_dir():
        raise FileNotFoundError(f"model folder not found: {path}")
    if not (Path(path) / MODEL_FILE).is_file():
        raise FileNotFoundError(f"{path} is not a model folder (no {MODEL_FILE})")


def _train(args) -> int:
    samples = split_samples(args.data, seed=args.split_seed)
    annotations = None
    if args.annotations:
        from mlcore.annotations import attach_annotations

        classes = [name.strip() for name in (args.yolo_classes or "").split(",") if name.strip()] or None
        samples, annotations = attach_annotations(samples, args.annotations, yolo_classes=classes)
        if not args.quiet:
            print(f"annotations: {annotations.to_dict()}", file=sys.stderr, flush=True)
    from mlcore.training import train

    config = train_config(
        {**parameter_values(args), "serving_export": args.serving != "off", "serving_int8": args.serving == "auto"},
        resnet50_weights=os.environ.get("STEELQC_RESNET50_WEIGHTS") or None,
        cache_dir=os.environ.get("STEELQC_CACHE_DIR") or None)

    def report(fraction: float, info: dict) -> None:
        epoch = f" epoch {info['epoch']}" if info.get("epoch") else ""
        print(f"{fraction:6.1%} {info['phase']}{epoch}", file=sys.stderr, flush=True)

    result = train(config, samples, out_dir=args.out, progress=None if args.quiet else report)
    summary = {"model_dir": result.model_dir, "classes": result.classes,
               "accuracy": result.metrics["accuracy"], "macro_f1": result.metrics["macro_f1"],
               "split": result.metrics.get("split"), "finetuned": result.history.get("finetuned")}
    detection = result.metrics.get("detection") or {}
    if annotations is not None:
        summary["annotations"] = annotations.to_dict()
        summary["detection"] = ({"map50": detection["map50"], "map50_95": detection["map50_95"]}
                                if "map50" in detection else detection)
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"model written to {result.model_dir}: {summary['split']} accuracy "
              f"{summary['accuracy']:.4f}, macro-F1 {summary['macro_f1']:.4f}"
              + (f"; boxes mAP@0.5 {detection['map50']:.4f}, mAP@0.5:0.95 {detection['map50_95']:.4f}"
                 if "map50" in detection else ""))
    return 0


def _evaluate(args) -> int:
    _require_model_dir(args.model)
    if args.split == "all":
        files = scan_class_folders(args.data)
    else:
        files = [s for s in split_samples(args.data, seed=args.split_seed) if s.split == args.split]
    from mlcore.evaluation import evaluate, label_indices

    # Compare class lists before loading TensorFlow and the model, which takes seconds.
    label_indices([f.label for f in files], json.loads((Path(args.model) / CLASSES_FILE).read_text()))
    from mlcore.inference import Classifier

    classifier = Classifier.load(args.model)
    results = []
    for chunk in batched(files, 64):
        results.extend(classifier.predict([_load(f.path) for f in chunk]))
    import numpy as np

    metrics = evaluate(classes=classifier.classes, true_labels=[f.label for f in files],
                       probabilities=np.array([[r.probabilities[name] for name in classifier.classes] for r in results]))
    metrics["needs_review_rate"] = sum(r.needs_review for r in results) / len(files) if files else 0.0
    metrics["review"] = _review_summary(results, ood=classifier.config.get("ood") or {})
    if args.json:
        print(json.dumps(metrics))
    else:
        print(f"{len(files)} images: accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}, "
              f"ECE {metrics['ece']:.4f}, needs review {metrics['needs_review_rate']:.1%}")
        for name, row in metrics["per_class"].items():
            print(f"  {name:20s} precision {row['precision']:.3f} recall {row['recall']:.3f} "
                  f"f1 {row['f1']:.3f} support {row['support']}")
    return 0


def _review_summary(results, *, ood: dict) -> dict:
    """How the review rule treated these images: OOD pass rate, share per reason, the OOD method."""
    count = max(len(results), 1)
    return {"needs_review_rate": sum(r.needs_review for r in results) / count,
            "ood_pass_rate": sum(r.ood_score <= 1.0 for r in results) / count,
            "reasons": {code: sum(code in r.review_reasons for r in results) / count for code in REVIEW_REASONS},
            "ood_method": ood.get("method"), "ood_threshold": ood.get("threshold")}


def _load(path: str):
    from mlcore.io import load_image

    return load_image(path)


def _predict(args) -> int:
    _require_model_dir(args.model)
    missing = [f for f in args.files if not Path(f).is_file()]
    if missing:
        raise FileNotFoundError(f"file not found: {', '.join(missing)}")
    from mlcore.inference import Classifier

    classifier = Classifier.load(args.model)
    failures = 0
    for chunk in batched(args.files, 32):
        images, readable = [], []
        for path in chunk:
            try:
                images.append(_load(path))
                readable.append(path)
            except ImageReadError as exc:
                print(f"error: {exc}", file=sys.stderr)
                failures += 1
        for path, image, result in zip(readable, images, classifier.predict(images)):
            if args.json:
                line = {"file": path, **result.to_dict()}
                if classifier.detection_head is None:
                    line.pop("boxes")
                else:  # the command line speaks image pixels; the API fractions
                    line["boxes"] = [in_pixels(box, width=image.shape[1], height=image.shape[0])
                                     for box in result.boxes]
                print(json.dumps(line), flush=True)
            else:
                flag = f"  [needs review: {', '.join(result.review_reasons)}]" if result.needs_review else ""
                print(f"{path}: {result.label} ({result.confidence:.3f}, ood {result.ood_score:.2f}){flag}")
    return EXIT_ERROR if failures else 0


def _fetch_weights(args) -> int:
    from mlcore.weights.fetch import WeightsDownloadError, fetch_pretrained_weights

    try:
        result = fetch_pretrained_weights(args.backbone, destination=args.to, url=args.url, md5=args.md5)
    except WeightsDownloadError as error:
        return _fail(str(error))
    verb = "downloaded" if result.downloaded else "already present"
    print(f"{args.backbone} weights {verb}: {result.path} ({result.size} bytes, md5 {result.md5}, "
          f"sha256 {result.sha256})")
    return 0


def _export(args) -> int:
    _require_model_dir(args.model)
    from mlcore.export import export_model

    written = export_model(model_dir=args.model, out_dir=args.out, format=args.format)
    print(f"exported {args.format} to {written}")
    return 0


def in_pixels(box: dict, *, width: int, height: int) -> dict:
    """A prediction's box (fractions) as ``{"label", "score", "box": [x0, y0, x1, y1]}`` in pixels."""
    x0, y0, x1, y1 = box["box"]
    return {"label": box["label"], "score": box["score"],
            "box": [round(x0 * width, 1), round(y0 * height, 1), round(x1 * width, 1), round(y1 * height, 1)]}
