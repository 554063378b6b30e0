"""Detection benchmark: mAP of the detection head on NEU-DET (and on cr7-det), training time and
serving speed with and without boxes, in the same run.

NEU: the images of ``neu-cls`` with the duplicate-safe 70/15/15 split every benchmark uses, their
boxes from ``neu-det-annotations`` (Pascal VOC). cr7-det: its images and YOLO boxes with the same
split rule. Each set trains the default model (classifier + detection head) through
``mlcore.training.train``, as a training run does; mAP@0.5 and mAP@0.5:0.95 on the test split come
from pycocotools. Speed: the same artefact served with its boxes and without them (a copy of the
artefact without the head and its own verified TFLite copy), alternating rounds at batch 32 and 1.

    make bench-detect           # or: .venv/bin/python benchmarks/bench_detect.py --help
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
TARGETS = {"neu_map50": 0.75, "train_minutes": 20, "batched_images_per_s_with_boxes": 60}


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
            reuse: Path | None = None) -> dict:
    from mlcore.inference import Classifier
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
    images = [load_image(s.path) for s in test[:128]]
    boxed = Classifier.load(out)
    plain = Classifier.load(without_head(out, scratch, images))
    speeds = {}
    for batch, repeats in ((32, 2), (1, 1)):
        picked = images if batch == 32 else images[:48]
        speeds[f"batch_{batch}"] = alternating_speed({"with_boxes": boxed, "without_boxes": plain}, picked,
                                                     batch=batch, repeats=repeats, rounds=speed_rounds)
    return {
        "images": counts, "boxes": boxes, "classes": facts["classes"],
        "map50": detection["map50"], "map50_95": detection["map50_95"], "per_class": detection["per_class"],
        "classification_accuracy": metrics["accuracy"],
        "train_wall_s": round(wall, 1), "train_cpu_s": cpu, "reused_artefact": reuse is not None,
        "detection_wall_s": facts["wall_time_s"], "detection_epochs": facts["epochs_run"],
        "runtime": {"with_boxes": boxed.runtime, "without_boxes": plain.runtime},
        "serving_parity": {k: v for k, v in (config.get("serving") or {}).items() if k.startswith("max_")},
        "speed": speeds,
    }


def markdown(report: dict) -> str:
    lines = [
        "## Detection (`make bench-detect`)", "",
        f"Command: `{report['command']}` — run {report['date']} on {report['machine']}; "
        f"1-minute load average {report['load_before']:.1f} before, {report['load_after']:.1f} after "
        "(other work shared the machine: compare the with/without-boxes speeds within the run). "
        "Raw JSON: `benchmarks/results/detect.json`.", "",
        f"Head: `{report['params']['detection_maps']}` backbone maps fused to a stride-8 centre-point grid, "
        f"width {report['params']['detection_width']}, {report['params']['detection_epochs']} epochs max, "
        "flips as augmentation; mAP from pycocotools (COCO definitions) on the test split.", "",
        "| set | train/val/test images | boxes | mAP@0.5 | mAP@0.5:0.95 | classifier accuracy | training (wall) "
        "| detection part | images/s batch 32 with / without boxes | batch 1 with / without |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, run in report["sets"].items():
        s32, s1 = run["speed"]["batch_32"], run["speed"]["batch_1"]
        lines.append(
            f"| {name} | {run['images']['train']}/{run['images']['val']}/{run['images']['test']} | {run['boxes']} "
            f"| {run['map50']:.3f} | {run['map50_95']:.3f} | {run['classification_accuracy']:.4f} "
            f"| {run['train_wall_s'] / 60:.1f} min | {run['detection_wall_s'] / 60:.1f} min "
            f"| {s32['with_boxes']['images_per_s']:.1f} / {s32['without_boxes']['images_per_s']:.1f} "
            f"| {s1['with_boxes']['images_per_s']:.1f} / {s1['without_boxes']['images_per_s']:.1f} |")
    for name, run in report["sets"].items():
        lines += ["", f"Per class, {name} (AP@0.5 / AP@0.5:0.95, test boxes):", ""]
        lines += [f"- {cls}: {v['ap50']:.3f} / {v['ap50_95']:.3f} ({v['boxes']} boxes)"
                  for cls, v in run["per_class"].items()]
    lines += ["", f"Targets: NEU-DET mAP@0.5 ≥ {TARGETS['neu_map50']}, training ≤ {TARGETS['train_minutes']} min, "
              f"≥ {TARGETS['batched_images_per_s_with_boxes']} images/s batched with boxes."]
    lines += [f"- {line}" for line in report.get("notes", [])]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=DATASETS)
    parser.add_argument("--sets", default="neu,cr7", help="comma-separated: neu, cr7")
    parser.add_argument("--limit", type=int, default=None, help="images per class (quick runs)")
    parser.add_argument("--epochs", type=int, default=None, help="detection epochs (default: TrainConfig's)")
    parser.add_argument("--maps", default=None, help="all or coarse (default: TrainConfig's)")
    parser.add_argument("--speed-rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--keep", type=Path, default=None, help="train into this folder and keep the artefacts")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    parser.add_argument("--reuse", action="append", default=[], metavar="SET=DIR",
                        help="measure an artefact this benchmark trained before instead of training (neu=DIR)")
    args = parser.parse_args()
    from mlcore.training import TrainConfig

    overrides = {key: value for key, value in {"detection_epochs": args.epochs, "detection_maps": args.maps}.items()
                 if value is not None}
    params = {key: value for key, value in TrainConfig(**overrides).to_dict().items() if key.startswith("detection")}
    report = {"command": "make bench-detect" if len(sys.argv) == 1 else "python benchmarks/bench_detect.py "
              + " ".join(sys.argv[1:]), "date": time.strftime("%Y-%m-%d %H:%M"),
              "machine": f"{os.cpu_count()} cores", "load_before": os.getloadavg()[0], "params": params,
              "sets": {}, "notes": []}
    wanted = [name.strip() for name in args.sets.split(",") if name.strip()]
    reuse = dict(item.split("=", 1) for item in args.reuse)

    def save() -> None:  # after each set, so a long second set never loses the first
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({**report, "load_after": os.getloadavg()[0]}, indent=2) + "\n")

    with tempfile.TemporaryDirectory(prefix="steelqc-detect-") as temporary:
        scratch = args.keep or Path(temporary)
        scratch.mkdir(parents=True, exist_ok=True)
        if "neu" in wanted:
            samples = with_boxes(split_samples(str(args.datasets / "neu-cls"), seed=0),
                                 args.datasets / "neu-det-annotations", args.limit)
            report["sets"]["NEU-DET"] = run_set("neu", samples, scratch=scratch, overrides=overrides,
                                                speed_rounds=args.speed_rounds,
                                                reuse=Path(reuse["neu"]) if "neu" in reuse else None)
            save()
        if "cr7" in wanted:
            samples = with_boxes(split_samples(str(args.datasets / "cr7-det" / "images"), seed=0),
                                 args.datasets / "cr7-det" / "labels", args.limit)
            # Three times NEU's training images at twice the size: without the flipped views the
            # head trains in about the time NEU's does on 2 cores.
            report["sets"]["CR7-DET"] = run_set("cr7", samples, scratch=scratch,
                                                overrides={"detection_flips": False, **overrides},
                                                speed_rounds=args.speed_rounds,
                                                reuse=Path(reuse["cr7"]) if "cr7" in reuse else None)
            save()
            report["notes"].append("CR7-DET trains the head without flipped views (1 view per image) to bound "
                                   "its training time on 2 cores; NEU-DET with the image and its 3 flips.")
    report["load_after"] = os.getloadavg()[0]
    save()
    text = markdown(report)
    print(text)
    if not args.no_docs:
        replace_doc_section("bench-detect", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
