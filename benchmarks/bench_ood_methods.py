"""Foreign/novel detection methods side by side on frozen backbone features (``make bench-ood``).

The evidence behind ``mlcore.ood``'s choice. One pass of the ImageNet EfficientNet-Lite0
backbone over the NEU folder (split as ``python -m mlcore train`` splits it), a seeded sample
of another steel line's defects (cr7-det), defect-free and pitted metal (bsdata) and the
synthetic frames of bench-ml; the activations of five depths are kept. Each candidate is fitted
on the NEU training split, calibrated so 95 % of validation images pass, and scored:

- AUROC and share passing (score under the threshold) per foreign set, against the NEU test split;
- leave-one-class-out: fitted on five NEU classes, the sixth scored as novel against the five's
  test images (AUROC, share passing).

Candidates: Mahalanobis distance to class means on the pooled top features (the earlier
method), k-NN on the pooled top features, k-NN on frame-averaged features of several depths
(each depth unit-scaled), and a patch-level memory that scores the most unusual patch (the
way industrial anomaly detectors do). Writes benchmarks/results/ood_methods.json and prints
a Markdown table.

    .venv/bin/python benchmarks/bench_ood_methods.py [--per-class 60] [--patch]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench_ml import auroc, foreign_images  # noqa: E402

from mlcore.cli import split_samples  # noqa: E402
from mlcore.io import load_image, scan_class_folders  # noqa: E402

# Stage 3, 4, 5, 6 ends and the ImageNet head (what the classifier pooled before).
DEPTHS = ("block3b_add", "block4c_add", "block5c_add", "block6d_add", "top_relu6")


def extractor(input_size: int):
    import keras
    import tensorflow as tf

    from mlcore.backbones.efficientnet_lite import build_imagenet_classifier
    from mlcore.backbones.normalization import EfficientNetLiteNormalization
    from mlcore.layers import ChannelsToRGB, ResizeToSquare

    imagenet, _ = build_imagenet_classifier(input_size=input_size, cache_dir=os.environ.get("STEELQC_CACHE_DIR"))
    depths = keras.Model(imagenet.input, [imagenet.get_layer(name).output for name in DEPTHS])
    image = keras.Input((None, None, None), dtype="float32")
    x = EfficientNetLiteNormalization()(ChannelsToRGB()(ResizeToSquare(size=input_size)(image)))
    model = keras.Model(image, depths(x))
    forward = tf.function(lambda batch: model(batch, training=False), reduce_retracing=True)

    def run(images: list[np.ndarray]) -> list[np.ndarray]:
        outputs = [[] for _ in DEPTHS]
        for image in images:  # one at a time: the foreign sets mix sizes
            batch = np.asarray(image, np.float32)[None]
            batch = batch[..., None] if batch.ndim == 3 else batch
            for keep, value in zip(outputs, forward(tf.constant(batch))):
                keep.append(value.numpy()[0].astype(np.float16))
        return [np.stack(values) for values in outputs]

    return run


def unit(x: np.ndarray) -> np.ndarray:
    return x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-8)


def nearest(queries: np.ndarray, memory: np.ndarray, k: int = 1, chunk: int = 2048) -> np.ndarray:
    memory = memory.astype(np.float32)
    norms = (memory ** 2).sum(1)
    out = np.empty(len(queries), np.float32)
    for start in range(0, len(queries), chunk):
        block = queries[start:start + chunk].astype(np.float32)
        squared = np.maximum((block ** 2).sum(1)[:, None] - 2 * block @ memory.T + norms[None], 0)
        out[start:start + chunk] = np.sqrt(np.sort(squared, axis=1)[:, :k]).mean(1)
    return out


def mahalanobis(train: np.ndarray, labels: np.ndarray):
    from mlcore.ood import MahalanobisDetector  # noqa: F401 - the earlier method, refitted here

    means = np.stack([train[labels == k].mean(0) for k in np.unique(labels)])
    centred = (train - means[np.searchsorted(np.unique(labels), labels)]).astype(np.float64)
    n, dims = centred.shape
    sample = centred.T @ centred / n
    scale = np.trace(sample) / dims
    spread = (np.sum(np.sum(centred ** 2, 1) ** 2) - n * np.sum(sample ** 2)) / n ** 2
    distance = np.sum(sample ** 2) - 2 * scale * np.trace(sample) + dims * scale ** 2
    shrink = float(np.clip(spread / max(distance, 1e-12), 0, 1))
    values, vectors = np.linalg.eigh((1 - shrink) * sample + shrink * scale * np.eye(dims))
    whitening = ((vectors / np.sqrt(np.maximum(values, values.max() * 1e-9))) @ vectors.T).astype(np.float32)
    centres = (means @ whitening).astype(np.float32)

    def score(x):
        z = x.astype(np.float32) @ whitening
        return np.sqrt(np.maximum(((z ** 2).sum(1, keepdims=True) - 2 * z @ centres.T + (centres ** 2).sum(1)).min(1), 0))
    return score


def avgpool3(x: np.ndarray) -> np.ndarray:
    padded = np.pad(x.astype(np.float32), ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    h, w = x.shape[1:3]
    return sum(padded[:, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)) / 9.0


def candidates(patch: bool):
    """name -> (representation of the depth list, fit(train_rep, labels) -> score function)."""
    pooled = lambda depths: depths[4].astype(np.float32).mean(axis=(1, 2))  # noqa: E731

    def multi(indices):
        return lambda depths: np.concatenate([unit(depths[i].astype(np.float32).mean(axis=(1, 2))) for i in indices], 1)

    def knn(k):
        return lambda train, labels: (lambda x: nearest(x, train, k))

    chosen = {
        "mahalanobis, pooled top (earlier method)": (pooled, mahalanobis),
        "1-NN, pooled top": (lambda d: unit(pooled(d)), knn(1)),
        "1-NN, depths 3-6 + top": (multi((0, 1, 2, 3, 4)), knn(1)),
        "1-NN, depths 4-6 + top": (multi((1, 2, 3, 4)), knn(1)),
        "5-NN, depths 4-6 + top": (multi((1, 2, 3, 4)), knn(5)),
        "1-NN, depths 4-5": (multi((1, 2)), knn(1)),
        "1-NN, depths 3-6 (chosen)": (multi((0, 1, 2, 3)), knn(1)),
        "mahalanobis, depths 3-6": (multi((0, 1, 2, 3)), mahalanobis),
    }
    if patch:
        def patches(depths):
            return np.concatenate([avgpool3(depths[1]), avgpool3(depths[2])], -1)

        def patch_memory(train, labels, size=20000):
            flat = train.reshape(-1, train.shape[-1])
            bank = flat[np.random.default_rng(0).choice(len(flat), min(size, len(flat)), replace=False)]
            return lambda x: nearest(x.reshape(-1, x.shape[-1]), bank).reshape(len(x), -1).max(1)
        chosen["patch memory, depths 4-5, most unusual patch"] = (patches, patch_memory)
    return chosen


def evaluate(fit, rep, neu, labels, split, foreign) -> dict:
    train, val, test = (split == "train"), (split == "val"), (split == "test")
    features = rep(neu)
    score = fit(features[train], labels[train])
    threshold = np.quantile(score(features[val]), 0.95)
    in_domain = score(features[test])
    row = {"test_pass": float(np.mean(in_domain <= threshold)), "foreign": {}, "loco": {}}
    for name, depths in foreign.items():
        scores = score(rep(depths))
        row["foreign"][name] = {"auroc": auroc(in_domain, scores), "passing": float(np.mean(scores <= threshold))}
    for held_out in np.unique(labels):
        keep = labels != held_out
        score = fit(features[train & keep], labels[train & keep])
        threshold = np.quantile(score(features[val & keep]), 0.95)
        novel = score(features[labels == held_out])
        row["loco"][str(held_out)] = {"auroc": auroc(score(features[test & keep]), novel),
                                      "passing": float(np.mean(novel <= threshold))}
    row["loco_mean_auroc"] = float(np.mean([v["auroc"] for v in row["loco"].values()]))
    row["loco_min_auroc"] = float(min(v["auroc"] for v in row["loco"].values()))
    row["foreign_min_auroc"] = float(min(v["auroc"] for v in row["foreign"].values()))
    row["foreign_max_passing"] = float(max(v["passing"] for v in row["foreign"].values()))
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=str(ROOT.parent / "shared" / "datasets"))
    parser.add_argument("--per-class", type=int, default=60, help="images per foreign class (seeded sample)")
    parser.add_argument("--input-size", type=int, default=192)
    parser.add_argument("--patch", action="store_true", help="also the patch memory (slow: minutes per fold)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ood_methods.json"))
    args = parser.parse_args()
    datasets = Path(args.datasets)
    run = extractor(args.input_size)
    started = time.perf_counter()
    samples = split_samples(str(datasets / "neu-cls"), seed=0)
    neu = run([load_image(s.path) for s in samples])
    classes = sorted({s.label for s in samples})
    labels = np.array([classes.index(s.label) for s in samples])
    split = np.array([s.split for s in samples])

    rng = np.random.default_rng(0)
    foreign: dict[str, list[np.ndarray]] = {}
    for root, prefix in ((datasets / "cr7-det" / "images", "cr7-det"), (datasets / "bsdata", "bsdata")):
        by_class: dict[str, list[str]] = {}
        for found in scan_class_folders(root):
            by_class.setdefault(found.label, []).append(found.path)
        for label, paths in sorted(by_class.items()):
            paths = sorted(paths)
            pick = sorted(rng.choice(len(paths), min(args.per_class, len(paths)), replace=False))
            foreign[f"{prefix}/{label}"] = run([load_image(paths[i]) for i in pick])
    for name, images in foreign_images().items():
        foreign[f"synthetic/{name}"] = run(images)
    extraction_s = time.perf_counter() - started

    rows = {}
    for name, (rep, fit) in candidates(args.patch).items():
        print(f"{name} ...", file=sys.stderr, flush=True)
        rows[name] = evaluate(fit, rep, neu, labels, split, foreign)
        rows[name]["loco"] = {classes[int(k)]: v for k, v in rows[name]["loco"].items()}
    report = {"command": " ".join([".venv/bin/python", "benchmarks/bench_ood_methods.py", *sys.argv[1:]]),
              "input_size": args.input_size, "per_class": args.per_class, "extraction_seconds": extraction_s,
              "methods": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print("| method | NEU test passing | foreign: worst AUROC / most passing | leave-one-class-out: mean (worst) AUROC |")
    print("|---|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['test_pass']:.1%} | {row['foreign_min_auroc']:.3f} / {row['foreign_max_passing']:.1%} "
              f"| {row['loco_mean_auroc']:.3f} ({row['loco_min_auroc']:.3f}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
