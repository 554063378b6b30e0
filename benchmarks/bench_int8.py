"""The int8 serving copy against the fp32 one, in the same run: what it costs in accuracy and in
the OOD check, and what it gains in speed.

Trains the default model on NEU with the dup-safe split (or measures one already trained with
``--model-dir DIR --reuse-model``); training writes the int8 copy and keeps it only if its
validation check passes (``mlcore.serving.int8_check``). On the test split and the foreign sets
(cr7-det, bsdata, synthetic frames) both copies are scored; then throughput at batch 32 and
batch 1, the two copies measured in alternating rounds so that a busy machine slows both alike.

    make bench-int8             # or: .venv/bin/python benchmarks/bench_int8.py --help
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from the checkout

from benchmarks.bench_ml import auroc, foreign_images, foreign_sets, predict_paths, speed, train_default  # noqa: E402
from benchmarks.stack import replace_doc_section  # noqa: E402
from mlcore.cli import split_samples  # noqa: E402
from mlcore.io import load_image  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def scored(classifier, images, labels) -> dict:
    results = classifier.predict(images)
    predicted = np.array([r.label for r in results])
    labels = np.array(labels)
    recall = {name: float(np.mean(predicted[labels == name] == name)) for name in classifier.classes
              if np.any(labels == name)}
    scores = np.array([r.ood_score for r in results])
    return {"accuracy": float(np.mean(predicted == labels)), "recall": recall,
            "ood_pass_rate": float(np.mean(scores <= 1.0)),
            "needs_review": float(np.mean([r.needs_review for r in results])),
            "_scores": scores, "_labels": predicted}


def alternating_speed(classifiers: dict, images, *, batch: int, repeats: int, rounds: int) -> dict:
    """Median images/s per classifier over ``rounds`` alternating rounds (and per CPU-second)."""
    measured = {name: [] for name in classifiers}
    for _ in range(rounds):
        for name, classifier in classifiers.items():
            measured[name].append(speed(classifier, images, batch=batch, repeats=repeats))
    return {name: {"images_per_s": float(np.median([m["images_per_s"] for m in runs])),
                   "images_per_cpu_s": float(np.median([m["images_per_cpu_s"] for m in runs]))}
            for name, runs in measured.items()}


def reduced_copies(model_dir: Path, samples, *, rounds: int) -> dict:
    """Every reduced-precision TFLite copy this TensorFlow can make, checked against the fp32 copy
    on the validation split with the serving check (``int8_check``) and timed against it in
    alternating rounds (CPU time per image, batch 32) — whether or not training kept one."""
    import contextlib
    import io

    from mlcore.export import export_model
    from mlcore.ood import load_detector
    from mlcore.serving import INT8_CALIBRATION_IMAGES, TfliteForward, cpu_speedup, int8_check

    config = json.loads((model_dir / "config.json").read_text())
    classes = json.loads((model_dir / "classes.json").read_text())
    shape = tuple(config["serving"]["image_shape"])
    val = [s for s in samples if s.split == "val"]
    train = [s for s in samples if s.split == "train"]
    batch = np.stack([load_image(s.path) for s in val]).astype(np.float32)[..., None]
    labels = np.array([classes.index(s.label) for s in val])
    calibration = [load_image(s.path) for s in train[::max(1, len(train) // INT8_CALIBRATION_IMAGES)]]
    detector = load_detector(model_dir / "ood.npz")
    fp32 = TfliteForward(model_dir / "serving.tflite", image_shape=shape, num_classes=len(classes))
    out = {}
    scratch = Path(tempfile.mkdtemp(prefix="bench-int8-copies-"))
    for name, options in (("int8 (full integer)", {"int8_calibration": calibration}),
                          ("dynamic range (int8 weights)", {"reduced": "dynamic"}), ("fp16 weights", {"reduced": "fp16"})):
        with contextlib.redirect_stdout(io.StringIO()):
            path = export_model(model_dir=model_dir, out_dir=scratch / name.split()[0], format="tflite",
                                image_shape=shape, **options)
        copy = TfliteForward(path, image_shape=shape, num_classes=len(classes))
        check = int8_check(labels=labels, reference=fp32(batch), candidate=copy(batch), num_classes=len(classes),
                           distances=detector.distances, threshold=detector.threshold)
        check["speedup_cpu"] = cpu_speedup(fp32, copy, batch, rounds=rounds)
        check["size_kib"] = path.stat().st_size // 1024
        out[name] = check
    out["fp32 size_kib"] = (model_dir / "serving.tflite").stat().st_size // 1024
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "neu-cls"))
    parser.add_argument("--datasets", default=str(ROOT.parent / "shared" / "datasets"))
    parser.add_argument("--model-dir", default=None, help="keep the trained model here (default: temp)")
    parser.add_argument("--reuse-model", action="store_true", help="measure the model already in --model-dir")
    parser.add_argument("--foreign-per-class", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "int8.json"))
    args = parser.parse_args()

    from mlcore.inference import Classifier

    samples = split_samples(args.data, seed=0)
    model_dir = Path(args.model_dir) if args.model_dir else Path(tempfile.mkdtemp(prefix="bench-int8-")) / "model"
    report: dict = {"command": " ".join([".venv/bin/python", "benchmarks/bench_int8.py", *sys.argv[1:]]),
                    "date": time.strftime("%Y-%m-%d %H:%M"), "load_average_1min_start": os.getloadavg()[0],
                    "rounds": args.rounds}
    if not (args.reuse_model and (model_dir / "config.json").is_file()):
        print("training the default model ...", file=sys.stderr, flush=True)
        _, seconds, _ = train_default({}, samples, out_dir=model_dir, base={"seed": 0})
        report["train_s"] = round(seconds, 1)
    serving = json.loads((model_dir / "config.json").read_text())["serving"]
    report["serving"] = serving
    served = Classifier.load(model_dir)
    fp32 = Classifier.load(model_dir, runtime="tflite-fp32")
    report["runtimes"] = {"served": served.runtime, "fp32": fp32.runtime}
    if served.runtime != "tflite-int8":
        report["note"] = "the int8 copy did not pass its validation check; fp32 serves"

    test = [s for s in samples if s.split == "test"]
    images, labels = [load_image(s.path) for s in test], [s.label for s in test]
    copies = {"fp32": fp32, "int8": served} if served.runtime == "tflite-int8" else {"fp32": fp32}
    quality = {name: scored(classifier, images, labels) for name, classifier in copies.items()}
    foreign_paths = [p for paths in foreign_sets(Path(args.datasets), per_class=args.foreign_per_class, seed=0).values()
                     for p in paths]
    synthetic = [image for group in foreign_images().values() for image in group]
    for name, classifier in copies.items():
        real = np.array([r.ood_score for r in predict_paths(classifier, foreign_paths)])
        made = np.array([r.ood_score for r in classifier.predict(synthetic)])
        quality[name]["foreign_auroc_real"] = auroc(quality[name]["_scores"], real)
        quality[name]["foreign_auroc_synthetic"] = auroc(quality[name]["_scores"], made)
        quality[name]["foreign_images"] = {"real": len(real), "synthetic": len(made)}
    if "int8" in quality:
        quality["label_agreement"] = float(np.mean(quality["fp32"]["_labels"] == quality["int8"]["_labels"]))
    report["test"] = {name: {k: v for k, v in q.items() if not k.startswith("_")} if isinstance(q, dict) else q
                      for name, q in quality.items()}

    speed_images = images * 2
    report["batch32"] = alternating_speed(copies, speed_images, batch=32, repeats=8, rounds=args.rounds)
    report["batch1"] = alternating_speed(copies, speed_images, batch=1, repeats=60, rounds=args.rounds)
    report["reduced_copies"] = reduced_copies(model_dir, samples, rounds=args.rounds)
    report["load_average_1min_end"] = os.getloadavg()[0]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    write_report(report)
    print(json.dumps(report, indent=2))
    return 0


def write_report(report: dict) -> None:
    test, check = report["test"], report["serving"].get("int8", {})
    rows = ["| | fp32 TFLite | int8 TFLite |", "|---|---|---|"]

    def row(title, key, fmt):
        values = [fmt(test[name][key]) if name in test else "–" for name in ("fp32", "int8")]
        rows.append(f"| {title} | {values[0]} | {values[1]} |")

    row("NEU test accuracy", "accuracy", lambda v: f"{v:.4f}")
    row("worst class recall", "recall", lambda v: f"{min(v.values()):.4f}")
    row("OOD in-domain pass rate (test)", "ood_pass_rate", lambda v: f"{v:.1%}")
    row("foreign AUROC, cr7-det + bsdata", "foreign_auroc_real", lambda v: f"{v:.4f}")
    row("foreign AUROC, synthetic frames", "foreign_auroc_synthetic", lambda v: f"{v:.4f}")
    for batch in ("batch32", "batch1"):
        values = [report[batch].get(name) for name in ("fp32", "int8")]
        cells = [f"{v['images_per_s']:.0f} images/s ({2 * v['images_per_cpu_s']:.0f} per 2 CPU-s)" if v else "–"
                 for v in values]
        rows.append(f"| {batch.replace('batch', 'batch ')} | {cells[0]} | {cells[1]} |")
    ratio = ""
    if report["batch32"].get("int8"):
        ratio = (f"int8 / fp32: **{report['batch32']['int8']['images_per_s'] / report['batch32']['fp32']['images_per_s']:.2f}×** "
                 f"batched, {report['batch1']['int8']['images_per_s'] / report['batch1']['fp32']['images_per_s']:.2f}× at "
                 f"batch 1 (target ≥ 1.6× batched).")
    copies = report.get("reduced_copies", {})
    copy_rows = ["| copy | size | val accuracy (fp32 → copy) | worst class recall drop | OOD pass rate (fp32 → copy) "
                 "| OOD distance rank corr. | CPU speed vs fp32 | serving check |", "|---|---|---|---|---|---|---|---|"]
    for name, c in copies.items():
        if not isinstance(c, dict):
            continue
        copy_rows.append(
            f"| {name} | {c['size_kib']:,} KiB (fp32 {copies['fp32 size_kib']:,}) | {c['accuracy_fp32']:.4f} → "
            f"{c['accuracy_int8']:.4f} | {c['max_class_recall_drop']:.3f} | {c.get('ood_pass_rate_fp32', 0):.3f} → "
            f"{c.get('ood_pass_rate_int8', 0):.3f} | {c.get('ood_distance_rank_correlation', 0):.3f} "
            f"| **{c['speedup_cpu']:.2f}×** | {'passes' if c['passed'] else 'fails'} |")
    block = "\n".join([
        "## The int8 serving copy (`make bench-int8`)",
        "",
        f"Command: `make bench-int8` — {report['date']}. Raw JSON: `benchmarks/results/int8.json`. "
        f"Served runtime after training: `{report['runtimes']['served']}`. Load average "
        f"{report['load_average_1min_start']:.1f} → {report['load_average_1min_end']:.1f} (2 cores).",
        "",
        "The validation check training ran (limits: accuracy −0.2 points, any class's recall −1 point, OOD "
        "pass rate ±1 point, OOD distance rank correlation ≥ 0.98): "
        + ("passed" if check.get("passed") else f"refused ({'; '.join(check.get('reasons') or [])})")
        + (f" — {check.get('images')} validation images, accuracy {check.get('accuracy_fp32', 0):.4f} → "
           f"{check.get('accuracy_int8', 0):.4f}, pass rate {check.get('ood_pass_rate_fp32', 0):.3f} → "
           f"{check.get('ood_pass_rate_int8', 0):.3f}, rank correlation {check.get('ood_distance_rank_correlation', 0):.4f}."
           if "images" in check else "."),
        "",
        *rows,
        "",
        ratio,
        "",
        "Every reduced-precision copy TFLite makes, on the validation split against the fp32 copy (the serving "
        "check's figures) and timed against it on this CPU (AVX2, XNNPACK):",
        "",
        *copy_rows,
        "",
        "Throughput: decode-free forward pass with OOD score and review reasons, the two copies in "
        f"{report['rounds']} alternating rounds (median).",
    ])
    replace_doc_section("bench-int8", block)


if __name__ == "__main__":
    raise SystemExit(main())
