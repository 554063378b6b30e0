"""Detection benchmark: mAP of the detector on NEU-DET and CR7-DET, training time and serving
speed with and without boxes, in the same run; and the ablation table of what each change gave.

NEU: the images of ``neu-cls`` with the duplicate-safe 70/15/15 split every benchmark uses, their
boxes from ``neu-det-annotations`` (Pascal VOC). CR7-DET: its images and YOLO boxes with the same
split rule (``--limit 200`` per class, or all of it). Each set trains the default model (classifier
+ detector) through ``mlcore.training.train``, as a training run does; mAP@0.5 and mAP@0.5:0.95 on
the test split come from pycocotools, with the class-aware NMS the run chose on validation (and,
for the ablation, with heat-map peaks only). Speed: the same artefact served with its boxes and
without them (a copy of the artefact without the head and its own verified TFLite copy),
alternating rounds at batch 32 and 1.

    make bench-detect           # or: .venv/bin/python benchmarks/bench_detect.py --help
    # an ablation run (one change off), kept beside the others and read by --docs-only:
    python benchmarks/bench_detect.py --sets neu --finetune-blocks 0 --no-speed --no-docs \
        --out benchmarks/results/detect-ablation-frozen.json
    python benchmarks/bench_detect.py --docs-only   # docs/benchmarks.md from the saved results
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from the checkout

from benchmarks.bench_int8 import alternating_speed  # noqa: E402
from benchmarks.stack import replace_doc_section  # noqa: E402
from mlcore.annotations import attach_annotations  # noqa: E402
from mlcore.cli import split_samples  # noqa: E402
from mlcore.io import Sample, load_image  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT.parent / "shared" / "datasets"
RESULTS = ROOT / "benchmarks" / "results" / "detect.json"
RESULTS_DIR = RESULTS.parent
TARGETS = {"neu_map50": 0.75, "neu_map50_next": 0.80, "cr7_map50": 0.60, "train_minutes": 30,
           "batched_images_per_s_with_boxes": 60, "boxes_cost": 0.20}


def log(message: str) -> None:
    print(f"[detect {time.strftime('%H:%M:%S')}] {message}", flush=True)


def with_boxes(samples: list[Sample], annotations: Path, limit: int | None) -> list[Sample]:
    """The samples (at most ``limit`` per class, split shares kept) with their boxes from ``annotations``."""
    if limit is not None:
        kept, seen = [], {}
        for sample in samples:
            key = (sample.label, sample.split)
            seen[key] = seen.get(key, 0) + 1
            if seen[key] <= max(1, int(limit * {"train": 0.7, "val": 0.15, "test": 0.15}[sample.split])):
                kept.append(sample)
        samples = kept
    boxed, report = attach_annotations(samples, annotations)
    log(f"annotations {annotations}: {report.to_dict()}")
    return boxed


def without_head(model_dir: Path, scratch: Path, images) -> Path:
    """A copy of the artefact without the detection head, with its own verified TFLite copy."""
    from mlcore.artefact import DETECTION_CONFIG_FILE, DETECTION_FILE, SERVING_FILE, SERVING_INT8_FILE
    from mlcore.inference import compile_forward
    from mlcore.model import load_keras_model, read_classes
    from mlcore.serving import serving_export

    copy = scratch / "no-boxes"
    shutil.copytree(model_dir, copy)
    for name in (DETECTION_FILE, DETECTION_CONFIG_FILE, SERVING_FILE, SERVING_INT8_FILE):
        (copy / name).unlink(missing_ok=True)
    serving_export(model_dir=copy, sample_images=images[:32], keras_forward=compile_forward(load_keras_model(copy)),
                   num_classes=len(read_classes(copy)))
    return copy


def run_set(name: str, samples: list[Sample], *, scratch: Path, overrides: dict, speed_rounds: int,
            reuse: Path | None = None, measure_speed: bool = True) -> dict:
    from mlcore.training import TrainConfig, train

    counts = {split: sum(s.split == split for s in samples) for split in ("train", "val", "test")}
    boxes = sum(len(s.boxes or ()) for s in samples)
    if reuse is not None:  # an artefact this benchmark trained before: its own records of the run
        out = reuse
        metrics = json.loads((out / "metrics.json").read_text())
        wall = json.loads((out / "config.json").read_text())["training"]["wall_time_s"]
        cpu = None
        log(f"{name}: reusing {out}")
    else:
        log(f"{name}: {counts} images, {boxes} boxes; training")
        out = scratch / name
        started = time.monotonic()
        cpu_started = time.process_time()
        metrics = train(TrainConfig(detection="on", **overrides), samples, out_dir=out).metrics
        wall = time.monotonic() - started
        cpu = round(time.process_time() - cpu_started, 1)
    detection = metrics["detection"]
    facts = json.loads((out / "detection.json").read_text())
    config = json.loads((out / "config.json").read_text())
    log(f"{name}: mAP@0.5 {detection['map50']:.3f}, mAP@0.5:0.95 {detection['map50_95']:.3f}, {wall:.0f} s")
    test = [s for s in samples if s.split == "test"]
    history = facts.get("history", {})
    run = {
        "images": counts, "boxes": boxes, "classes": facts["classes"],
        "map50": detection["map50"], "map50_95": detection["map50_95"], "per_class": detection["per_class"],
        "test_without_nms": peaks_only(out, test),
        "classification_accuracy": metrics["accuracy"], "classification_macro_f1": metrics["macro_f1"],
        "val_classifier_accuracy_before_detection": (history.get("before") or {}).get("classifier_accuracy"),
        "train_wall_s": round(wall, 1), "train_cpu_s": cpu, "reused_artefact": reuse is not None,
        "detection_wall_s": facts["wall_time_s"], "detection_epochs": facts["epochs_run"],
        "detection": {key: facts.get(key) for key in ("best_epoch", "best_val_map50", "stopped_by_time_budget",
                                                       "decoding", "nms_validation_map50", "finetuned_blocks",
                                                       "augmentation", "grid")},
        "val_map50_per_epoch": history.get("val_map50"),
        "serving_parity": {k: v for k, v in (config.get("serving") or {}).items() if k.startswith("max_")},
    }
    if measure_speed:
        from mlcore.inference import Classifier

        images = [load_image(s.path) for s in test[:128]]
        boxed = Classifier.load(out)
        plain = Classifier.load(without_head(out, scratch, images))
        speeds = {}
        for batch, repeats in ((32, 2), (1, 1)):
            picked = images if batch == 32 else images[:48]
            speeds[f"batch_{batch}"] = alternating_speed({"with_boxes": boxed, "without_boxes": plain}, picked,
                                                         batch=batch, repeats=repeats, rounds=speed_rounds)
        run["runtime"] = {"with_boxes": boxed.runtime, "without_boxes": plain.runtime}
        run["speed"] = speeds
    return run


def peaks_only(model_dir: Path, test: list[Sample]) -> dict:
    """Test mAP of the same artefact decoded with heat-map peaks only (no NMS): what the NMS gives."""
    from dataclasses import replace

    from mlcore.detection import detection_metrics
    from mlcore.inference import Classifier

    classifier = Classifier.load(model_dir)
    classes = classifier.detection_classes
    decoding = replace(classifier.box_decoding, nms_iou=None)
    images = [load_image(s.path) for s in test]
    *_, maps = classifier._run(images)
    truth = [[box for box in s.boxes if box[0] in classes] for s in test]
    result = detection_metrics(truth, [decoding.decode(m, classes) for m in maps], classes=classes,
                               sizes=[(image.shape[1], image.shape[0]) for image in images])
    return {"map50": result["map50"], "map50_95": result["map50_95"]}


# Saved results the docs section is made from (RESULTS_DIR): the main runs, the frozen-head
# baseline they replace, and one file per ablation run (one change off).
MAIN_RESULTS = {"NEU-DET": "detect.json", "CR7-DET (200 per class)": "detect-cr7.json",
                "CR7-DET (all)": "detect-cr7-all.json"}
BASELINE_RESULTS = {"NEU-DET": "detect-baseline-frozen-head.json", "CR7-DET (200 per class)":
                    "detect-cr7-baseline-frozen-head.json"}
ABLATION_GLOB = "detect-ablation-*.json"


def _only_set(report: dict) -> dict:
    return next(iter(report["sets"].values()))


def _load(name: str) -> dict | None:
    path = RESULTS_DIR / name
    return json.loads(path.read_text()) if path.is_file() else None


def _speeds(run: dict) -> str:
    if "speed" not in run:
        return "— | —"
    s32, s1 = run["speed"]["batch_32"], run["speed"]["batch_1"]
    return (f"{s32['with_boxes']['images_per_s']:.1f} / {s32['without_boxes']['images_per_s']:.1f} "
            f"| {s1['with_boxes']['images_per_s']:.1f} / {s1['without_boxes']['images_per_s']:.1f}")


def markdown() -> str:
    """The bench-detect section of docs/benchmarks.md from the saved results."""
    main = {label: report for label, name in MAIN_RESULTS.items() if (report := _load(name))}
    lines = ["## Detection (`make bench-detect`)", ""]
    for label, report in main.items():
        lines.append(f"- {label}: `{report['command']}` — {report['date']} on {report['machine']}, 1-minute load "
                     f"average {report['load_before']:.1f} before, {report['load_after']:.1f} after. Raw JSON: "
                     f"`benchmarks/results/{MAIN_RESULTS[label]}`.")
    lines += ["", "Training times are wall times at the load shown (the machine is shared); compare the "
              "with/without-boxes speeds within a row.", "",
              "Detector: the backbone maps at strides 8, 16 and 32 fused to one stride-8 grid (LTRB boxes), the "
              "head and the backbone's stages 3 to 6 trained with a focal heat-map loss and a GIoU box loss (the "
              "classifier's cross-entropy in the same loss), crop/scale/flip views made per step, best epoch by "
              "validation mAP@0.5, class-aware NMS threshold chosen on validation; mAP from pycocotools (COCO "
              "definitions) on the test split.", "",
              "| set | train/val/test images | boxes | mAP@0.5 | mAP@0.5:0.95 | classifier accuracy | training "
              "(wall) | detection part | epochs (best) | images/s batch 32 with / without boxes "
              "| batch 1 with / without |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, report in main.items():
        run = _only_set(report)
        lines.append(
            f"| {label} | {run['images']['train']}/{run['images']['val']}/{run['images']['test']} | {run['boxes']} "
            f"| {run['map50']:.3f} | {run['map50_95']:.3f} | {run['classification_accuracy']:.4f} "
            f"| {run['train_wall_s'] / 60:.1f} min | {run['detection_wall_s'] / 60:.1f} min "
            f"| {run['detection_epochs']} ({run['detection']['best_epoch']}) | {_speeds(run)} |")
    lines += ["", "Per class, AP@0.5 / AP@0.5:0.95 on the test split (the frozen head it replaces in brackets):", ""]
    for label, report in main.items():
        run = _only_set(report)
        base = _load(BASELINE_RESULTS.get(label, "")) if label in BASELINE_RESULTS else None
        before = _only_set(base)["per_class"] if base else {}
        cells = []
        for cls, v in run["per_class"].items():
            was = f" ({before[cls]['ap50']:.2f})" if cls in before else ""
            cells.append(f"{cls} {v['ap50']:.3f} / {v['ap50_95']:.3f}{was}")
        lines.append(f"- {label}: " + "; ".join(cells) + ".")
    lines += ["", "### Ablation (NEU-DET, test split)", "",
              "| model | mAP@0.5 | mAP@0.5:0.95 | classifier accuracy | training (wall) | what it shows |",
              "|---|---|---|---|---|---|"]
    base = _load(BASELINE_RESULTS["NEU-DET"])
    if base:
        run = _only_set(base)
        lines.append(f"| frozen-backbone head, centre/size boxes, L1, flips cached (baseline) | {run['map50']:.3f} "
                     f"| {run['map50_95']:.3f} | {run['classification_accuracy']:.4f} "
                     f"| {run['train_wall_s'] / 60:.1f} min | the head this issue replaces |")
    for path in sorted(RESULTS_DIR.glob(ABLATION_GLOB)):
        report = json.loads(path.read_text())
        run = _only_set(report)
        lines.append(f"| {report.get('label', path.stem)} | {run['map50']:.3f} | {run['map50_95']:.3f} "
                     f"| {run['classification_accuracy']:.4f} | {run['train_wall_s'] / 60:.1f} min "
                     f"| {report.get('shows', '')} |")
    if "NEU-DET" in main:
        run = _only_set(main["NEU-DET"])
        peaks = run["test_without_nms"]
        lines.append(f"| the full detector, heat-map peaks only (no NMS) | {peaks['map50']:.3f} "
                     f"| {peaks['map50_95']:.3f} | — | — | what the class-aware NMS adds |")
        lines.append(f"| **the full detector** (NMS IoU {run['detection']['decoding']['nms_iou']}) "
                     f"| **{run['map50']:.3f}** | **{run['map50_95']:.3f}** | {run['classification_accuracy']:.4f} "
                     f"| {run['train_wall_s'] / 60:.1f} min | |")
    lines += ["", f"Targets (2 cores): NEU-DET mAP@0.5 ≥ {TARGETS['neu_map50']} (then ≥ {TARGETS['neu_map50_next']}), "
              f"CR7-DET ≥ {TARGETS['cr7_map50']}, training ≤ {TARGETS['train_minutes']} min for NEU-DET, "
              f"≥ {TARGETS['batched_images_per_s_with_boxes']} images/s batched with boxes, boxes costing at most "
              f"{TARGETS['boxes_cost']:.0%} of the classifier's batched speed."]
    for report in main.values():
        lines += [f"- {line}" for line in report.get("notes", [])]
    return "\n".join(lines)


# Each set: (label, images folder, annotations folder, images per class, its results file).
SETS = {
    "neu": ("NEU-DET", "neu-cls", "neu-det-annotations", None, "detect.json"),
    "cr7": ("CR7-DET (200 per class)", "cr7-det/images", "cr7-det/labels", 200, "detect-cr7.json"),
    "cr7-all": ("CR7-DET (all)", "cr7-det/images", "cr7-det/labels", None, "detect-cr7-all.json"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=DATASETS)
    parser.add_argument("--sets", default="neu,cr7,cr7-all", help=f"comma-separated: {', '.join(SETS)}")
    parser.add_argument("--limit", type=int, default=None, help="images per class (quick runs; every set)")
    parser.add_argument("--epochs", type=int, default=None, help="detection epochs (default: TrainConfig's)")
    parser.add_argument("--maps", default=None, help="all, fine or coarse (default: TrainConfig's)")
    parser.add_argument("--finetune-blocks", type=int, default=None,
                        help="backbone blocks the detector trains (0: frozen backbone; default: TrainConfig's)")
    parser.add_argument("--crop", type=float, default=None, help="share of training views that are a crop")
    parser.add_argument("--budget", type=float, default=None, help="detection time budget, seconds")
    parser.add_argument("--speed-rounds", type=int, default=3)
    parser.add_argument("--no-speed", action="store_true", help="skip the serving-speed measurement")
    parser.add_argument("--out", type=Path, default=None,
                        help="results file (one set only; default: the set's own file in benchmarks/results/)")
    parser.add_argument("--label", default=None, help="an ablation run's name in the docs table")
    parser.add_argument("--shows", default=None, help="an ablation run's 'what it shows' in the docs table")
    parser.add_argument("--keep", type=Path, default=None, help="train into this folder and keep the artefacts")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    parser.add_argument("--docs-only", action="store_true", help="only write docs/benchmarks.md from saved results")
    parser.add_argument("--reuse", action="append", default=[], metavar="SET=DIR",
                        help="measure an artefact this benchmark trained before instead of training (neu=DIR)")
    args = parser.parse_args()
    if args.docs_only:
        text = markdown()
        print(text)
        replace_doc_section("bench-detect", text)
        return 0
    from mlcore.training import TrainConfig

    overrides = {key: value for key, value in {
        "detection_epochs": args.epochs, "detection_maps": args.maps, "detection_finetune_blocks": args.finetune_blocks,
        "detection_crop_probability": args.crop, "detection_time_budget_s": args.budget}.items() if value is not None}
    params = {key: value for key, value in TrainConfig(**overrides).to_dict().items() if key.startswith("detection")}
    wanted = [name.strip() for name in args.sets.split(",") if name.strip()]
    if args.out is not None and len(wanted) != 1:
        parser.error("--out needs exactly one set")
    reuse = dict(item.split("=", 1) for item in args.reuse)
    command = ("make bench-detect" if len(sys.argv) == 1 else "python benchmarks/bench_detect.py "
               + " ".join(sys.argv[1:]))

    with tempfile.TemporaryDirectory(prefix="steelqc-detect-") as temporary:
        scratch = args.keep or Path(temporary)
        scratch.mkdir(parents=True, exist_ok=True)
        for key in wanted:
            label, images, annotations, limit, results = SETS[key]
            report = {"command": command, "date": time.strftime("%Y-%m-%d %H:%M"),
                      "machine": f"{os.cpu_count()} cores", "load_before": os.getloadavg()[0], "params": params,
                      "sets": {}, "notes": []}
            if args.label:
                report.update(label=args.label, shows=args.shows or "")
            samples = with_boxes(split_samples(str(args.datasets / images), seed=0), args.datasets / annotations,
                                 args.limit if args.limit is not None else limit)
            report["sets"][label] = run_set(key, samples, scratch=scratch, overrides=overrides,
                                            speed_rounds=args.speed_rounds, measure_speed=not args.no_speed,
                                            reuse=Path(reuse[key]) if key in reuse else None)
            report["load_after"] = os.getloadavg()[0]
            out = args.out or RESULTS_DIR / results
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(report, indent=2) + "\n")   # after each set: a long one never loses the others
            log(f"{label}: written to {out}")
    if not args.no_docs:
        text = markdown()
        print(text)
        replace_doc_section("bench-detect", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
