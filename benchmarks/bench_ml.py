"""mlcore benchmark on the real NEU images (``make bench-ml``).

Trains the default model on a fixed, duplicate-safe 70/15/15 split of the NEU folder, then
measures clean test accuracy and accuracy under each strip-line degradation
(``mlcore.augment.CORRUPTION_TABLE``), how foreign and novel images are caught (another steel
line's defect classes, defect-free and pitted metal of another kind, synthetic frames: AUROC of
``ood_score`` against the NEU test images and the share auto-accepted), leave-one-class-out
novelty on NEU (six more trainings), suspect-label recall with 3 % of the training labels
flipped (one more training), training wall time, inference speed including the OOD score, and
peak memory. Writes benchmarks/results/ml.json as it goes and prints a Markdown table for
docs/benchmarks.md.

    .venv/bin/python benchmarks/bench_ml.py [--data ../shared/datasets/neu-cls] [--skip loco,suspects]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from mlcore.augment import corrupt  # noqa: E402
from mlcore.cli import split_samples  # noqa: E402
from mlcore.io import load_image  # noqa: E402

TARGETS = {"clean_accuracy": 0.995, "corrupted_accuracy": 0.97, "train_seconds": 300.0,
           "batched_images_per_s": 100.0, "foreign_auroc": 0.98, "foreign_auto_accepted": 0.05,
           "in_domain_pass": 0.93, "loco_mean_auroc": 0.95, "loco_min_auroc": 0.90,
           "suspect_recall": 0.90, "suspect_precision": 0.45}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def auroc(negatives: np.ndarray, positives: np.ndarray) -> float:
    """P(score of a random positive > score of a random negative), ties counting half."""
    negatives, positives = np.asarray(negatives, float), np.asarray(positives, float)
    greater = (positives[:, None] > negatives[None, :]).sum()
    ties = (positives[:, None] == negatives[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(positives) * len(negatives)))


def foreign_images(seed: int = 0) -> dict[str, list[np.ndarray]]:
    """Frames that are not steel surface: synthetic textures, dead frames, photos."""
    from skimage import color, data, transform

    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:200, 0:200].astype(np.float32)
    textures = []
    for period in (4, 8, 16, 32):
        textures.append(128 + 100 * np.sign(np.sin(2 * np.pi * xs / period)))               # vertical stripes
        textures.append(128 + 100 * np.sin(2 * np.pi * (xs + ys) / period))                 # diagonal waves
        textures.append(128 + 100 * (((xs // period) + (ys // period)) % 2 * 2 - 1))        # checkerboard
    for sigma in (20, 60):
        textures.append(128 + rng.normal(0, sigma, (200, 200)))                              # sensor-only noise
    textures.append(rng.uniform(0, 255, (200, 200)))                                         # uniform noise
    textures.append(xs / 199 * 255)                                                          # smooth ramp
    textures.append(255 * (rng.random((200, 200)) > 0.5))                                   # salt and pepper
    blurred = rng.normal(0, 1, (50, 50))
    textures.append(128 + 60 * transform.resize(blurred, (200, 200), order=3) / blurred.std())  # blobs
    dead = [np.full((200, 200), value, np.float32) for value in (0, 40, 128, 200, 255)]
    dead += [np.clip(255 - np.abs(rng.normal(0, 3, (200, 200))), 0, 255),                   # saturated + noise
             np.where(xs < 180, 255, 90).astype(np.float32)]                                 # mostly saturated

    photos = []
    for name in ("astronaut", "camera", "coffee", "chelsea", "brick", "grass", "gravel", "rocket", "coins",
                 "moon", "page", "text", "horse", "hubble_deep_field", "immunohistochemistry"):
        try:
            image = getattr(data, name)()
        except Exception:  # noqa: BLE001 - a sample missing from this scikit-image build is skipped
            continue
        gray = image.astype(np.float64)
        if gray.ndim == 3:
            gray = color.rgb2gray(image[..., :3]) * 255.0
        elif gray.max() <= 1.0:
            gray = gray * 255.0
        height, width = gray.shape
        photos.append(transform.resize(gray, (200, 200), preserve_range=True, anti_aliasing=True))
        for top, left in ((0, 0), ((height - 200) // 2, (width - 200) // 2), (height - 200, width - 200)):
            if height >= 200 and width >= 200:
                photos.append(gray[top:top + 200, left:left + 200])
    as_uint8 = lambda frames: [np.clip(np.rint(f), 0, 255).astype(np.uint8) for f in frames]  # noqa: E731
    return {"textures": as_uint8(textures), "blank_or_saturated": as_uint8(dead), "photos": as_uint8(photos)}


def speed(classifier, images: list[np.ndarray], *, batch: int, repeats: int) -> dict:
    """Wall-clock throughput, and throughput per CPU-second of this process.

    The CPU is shared with other work; images per CPU-second times the core count is what
    the same run would reach with both cores to itself.
    """
    classifier.predict(images[:batch])  # trace and warm up
    started, cpu_started = time.perf_counter(), time.process_time()
    count = 0
    for r in range(repeats):
        chunk = [images[(r * batch + i) % len(images)] for i in range(batch)]
        classifier.predict(chunk)
        count += len(chunk)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return {"images_per_s": count / wall, "images_per_cpu_s": count / cpu}


def score(classifier, images, labels) -> dict:
    from mlcore.evaluation import evaluate

    results = classifier.predict(images)
    probabilities = np.array([[r.probabilities[name] for name in classifier.classes] for r in results])
    ood_scores = np.array([r.ood_score for r in results])
    metrics = evaluate(classes=classifier.classes, true_labels=labels, probabilities=probabilities)
    review = np.array([r.needs_review for r in results])
    wrong = np.array([r.label != label for r, label in zip(results, labels)])
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "ece": metrics["ece"],
            "needs_review_rate": float(review.mean()), "ood_pass_rate": float((ood_scores <= 1.0).mean()),
            # What a plant cares about most: a wrong label that no person will see.
            "silent_error_rate": float(np.mean(wrong & ~review)),
            "confusion_matrix": metrics["confusion_matrix"], "_ood_scores": ood_scores,
            "_confidence": probabilities.max(axis=1)}


def resnet50_speed(*, weights_file: str | None) -> dict:
    from mlcore.backbones import build_backbone
    from mlcore.backbones.resnet50 import weights_available
    from mlcore.inference import compile_forward, forward_in_batches
    from mlcore.model import build_classifier

    backbone = build_backbone("resnet50", weights=None)
    forward = compile_forward(build_classifier(backbone=backbone, num_classes=6, dropout=0.2))
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (200, 200), dtype=np.uint8) for _ in range(32)]
    result = {}
    for batch, repeats in ((1, 20), (32, 3)):
        forward_in_batches(forward, images[:batch], batch_size=batch)
        started = time.perf_counter()
        for _ in range(repeats):
            forward_in_batches(forward, images[:batch], batch_size=batch)
        result[f"images_per_s_batch{batch}"] = batch * repeats / (time.perf_counter() - started)
    result["imagenet_weights_present"] = weights_available(explicit=weights_file)
    result["note"] = "random weights (weights=None); forward pass only, no OOD post-processing"
    return result


def foreign_sets(datasets: Path, *, per_class: int | None, seed: int) -> dict[str, list[Path]]:
    """Folders of real images a NEU model never saw: another steel line (per class), defect-free
    and pitted metal of another kind. ``per_class`` caps each set (seeded sample)."""
    from mlcore.io import scan_class_folders

    rng = np.random.default_rng(seed)
    sets: dict[str, list[Path]] = {}
    for root, prefix in ((datasets / "cr7-det" / "images", "cr7-det"), (datasets / "bsdata", "bsdata")):
        if not root.is_dir():
            continue
        by_class: dict[str, list[str]] = {}
        for found in scan_class_folders(root):
            by_class.setdefault(found.label, []).append(found.path)
        for label, paths in sorted(by_class.items()):
            paths = sorted(paths)
            if per_class and len(paths) > per_class:
                paths = [paths[i] for i in sorted(rng.choice(len(paths), per_class, replace=False))]
            sets[f"{prefix}/{label}"] = [Path(p) for p in paths]
    return sets


def review_figures(results, in_domain_scores: np.ndarray) -> dict:
    scores = np.array([r.ood_score for r in results])
    return {"count": len(results), "auroc": auroc(in_domain_scores, scores),
            "auto_accepted": float(np.mean([not r.needs_review for r in results])),
            "flagged_foreign": float(np.mean(["foreign" in r.review_reasons or "blank_frame" in r.review_reasons
                                              for r in results]))}


def predict_paths(classifier, paths, *, chunk: int = 64) -> list:
    results = []
    for start in range(0, len(paths), chunk):
        results.extend(classifier.predict([load_image(p) for p in paths[start:start + chunk]]))
    return results


def train_default(config_overrides: dict, samples, *, out_dir: Path, base: dict):
    from mlcore.training import TrainConfig, train

    config = TrainConfig(**{**base, **config_overrides})
    started, cpu_started = time.perf_counter(), time.process_time()
    result = train(config, samples, out_dir=out_dir)
    return result, time.perf_counter() - started, time.process_time() - cpu_started


def leave_one_class_out(samples, *, base: dict, scratch: Path) -> dict:
    """Train on five NEU classes, score the sixth as novel against the five's test images."""
    from mlcore.inference import Classifier

    classes = sorted({s.label for s in samples})
    per_class = {}
    for held_out in classes:
        kept = [s for s in samples if s.label != held_out]
        print(f"leave-one-class-out: training without {held_out} ...", file=sys.stderr, flush=True)
        train_default({"serving_export": False}, kept, out_dir=scratch / f"loco-{held_out}" / "model", base=base)
        classifier = Classifier.load(scratch / f"loco-{held_out}" / "model")
        in_domain = predict_paths(classifier, [s.path for s in kept if s.split == "test"])
        novel = predict_paths(classifier, [s.path for s in samples if s.label == held_out])
        in_scores = np.array([r.ood_score for r in in_domain])
        per_class[held_out] = {**review_figures(novel, in_scores),
                               "in_domain_pass": float(np.mean(in_scores <= 1.0)),
                               "in_domain_auto_accepted": float(np.mean([not r.needs_review for r in in_domain]))}
        shutil.rmtree(scratch / f"loco-{held_out}", ignore_errors=True)
    return {"per_class": per_class, "mean_auroc": float(np.mean([v["auroc"] for v in per_class.values()])),
            "min_auroc": float(min(v["auroc"] for v in per_class.values())),
            "mean_auto_accepted": float(np.mean([v["auto_accepted"] for v in per_class.values()]))}


def suspect_label_recall(samples, *, base: dict, scratch: Path, share: float = 0.03, seed: int = 0) -> dict:
    """Flip ``share`` of the training labels (seeded), train, and look for them among the suspects."""
    rng = np.random.default_rng(seed)
    classes = sorted({s.label for s in samples})
    train_rows = [i for i, s in enumerate(samples) if s.split == "train"]
    flipped = set(rng.choice(train_rows, int(round(share * len(train_rows))), replace=False).tolist())
    noisy = []
    for i, sample in enumerate(samples):
        if i in flipped:
            others = [c for c in classes if c != sample.label]
            sample = type(sample)(path=sample.path, label=str(rng.choice(others)), split=sample.split)
        noisy.append(sample)
    print(f"suspect labels: training with {len(flipped)} flipped labels ...", file=sys.stderr, flush=True)
    out = scratch / "suspects" / "model"
    train_default({"serving_export": False}, noisy, out_dir=out, base=base)
    ranked = [row for row in json.loads((out / "suspects.json").read_text()) if row["split"] == "train"]
    flipped_paths = {samples[i].path for i in flipped}
    k = 2 * len(flipped)
    hits = sum(row["path"] in flipped_paths for row in ranked[:k])
    flagged = [row for row in ranked if row["issue"]]
    flagged_hits = sum(row["path"] in flipped_paths for row in flagged)
    suggested_right = sum(row["suggested_label"] == next(s.label for s in samples if s.path == row["path"])
                          for row in ranked[:k] if row["path"] in flipped_paths)
    shutil.rmtree(scratch / "suspects", ignore_errors=True)
    return {"flipped": len(flipped), "k": k, "recall_at_k": hits / len(flipped), "precision_at_k": hits / k,
            "flagged": len(flagged), "flagged_recall": flagged_hits / len(flipped),
            "flagged_precision": flagged_hits / max(len(flagged), 1),
            "suggested_true_label_share": suggested_right / max(hits, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "neu-cls"))
    parser.add_argument("--datasets", default=str(ROOT.parent / "shared" / "datasets"),
                        help="folder with cr7-det/ and bsdata/ for the foreign sets")
    parser.add_argument("--foreign-per-class", type=int, default=None, help="cap images per foreign set")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ml.json"))
    parser.add_argument("--model-dir", default=None, help="keep the trained model here (default: temp)")
    parser.add_argument("--reuse-model", action="store_true",
                        help="with --model-dir: measure the model already there instead of training one")
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--input-size", type=int, default=None, help="backbone input size (default: TrainConfig's)")
    parser.add_argument("--views", type=int, default=None, help="augmented views per training image")
    parser.add_argument("--finetune", default=None, choices=("auto", "on", "off"), help="phase 2 (default: TrainConfig's)")
    parser.add_argument("--skip", default="", help="comma-separated sections to skip: loco,suspects,resnet50")
    args = parser.parse_args()
    skip = {part.strip() for part in args.skip.split(",") if part.strip()}

    from mlcore.augment import CORRUPTION_TABLE
    from mlcore.inference import Classifier

    samples = split_samples(args.data, seed=0)
    test = [s for s in samples if s.split == "test"]
    counts = {split: sum(s.split == split for s in samples) for split in ("train", "val", "test")}
    scratch = Path(tempfile.mkdtemp(prefix="bench-ml-"))
    model_dir = Path(args.model_dir) / "model" if args.model_dir else scratch / "model"
    base = {key: value for key, value in (("input_size", args.input_size), ("augmented_views", args.views),
                                          ("finetune", args.finetune)) if value is not None}
    base.update(backbone=args.backbone, seed=args.seed,
                resnet50_weights=os.environ.get("STEELQC_RESNET50_WEIGHTS") or None,
                cache_dir=os.environ.get("STEELQC_CACHE_DIR") or None)
    report: dict = {"command": " ".join([".venv/bin/python", "benchmarks/bench_ml.py", *sys.argv[1:]]),
                    "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                "python": platform.python_version()},
                    "split": counts, "targets": TARGETS}

    def save() -> None:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")

    if args.reuse_model and (model_dir / "config.json").is_file():
        facts = json.loads((model_dir / "config.json").read_text())
        train_seconds, train_cpu_seconds = facts["training"]["wall_time_s"], float("nan")
    else:
        print(f"training {args.backbone} on {counts} ...", file=sys.stderr, flush=True)
        _, train_seconds, train_cpu_seconds = train_default({}, samples, out_dir=model_dir, base=base)
    rss_after_training = peak_rss_mib()
    facts = json.loads((model_dir / "config.json").read_text())
    report.update(backbone=facts["backbone"], finetuned=facts["training"]["finetuned"], ood=facts["ood"],
                  train_seconds=train_seconds, train_cpu_seconds=train_cpu_seconds,
                  train_wall_time_s_inside_train=facts["training"]["wall_time_s"])

    classifier = Classifier.load(model_dir)
    test_images = [load_image(s.path) for s in test]
    labels = [s.label for s in test]
    clean = score(classifier, test_images, labels)
    report["clean_test"] = {k: v for k, v in clean.items() if not k.startswith("_")}
    rng = np.random.default_rng(1)
    report["corrupted_test"] = {}
    for kind, corruption in CORRUPTION_TABLE.items():
        measured = score(classifier, [corrupt(im, kind=kind, rng=rng) for im in test_images], labels)
        report["corrupted_test"][kind] = {**{k: v for k, v in measured.items() if not k.startswith("_")},
                                          "description": corruption.description,
                                          "in_training_augmentation": corruption.in_training}
    save()

    print("foreign sets ...", file=sys.stderr, flush=True)
    in_domain_results = classifier.predict(test_images)
    in_scores = np.array([r.ood_score for r in in_domain_results])
    report["in_domain"] = {"ood_pass_rate": float(np.mean(in_scores <= 1.0)),
                           "auto_accepted": float(np.mean([not r.needs_review for r in in_domain_results]))}
    foreign = {}
    for name, paths in foreign_sets(Path(args.datasets), per_class=args.foreign_per_class, seed=args.seed).items():
        foreign[name] = review_figures(predict_paths(classifier, paths), in_scores)
    synthetic = foreign_images()
    for name, images in synthetic.items():
        foreign[f"synthetic/{name}"] = review_figures(classifier.predict(images), in_scores)
    report["foreign_sets"] = foreign
    flat = [image for group in synthetic.values() for image in group]
    flat_results = classifier.predict(flat)
    report["foreign"] = {  # the earlier single figure, kept for comparison between runs
        "count": len(flat), "auroc_ood_score": auroc(in_scores, np.array([r.ood_score for r in flat_results])),
        "auroc_max_softmax": auroc(1 - clean["_confidence"], 1 - np.array([r.confidence for r in flat_results])),
        "auto_accepted_share": float(np.mean([not r.needs_review for r in flat_results]))}
    save()

    speed_images = test_images * 2
    # The serving runtime (the verified TFLite copy when training made one) against plain Keras,
    # measured back to back in this run so the ratio holds even on a busy machine.
    keras_classifier = Classifier.load(model_dir, runtime="keras")
    report["inference"] = {"runtime": classifier.runtime, "serving": facts_serving(model_dir),
                           "includes": "decode-free forward pass, OOD score and review reasons",
                           "batch1": speed(classifier, speed_images, batch=1, repeats=100),
                           "batch32": speed(classifier, speed_images, batch=32, repeats=12),
                           "keras_batch1": speed(keras_classifier, speed_images, batch=1, repeats=50),
                           "keras_batch32": speed(keras_classifier, speed_images, batch=32, repeats=8),
                           "load_average_1min": os.getloadavg()[0]}
    report["peak_rss_mib"] = {"after_training": rss_after_training, "after_inference": peak_rss_mib()}
    report["resnet50"] = None if "resnet50" in skip else resnet50_speed(weights_file=base["resnet50_weights"])
    save()

    if "loco" not in skip:
        report["leave_one_class_out"] = leave_one_class_out(samples, base=base, scratch=scratch)
        save()
    if "suspects" not in skip:
        report["suspect_labels"] = suspect_label_recall(samples, base=base, scratch=scratch, seed=args.seed)
        save()
    report["peak_rss_mib"]["end"] = peak_rss_mib()
    save()
    print(markdown_table(report))
    return 0


def facts_serving(model_dir: Path) -> dict:
    return json.loads((Path(model_dir) / "config.json").read_text()).get("serving", {})


def _speed(measured: dict) -> str:
    return f"{measured['images_per_s']:.0f} images/s ({2 * measured['images_per_cpu_s']:.0f})"


def markdown_table(report: dict) -> str:
    clean = report["clean_test"]
    rows = [("clean NEU test accuracy / macro-F1", f"{clean['accuracy']:.4f} / {clean['macro_f1']:.4f}", "≥ 0.995"),
            ("clean NEU test: wrong and auto-accepted", f"{clean['silent_error_rate']:.1%}", "")]
    for kind, metrics in report["corrupted_test"].items():
        seen = "" if metrics["in_training_augmentation"] else " — never trained on"
        rows.append((f"`{kind}`: {metrics['description']}{seen}",
                     f"{metrics['accuracy']:.4f} (to review {metrics['needs_review_rate']:.0%}, "
                     f"wrong and auto-accepted {metrics['silent_error_rate']:.1%})", "≥ 0.97"))
    rows.append(("clean NEU test: passes OOD / auto-accepted",
                 f"{report['in_domain']['ood_pass_rate']:.1%} / {report['in_domain']['auto_accepted']:.1%}", "≥ 93 % pass"))
    for name, figures in report["foreign_sets"].items():
        rows.append((f"foreign `{name}` ({figures['count']}): AUROC / auto-accepted",
                     f"{figures['auroc']:.3f} / {figures['auto_accepted']:.1%}", "≥ 0.98 / ≤ 5 %"))
    loco = report.get("leave_one_class_out")
    if loco:
        for name, figures in loco["per_class"].items():
            rows.append((f"NEU without `{name}`: AUROC / auto-accepted of `{name}`",
                         f"{figures['auroc']:.3f} / {figures['auto_accepted']:.1%}", "≥ 0.90"))
        rows.append(("leave-one-class-out mean AUROC (min) / mean auto-accepted",
                     f"{loco['mean_auroc']:.3f} ({loco['min_auroc']:.3f}) / {loco['mean_auto_accepted']:.1%}", "≥ 0.95"))
    suspects = report.get("suspect_labels")
    if suspects:
        rows.append((f"suspect labels: {suspects['flipped']} flipped, recall / precision in top {suspects['k']}",
                     f"{suspects['recall_at_k']:.1%} / {suspects['precision_at_k']:.1%}", "≥ 90 % / ≥ 45 %"))
        rows.append(("suspect labels flagged by confident learning: count, recall / precision",
                     f"{suspects['flagged']}, {suspects['flagged_recall']:.1%} / {suspects['flagged_precision']:.1%}", ""))
    rows += [
        ("training wall time (default config; process CPU time)",
         f"{report['train_seconds']:.0f} s ({report['train_cpu_seconds']:.0f} CPU-s)", "≤ 300 s"),
        (f"inference incl. OOD, batch 1, serving runtime ({report['inference']['runtime']}): wall (per CPU-second x 2 cores)",
         _speed(report["inference"]["batch1"]), ""),
        (f"inference incl. OOD, batch 32, serving runtime ({report['inference']['runtime']}): wall (per CPU-second x 2 cores)",
         _speed(report["inference"]["batch32"]), "≥ 100"),
        ("inference, batch 1 / 32, plain Keras (same model, same run)",
         f"{report['inference']['keras_batch1']['images_per_s']:.0f} / {report['inference']['keras_batch32']['images_per_s']:.0f} images/s", ""),
        ("peak RSS (whole run)", f"{report['peak_rss_mib'].get('end', report['peak_rss_mib']['after_inference']):.0f} MiB", ""),
        ("synthetic foreign frames: AUROC of ood_score / of 1 - max softmax",
         f"{report['foreign']['auroc_ood_score']:.4f} / {report['foreign']['auroc_max_softmax']:.4f}", ""),
    ]
    if report.get("resnet50"):
        rows.append(("resnet50 (random weights) inference, batch 1 / 32",
                     f"{report['resnet50']['images_per_s_batch1']:.0f} / {report['resnet50']['images_per_s_batch32']:.0f} images/s", ""))
    lines = ["| measure | result | target |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
