"""Anomaly models from good images only (``make bench-anomaly``): the evidence for mlcore.anomaly.

- **BSData** (ball-screw drives; see ``anomaly_data.py``): anomaly-train's PatchCore-style model
  on 70 % of ``no_defect`` (it holds out its own calibration images), judged on the other 30 %
  against every ``pitting`` image: image AUROC, pixel AUROC against the pitting masks,
  false-alarm and miss rates at the calibrated threshold, training time, scoring images/s
  (batched, with and without maps) and peak memory. Beside it: the same model at a larger input,
  and a PaDiM-style Gaussian per patch position on the same features (the other method).
- **Nearest-neighbour libraries** on the trained memory: faiss exact, faiss HNSW, scikit-learn.
- **cr7-det tiles** (another steel line, NEU-free): how training time, memory and scores grow
  with 1,000, 5,000 and 20,000 good tiles, and the same figures on its defect tiles.

Every training and evaluation runs in its own process, so its peak memory is its own. Writes
benchmarks/results/anomaly.json and the section of docs/benchmarks.md between its markers.

    .venv/bin/python benchmarks/bench_anomaly.py [--growth 1000,5000,20000] [--no-docs]
    .venv/bin/python benchmarks/bench_anomaly.py --speed      # scoring speed alone, on a quiet machine
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks import anomaly_data  # noqa: E402

WORK = ROOT / "var" / "bench-anomaly"
RESULTS = ROOT / "benchmarks" / "results" / "anomaly.json"
PIXEL_BINS = 8192
SPEED_IMAGES = 256  # images scored for the images/s figures
AREA_BANDS = ((0, 100), (100, 300), (300, None))
OPERATING_RATES = (0.01, 0.05, 0.1)  # false-alarm targets the held-out scores are re-thresholded at  # defect sizes (mask pixels) the image AUROC is split by


def in_child(function, *args, **kwargs):
    """Run ``function`` in a fresh process (its own peak memory) and return its result."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args, **kwargs).result()


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- training and evaluation (each in a child process) ---

def train(good: list[str], out_dir: str, overrides: dict | None = None) -> dict:
    from mlcore.anomaly import AnomalyConfig, train_anomaly_model

    config = AnomalyConfig(cache_dir=os.environ.get("STEELQC_CACHE_DIR") or None, **(overrides or {}))
    started = time.perf_counter()
    result = train_anomaly_model(config, good, out_dir=out_dir)
    seconds = time.perf_counter() - started
    trained = result.config
    size = sum(f.stat().st_size for f in Path(out_dir).iterdir())
    return {"seconds": round(seconds, 1), "phases_s": trained["training"]["seconds"],
            "good_images": trained["training"]["good_images"], "memory_patches": trained["memory"]["size"],
            "patches_seen": trained["memory"]["patches_seen"], "input_shape": trained["backbone"]["input_shape"],
            "threshold": trained["threshold"], "artefact_mb": round(size / 2**20, 1), "peak_rss_mb": peak_rss_mb()}


class PixelAuroc:
    """AUROC over every pixel of every map, from histograms (exact up to ties inside a bin)."""

    def __init__(self, high: float, bins: int = PIXEL_BINS):
        self.high, self.bins = float(high), bins
        self.positive = np.zeros(bins, np.int64)
        self.negative = np.zeros(bins, np.int64)

    def add(self, values: np.ndarray, mask: np.ndarray) -> None:
        index = np.clip((np.asarray(values, np.float64) / self.high * (self.bins - 1)).astype(np.int64), 0, self.bins - 1)
        self.positive += np.bincount(index[mask], minlength=self.bins)
        self.negative += np.bincount(index[~mask], minlength=self.bins)

    def value(self) -> float | None:
        if not self.positive.sum() or not self.negative.sum():
            return None
        below = np.cumsum(self.negative) - self.negative
        wins = (self.positive * below).sum() + 0.5 * (self.positive * self.negative).sum()
        return round(float(wins / (self.positive.sum() * self.negative.sum())), 4)


def auroc(negatives, positives) -> float:
    from sklearn.metrics import roc_auc_score

    labels = np.r_[np.zeros(len(negatives)), np.ones(len(positives))]
    return round(float(roc_auc_score(labels, np.r_[negatives, positives])), 4)


def read_mask(path: str | None, shape: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    if path is None:
        return np.zeros(shape, bool)
    with Image.open(path) as picture:
        return np.asarray(picture.convert("L")) > 127


def _band_name(low: int, high: int | None) -> str:
    return f"< {high} px" if not low else f"≥ {low} px" if high is None else f"{low}–{high} px"


def _figures(good, defect, areas, *, threshold, calibration_scores, pixel, pixel_8bit) -> dict:
    from mlcore.anomaly.calibration import calibrate_threshold, min_calibration_images

    def band(low, high):
        return (areas >= low) & (areas < (high or np.inf))

    by_size = {_band_name(low, high): {"defects": int(band(low, high).sum()),
                                       "image_auroc": auroc(good, defect[band(low, high)]) if band(low, high).any() else None}
               for low, high in AREA_BANDS}
    operating = {}
    for rate in OPERATING_RATES if calibration_scores is not None else ():
        if len(calibration_scores) < min_calibration_images(rate):
            continue
        at = calibrate_threshold(calibration_scores, false_alarm_rate=rate).threshold
        operating[str(rate)] = {"false_alarm_rate": round(float((good > at).mean()), 4),
                                "miss_rate": round(float((defect <= at).mean()), 4),
                                "miss_rate_by_defect_area": {
                                    _band_name(low, high): round(float((defect[band(low, high)] <= at).mean()), 4)
                                    for low, high in AREA_BANDS if band(low, high).any()}}
    return {"image_auroc": auroc(good, defect), "image_auroc_by_defect_area": by_size,
            "pixel_auroc": pixel.value(), "pixel_auroc_8bit_map": pixel_8bit.value(),
            "false_alarm_rate": round(float((good > threshold).mean()), 4),
            "miss_rate": round(float((defect <= threshold).mean()), 4),
            "at_other_false_alarm_targets": operating, "test_good": int(len(good)), "test_defect": int(len(defect))}


def judge(grids, images, *, good_count: int, masks: list, threshold: float, black: float, rule: str,
          input_shape, sigma: float, calibration_scores=None) -> dict:
    """Image and pixel figures from patch-distance grids (the product's own map and score rules):
    for all test images, and where frame sizes vary, for the defect images framed like the good
    ones (``same_size``: a size among the good test images; ``main_size``: the good images' most
    common size), since a frame of another size is unlike good for its framing alone."""
    from collections import Counter

    from mlcore.anomaly.maps import at_image_size, map_to_uint8, smooth_map

    sizes = [image.shape[:2] for image in images]
    good_sizes = Counter(sizes[:good_count])
    subsets = {"all": lambda size: True, "same_size": lambda size: size in good_sizes,
               "main_size": lambda size: size == good_sizes.most_common(1)[0][0]}
    members = {name: np.array([keep(size) for size in sizes]) for name, keep in subsets.items()}
    if np.array_equal(members["main_size"], members["same_size"]):
        del members["main_size"]
    members = {name: kept for name, kept in members.items()
               if name == "all" or not np.array_equal(kept, members["all"])}
    pixels = {name: (PixelAuroc(4 * threshold), PixelAuroc(255, bins=256)) for name in members}
    map_peak, patch_peak, areas = [], [], []
    for position, (grid, image, mask_path) in enumerate(zip(grids, images, masks)):
        smooth = smooth_map(grid, input_shape=input_shape, sigma=sigma)
        map_peak.append(float(smooth.max()))
        patch_peak.append(float(grid.max()))
        values = at_image_size(smooth, image_shape=image.shape[:2])
        mask = read_mask(mask_path, image.shape[:2])
        areas.append(int(mask.sum()))
        picture = map_to_uint8(values, low=black, threshold=threshold)
        for name, kept in members.items():
            if kept[position]:
                pixels[name][0].add(values, mask)
                pixels[name][1].add(picture, mask)
    scores = {"map_max": np.array(map_peak), "patch_max": np.array(patch_peak)}
    areas = np.array(areas)
    is_good = np.arange(len(images)) < good_count
    result = {}
    for name, kept in members.items():
        chosen = scores[rule]
        figures = _figures(chosen[kept & is_good], chosen[kept & ~is_good], areas[kept & ~is_good],
                           threshold=threshold, calibration_scores=calibration_scores,
                           pixel=pixels[name][0], pixel_8bit=pixels[name][1])
        figures["image_auroc_other_rule"] = {other: auroc(values[kept & is_good], values[kept & ~is_good])
                                             for other, values in scores.items() if other != rule}
        if name == "all":
            result.update(figures)
        else:
            result.setdefault("subsets", {})[name] = figures
    return result


def scoring_rates(model, images: list, *, rounds: int = 1) -> tuple[list[float], float]:
    """(images/s of each of ``rounds`` batched scorings, images/s scoring with maps), after one batch
    traced the model outside the timing."""
    model.score(images[:model.scorer.batch_size])
    rates = []
    for _ in range(rounds):
        started = time.perf_counter()
        model.score(images)
        rates.append(len(images) / (time.perf_counter() - started))
    started = time.perf_counter()
    model.score(images, maps=True)
    return rates, len(images) / (time.perf_counter() - started)


def evaluate(model_dir: str, good: list[str], defect: list[str], masks: dict) -> dict:
    from mlcore.anomaly import AnomalyModel
    from mlcore.io import load_image

    model = AnomalyModel.load(model_dir)
    images = [load_image(p) for p in good + defect]
    [plain], with_maps = scoring_rates(model, images[:SPEED_IMAGES])
    grids = []
    for start in range(0, len(images), 64):
        grids.extend(model.scorer.distances(images[start:start + 64]))
    figures = judge(grids, images, good_count=len(good), masks=[None] * len(good) + [masks.get(p) for p in defect],
                    threshold=model.threshold, black=model.map_black, rule=model.image_score_rule,
                    input_shape=model.input_shape, sigma=model.map_sigma, calibration_scores=model.calibration_scores)
    return {**figures, "images_per_s": round(plain, 1), "images_per_s_with_maps": round(with_maps, 1),
            "batch_size": model.scorer.batch_size, "peak_rss_mb": peak_rss_mb()}


def padim(model_dir: str, train_pool: list[str], good: list[str], defect: list[str], masks: dict,
          shrinkage: float = 0.1) -> dict:
    """The other method: a Gaussian per patch position (PaDiM-style) on the same patch features,
    fitted on the images the PatchCore model learned from, calibrated on the same held-out ones."""
    from mlcore.anomaly.calibration import calibrate_threshold, split_good_images
    from mlcore.anomaly.model import PatchScorer, read_anomaly_config
    from mlcore.anomaly.features import load_feature_model
    from mlcore.io import file_sha256, load_image

    config = read_anomaly_config(model_dir)
    trained = config["training"]["config"]
    split = split_good_images([file_sha256(p) for p in train_pool], false_alarm_rate=config["false_alarm_rate"],
                              calibration_share=trained["calibration_share"],
                              max_calibration=trained["max_calibration_images"], seed=trained["seed"])
    scorer = PatchScorer(feature_model=load_feature_model(Path(model_dir) / "anomaly_features.keras"), index=None,
                         batch_size=trained["batch_size"])
    started = time.perf_counter()
    features = np.stack([grid for start in range(0, len(split.train), 32)
                         for grid in scorer.features([load_image(train_pool[i]) for i in split.train[start:start + 32]])])
    count, height, width, dim = features.shape
    mean = features.mean(axis=0)
    centred = features - mean
    covariance = np.einsum("nhwi,nhwj->hwij", centred, centred) / (count - 1)
    covariance += (shrinkage * np.trace(covariance, axis1=2, axis2=3) / dim)[..., None, None] * np.eye(dim)
    precision = np.linalg.inv(covariance).astype(np.float32)
    del features, centred

    def distances(images):
        grids = np.stack(scorer.features(images)) - mean
        return list(np.sqrt(np.maximum(np.einsum("nhwi,hwij,nhwj->nhw", grids, precision, grids), 0)))

    from mlcore.anomaly.maps import smooth_map

    input_shape, sigma = tuple(config["backbone"]["input_shape"]), config["score"]["map_sigma"]
    held_out = [load_image(train_pool[i]) for i in split.calibration]
    held_grids = distances(held_out)
    calibration = calibrate_threshold([smooth_map(g, input_shape=input_shape, sigma=sigma).max() for g in held_grids],
                                      false_alarm_rate=config["false_alarm_rate"])
    train_seconds = time.perf_counter() - started
    black = float(np.median([np.median(g) for g in held_grids]))
    images = [load_image(p) for p in good + defect]
    speed = images[:SPEED_IMAGES]
    started = time.perf_counter()
    for start in range(0, len(speed), trained["batch_size"]):
        for grid in distances(speed[start:start + trained["batch_size"]]):
            smooth_map(grid, input_shape=input_shape, sigma=sigma).max()
    per_second = len(speed) / (time.perf_counter() - started)
    grids = [g for start in range(0, len(images), 64) for g in distances(images[start:start + 64])]
    figures = judge(grids, images, good_count=len(good), masks=[None] * len(good) + [masks.get(p) for p in defect],
                    threshold=calibration.threshold, black=black, rule="map_max", input_shape=input_shape, sigma=sigma,
                    calibration_scores=[smooth_map(g, input_shape=input_shape, sigma=sigma).max() for g in held_grids])
    return {**figures, "train_seconds": round(train_seconds, 1), "images_per_s": round(per_second, 1),
            "model_mb": round((mean.nbytes + precision.nbytes) / 2**20, 1), "peak_rss_mb": peak_rss_mb()}


def nn_libraries(model_dir: str, images: list[str], repeats: int = 3) -> dict:
    """Nearest good patch for the patches of ``images`` by each library: ms per image (median of
    ``repeats`` rounds, the methods interleaved so a busy moment hits them alike), exactness."""
    import faiss
    from sklearn.neighbors import NearestNeighbors
    from threadpoolctl import threadpool_limits

    from mlcore.anomaly.index import PatchIndex
    from mlcore.anomaly.model import AnomalyModel
    from mlcore.io import load_image

    model = AnomalyModel.load(model_dir)
    with np.load(Path(model_dir) / "anomaly_memory.npz") as stored:
        memory = stored["memory"]
    grids = model.scorer.features([load_image(p) for p in images])
    queries = np.ascontiguousarray(np.stack(grids).reshape(-1, memory.shape[1]))
    exact = PatchIndex(memory).distances(queries)

    def faiss_search(index, threads):
        faiss.omp_set_num_threads(threads)
        return index.distances(queries)

    def sklearn_search(index, threads):
        with threadpool_limits(limits=threads, user_api="blas"):
            return index.kneighbors(queries)[0][:, 0]

    threads = os.cpu_count() or 1
    methods = {f"faiss IndexFlatL2 (exact), {threads} threads": (lambda: PatchIndex(memory), faiss_search, threads),
               "faiss IndexFlatL2 (exact), 1 thread": (lambda: PatchIndex(memory), faiss_search, 1)}
    for ef in (16, 32, 64):
        methods[f"faiss HNSW efSearch {ef}"] = (lambda ef=ef: PatchIndex(memory, method="hnsw", hnsw_search=ef),
                                                faiss_search, threads)
    brute = lambda: NearestNeighbors(n_neighbors=1, algorithm="brute").fit(memory)  # noqa: E731
    methods[f"scikit-learn brute, {threads} BLAS threads"] = (brute, sklearn_search, threads)
    methods["scikit-learn brute, 1 BLAS thread"] = (brute, sklearn_search, 1)
    methods["scikit-learn kd_tree"] = (lambda: NearestNeighbors(n_neighbors=1, algorithm="kd_tree").fit(memory),
                                       sklearn_search, threads)
    built, found, times = {}, {}, {name: [] for name in methods}
    for name, (build, search, count) in methods.items():
        started = time.perf_counter()
        built[name] = (build(), time.perf_counter() - started)
        found[name] = search(built[name][0], count)  # warm, and the answer
    for _ in range(repeats):
        for name, (_, search, count) in methods.items():
            started = time.perf_counter()
            search(built[name][0], count)
            times[name].append(time.perf_counter() - started)
    faiss.omp_set_num_threads(threads)
    rows = {}
    for name in methods:
        ratio = found[name] / np.maximum(exact, 1e-6)
        rows[name] = {"ms_per_image": round(float(np.median(times[name])) / len(images) * 1000, 2),
                      "build_s": round(built[name][1], 2),
                      "share_exact": round(float(np.mean(np.abs(ratio - 1) < 1e-3)), 4),
                      "max_overestimate": round(float(ratio.max()), 3)}
    return {"memory_patches": int(len(memory)), "dim": int(memory.shape[1]),
            "patches_per_image": int(len(queries) // len(images)), "images": len(images), "repeats": repeats,
            "load_average_1min": round(os.getloadavg()[0], 2), "methods": rows}


# --- the runs ---

RUNS = (("patchcore", {}), ("patchcore_input320", {"input_size": 320}))
# --variants: the other choices, measured the same way (layers, neighbourhood, coreset share).
VARIANTS = (("patchcore_layers_3b_5c", {"layers": ("block3b_add", "block5c_add")}),
            ("patchcore_layers_2b_3b_4c", {"layers": ("block2b_add", "block3b_add", "block4c_add")}),
            ("patchcore_neighbourhood1", {"neighbourhood": 1}),
            ("patchcore_coreset10", {"coreset_ratio": 0.1, "max_memory": 40_000}),
            ("patchcore_input448", {"input_size": 448}))


def run_bsdata(report: dict, runs=RUNS, *, padim_and_nn: bool = True) -> None:
    sets = anomaly_data.bsdata_sets()
    train_pool = [str(p) for p in sets["train"]]
    good, defect = [str(p) for p in sets["test_good"]], [str(p) for p in sets["test_defect"]]
    masks = {k: str(v) for k, v in sets["masks"].items()}
    section = report.setdefault("bsdata", {"given_good": len(train_pool), "test_good": len(good),
                                           "test_defect": len(defect), "runs": {}})
    for name, overrides in runs:
        model_dir = str(WORK / "bsdata" / name)
        log(f"bsdata {name}: training on {len(train_pool)} good images")
        trained = in_child(train, train_pool, model_dir, overrides)
        log(f"bsdata {name}: trained in {trained['seconds']} s; evaluating")
        section["runs"][name] = {"overrides": overrides, "train": trained,
                                 "test": in_child(evaluate, model_dir, good, defect, masks)}
        log(f"bsdata {name}: {section['runs'][name]['test']}")
        save(report)
    if not padim_and_nn:
        return
    log("bsdata padim")
    section["runs"]["padim"] = {"test": in_child(padim, str(WORK / "bsdata" / "patchcore"), train_pool, good, defect, masks)}
    log(f"bsdata padim: {section['runs']['padim']['test']}")
    save(report)
    log("nearest-neighbour libraries")
    report["nn_libraries"] = in_child(nn_libraries, str(WORK / "bsdata" / "patchcore"), good[:32])
    save(report)


def run_cr7(report: dict, growth: list[int], test_count: int) -> None:
    log("cr7-det: cutting tiles (once)")
    tiles = anomaly_data.cr7_tiles(WORK)
    good = anomaly_data.sample(tiles["test_good"], test_count, seed=1)
    defect = anomaly_data.sample(tiles["test_defect"], test_count, seed=2)
    pool = [str(p) for p in anomaly_data.hash_order([Path(p) for p in tiles["train_good"]])]
    section = report.setdefault("cr7", {"tiles": {k: len(v) for k, v in tiles.items() if k != "masks"},
                                        "test_good": len(good), "test_defect": len(defect), "growth": {}})
    for count in growth:
        if count > len(pool):
            section["growth"][str(count)] = {"skipped": f"only {len(pool)} good training tiles"}
            continue
        model_dir = str(WORK / "cr7" / f"good{count}")
        log(f"cr7 {count} good tiles: training")
        trained = in_child(train, pool[:count], model_dir)
        log(f"cr7 {count}: trained in {trained['seconds']} s; evaluating")
        section["growth"][str(count)] = {"train": trained,
                                         "test": in_child(evaluate, model_dir, good, defect, tiles["masks"])}
        log(f"cr7 {count}: {section['growth'][str(count)]['test']}")
        save(report)
    largest = max((c for c in growth if "train" in section["growth"].get(str(c), {})), default=None)
    if largest is not None:
        log(f"nearest-neighbour libraries on the {largest}-tile memory")
        section["nn_libraries"] = in_child(nn_libraries, str(WORK / "cr7" / f"good{largest}"), good[:32])
        save(report)
    first = str(WORK / "cr7" / f"good{growth[0]}")
    if Path(first).is_dir():
        log("cr7 padim")
        section["padim"] = in_child(padim, first, pool[:growth[0]], good, defect, tiles["masks"])
        save(report)


def speed_check(model_dir: str, paths: list[str], rounds: int = 3) -> dict:
    """Scoring speed alone (the images already decoded, batched as the product scores them), in rounds:
    run with --speed on a quiet machine, where the full run's figures are lower bounds."""
    from mlcore.anomaly import AnomalyModel
    from mlcore.io import load_image

    model = AnomalyModel.load(model_dir)
    images = [load_image(p) for p in paths]
    load = os.getloadavg()[0]
    rates, with_maps = scoring_rates(model, images, rounds=rounds)
    return {"date": time.strftime("%Y-%m-%d %H:%M"), "images": len(images), "batch_size": model.scorer.batch_size,
            "input_shape": list(model.input_shape), "images_per_s": [round(r, 1) for r in rates],
            "images_per_s_with_maps": round(with_maps, 1), "load_average_1min_before": round(load, 2),
            "load_average_1min_after": round(os.getloadavg()[0], 2)}


def run_speed(report: dict) -> None:
    sets = anomaly_data.bsdata_sets()
    paths = [str(p) for p in sets["test_good"][:SPEED_IMAGES // 2] + sets["test_defect"][:SPEED_IMAGES // 2]]
    model_dir = WORK / "bsdata" / "patchcore"
    if not model_dir.is_dir():
        log("bsdata patchcore: training (no model from an earlier run)")
        in_child(train, [str(p) for p in sets["train"]], str(model_dir))
    report["speed_check"] = in_child(speed_check, str(model_dir), paths)
    log(f"speed: {report['speed_check']}")


def save(report: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--growth", default="1000,5000,20000", help="good tiles per cr7 run")
    parser.add_argument("--cr7-test", type=int, default=1000, help="cr7 test tiles of each kind")
    parser.add_argument("--skip", default="", help="comma-separated parts to leave out: bsdata, cr7")
    parser.add_argument("--variants", action="store_true",
                        help="only the other PatchCore choices on BSData, added to the existing report")
    parser.add_argument("--speed", action="store_true",
                        help="only the default BSData model's scoring speed (for a quiet machine), added to the report")
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    from importlib.metadata import version

    if args.variants or args.speed:
        report = json.loads(RESULTS.read_text())
        if args.speed:
            run_speed(report)
        else:
            run_bsdata(report, VARIANTS, padim_and_nn=False)
            report["variants_load_average_end"] = [round(v, 2) for v in os.getloadavg()]
        save(report)
        if not args.no_docs:
            from benchmarks.anomaly_report import write_docs

            write_docs(report)
        return 0
    # A part left out keeps its figures from the last run that measured it.
    report = json.loads(RESULTS.read_text()) if skip and RESULTS.is_file() else {}
    report.update({"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{os.cpu_count()} cores",
                   "load_average_start": [round(v, 2) for v in os.getloadavg()],
                   "versions": {p: version(p) for p in ("tensorflow-cpu", "faiss-cpu", "scikit-learn", "numpy")}})
    if "bsdata" not in skip:
        report.pop("bsdata", None)
        run_bsdata(report)
    if "cr7" not in skip:
        report.pop("cr7", None)
        run_cr7(report, [int(v) for v in args.growth.split(",")], args.cr7_test)
    report["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    save(report)
    if not args.no_docs:
        from benchmarks.anomaly_report import write_docs

        write_docs(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
