"""A faster CPU runtime for serving: the same model as TFLite (XNNPACK kernels).

On the plant's CPU-only machines the TFLite copy of the classifier runs the common image shape
(e.g. NEU's 200x200 grayscale) several times faster than Keras, at batch 1 most of all. It is
only used when it is verified to give the same answers: at export the two runtimes predict the
same validation images and the largest probability difference is recorded; above the tolerance
the copy is discarded and serving stays on Keras. Images of any other shape always go through
Keras, which accepts every size and channel count.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from mlcore.artefact import CONFIG_FILE, SERVING_FILE, SERVING_INT8_FILE
from mlcore.model import read_json, write_json

PARITY_TOLERANCE = 1e-3

# The int8 copy replaces the fp32 one only when, on the validation images, it costs at most
# this much: accuracy, any class's recall, the OOD check's in-domain pass rate; and its OOD
# distances rank the images as the fp32 copy's do (so foreign images stay as far out).
INT8_MAX_ACCURACY_DROP = 0.002
INT8_MAX_RECALL_DROP = 0.01
INT8_MAX_PASS_RATE_CHANGE = 0.01
INT8_MIN_DISTANCE_RANK_CORRELATION = 0.98
INT8_CALIBRATION_IMAGES = 200
# ... and only when it is this much faster than the fp32 copy on this machine's CPU (CPU time per
# image on the check images): XNNPACK's fp32 kernels are fast, and a copy that is as good but not
# faster is not worth a second runtime.
INT8_MIN_SPEEDUP = 1.2

SERVING_RUNTIMES = ("auto", "tflite-fp32", "keras")

Forward = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def _as_batch(images: Sequence[np.ndarray]) -> np.ndarray:
    batch = np.stack([np.asarray(image, dtype=np.float32) for image in images])
    return batch[..., None] if batch.ndim == 3 else batch


class TfliteForward:
    """(probabilities, features[, detection map]) for batches of one fixed image shape; thread-safe."""

    def __init__(self, path: str | Path, *, image_shape: Sequence[int], num_classes: int, threads: int | None = None):
        self.image_shape = tuple(int(v) for v in image_shape)
        # TFLite's default is one thread; use every core the process may run on.
        threads = threads or len(os.sched_getaffinity(0))
        self._interpreter = interpreter_class()(model_path=str(path), num_threads=threads)
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._batch = 0
        self._lock = threading.Lock()
        outputs = self._interpreter.get_output_details()
        # The detection map is the one 4-D output; the other two are told apart by their width.
        maps = [detail["index"] for detail in outputs if len(detail["shape"]) == 4]
        by_width = {int(detail["shape"][-1]): detail["index"] for detail in outputs if len(detail["shape"]) == 2}
        if num_classes not in by_width or len(by_width) != 2 or len(maps) > 1:
            raise ValueError("the TFLite copy does not have the probabilities and features outputs")
        self._probabilities = by_width.pop(num_classes)
        self._features = next(iter(by_width.values()))
        self._detection = maps[0] if maps else None
        self.has_detection = self._detection is not None

    def accepts(self, batch: np.ndarray) -> bool:
        shape = tuple(batch.shape[1:]) if batch.ndim == 4 else tuple(batch.shape[1:]) + (1,)
        return shape == self.image_shape

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        batch = np.asarray(batch, dtype=np.float32)
        if batch.ndim == 3:
            batch = batch[..., None]
        with self._lock:
            if batch.shape[0] != self._batch:
                self._interpreter.resize_tensor_input(self._input, [batch.shape[0], *self.image_shape])
                self._interpreter.allocate_tensors()
                self._batch = batch.shape[0]
            self._interpreter.set_tensor(self._input, batch)
            self._interpreter.invoke()
            outputs = (self._interpreter.get_tensor(self._probabilities).copy(),
                       self._interpreter.get_tensor(self._features).copy())
            if self._detection is not None:
                outputs += (self._interpreter.get_tensor(self._detection).copy(),)
            return outputs


def interpreter_class():
    """LiteRT's interpreter (the maintained successor of ``tf.lite.Interpreter``, which TensorFlow
    deprecates); TensorFlow's own where the ``ai-edge-litert`` package is not installed."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover - the pinned requirements install it
        import tensorflow as tf

        return tf.lite.Interpreter
    return Interpreter


def dispatching_forward(*, fast: TfliteForward, general: Forward) -> Forward:
    """Use the TFLite copy for its shape and Keras for everything else."""

    def run(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        batch = np.asarray(batch)
        return fast(batch) if fast.accepts(batch) else general(batch)

    return run


def serving_export(*, model_dir: str | Path, sample_images: Sequence[np.ndarray], keras_forward: Forward,
                   num_classes: int) -> dict:
    """Write the verified TFLite copy into ``model_dir`` and record the outcome in config.json."""
    from mlcore.export import export_model

    model_dir = Path(model_dir)
    config = read_json(model_dir / CONFIG_FILE)
    shapes = {np.shape(image) if np.ndim(image) == 3 else (*np.shape(image), 1) for image in sample_images}
    if not sample_images or len(shapes) != 1:
        config["serving"] = {"runtime": "keras", "reason": "no sample images of one common shape to verify with"}
        write_json(model_dir / CONFIG_FILE, config)
        return config["serving"]
    shape = next(iter(shapes))
    candidate = model_dir / SERVING_FILE
    try:
        # The converter prints every traced TensorSpec to stdout: hundreds of lines that would
        # fill training logs and break the CLI's JSON. They are dropped.
        with tempfile.TemporaryDirectory(prefix="steelqc-tflite-") as scratch, \
                contextlib.redirect_stdout(io.StringIO()):
            written = export_model(model_dir=model_dir, out_dir=scratch, format="tflite", image_shape=shape)
            shutil.move(str(written), candidate)
    except Exception as error:  # a model TFLite cannot express still serves, on Keras
        config["serving"] = {"runtime": "keras", "reason": f"TFLite conversion failed: {type(error).__name__}: {error}"[:500]}
        write_json(model_dir / CONFIG_FILE, config)
        return config["serving"]
    batch = _as_batch(sample_images)
    fast = TfliteForward(candidate, image_shape=shape, num_classes=num_classes)
    expected, expected_features, *expected_maps = keras_forward(batch)
    got, got_features, *got_maps = fast(batch)
    difference = float(np.max(np.abs(expected - got)))
    feature_difference = float(np.max(np.abs(expected_features - got_features)) /
                               (np.max(np.abs(expected_features)) or 1.0))
    same_labels = bool(np.all(expected.argmax(axis=1) == got.argmax(axis=1)))
    serving = {"image_shape": list(shape), "checked_images": len(sample_images),
               "max_probability_difference": difference, "max_relative_feature_difference": feature_difference}
    same_maps = len(expected_maps) == len(got_maps)
    if expected_maps and same_maps:
        # Heat, box sizes and offsets are all sigmoid outputs in 0..1: one absolute tolerance.
        serving["max_detection_map_difference"] = float(np.max(np.abs(expected_maps[0] - got_maps[0])))
        same_maps = serving["max_detection_map_difference"] <= PARITY_TOLERANCE
    if difference <= PARITY_TOLERANCE and same_labels and feature_difference <= PARITY_TOLERANCE and same_maps:
        serving.update(runtime="tflite", file=SERVING_FILE)
    else:
        candidate.unlink()
        serving.update(runtime="keras", reason="the TFLite copy did not match Keras within tolerance")
    config["serving"] = serving
    write_json(model_dir / CONFIG_FILE, config)
    return serving


def int8_check(*, labels: np.ndarray, reference: tuple[np.ndarray, np.ndarray], candidate: tuple[np.ndarray, np.ndarray],
               num_classes: int, distances=None, threshold: float | None = None) -> dict:
    """Is the int8 copy's answer as good as the fp32 copy's on these labelled images?

    ``reference``/``candidate``: (probabilities, features) of the two copies; ``distances``
    maps features to OOD distances (the artefact's detector) and ``threshold`` is its
    calibrated in-domain limit. Returns the figures and ``passed``.
    """
    from scipy.stats import spearmanr

    labels = np.asarray(labels)
    ref_labels, new_labels = reference[0].argmax(axis=1), candidate[0].argmax(axis=1)
    ref_accuracy, new_accuracy = float(np.mean(ref_labels == labels)), float(np.mean(new_labels == labels))
    recall_drops = {}
    for index in range(num_classes):
        mine = labels == index
        if mine.any():
            recall_drops[index] = float(np.mean(ref_labels[mine] == index) - np.mean(new_labels[mine] == index))
    check = {
        "images": int(len(labels)),
        "accuracy_fp32": ref_accuracy, "accuracy_int8": new_accuracy,
        "max_class_recall_drop": max(recall_drops.values(), default=0.0),
        "max_probability_difference": float(np.max(np.abs(reference[0] - candidate[0]))),
        "label_agreement": float(np.mean(ref_labels == new_labels)),
    }
    failures = []
    if ref_accuracy - new_accuracy > INT8_MAX_ACCURACY_DROP:
        failures.append(f"accuracy drops {ref_accuracy - new_accuracy:.4f} (limit {INT8_MAX_ACCURACY_DROP})")
    if check["max_class_recall_drop"] > INT8_MAX_RECALL_DROP:
        failures.append(f"a class's recall drops {check['max_class_recall_drop']:.4f} (limit {INT8_MAX_RECALL_DROP})")
    if distances is not None and threshold is not None and np.isfinite(threshold):
        ref_distances, new_distances = distances(reference[1]), distances(candidate[1])
        ref_pass, new_pass = float(np.mean(ref_distances <= threshold)), float(np.mean(new_distances <= threshold))
        correlation = float(spearmanr(ref_distances, new_distances).statistic) if len(labels) > 2 else 1.0
        check.update(ood_pass_rate_fp32=ref_pass, ood_pass_rate_int8=new_pass, ood_distance_rank_correlation=correlation,
                     ood_median_relative_distance_change=float(np.median(
                         np.abs(new_distances - ref_distances) / np.maximum(ref_distances, 1e-9))))
        if abs(new_pass - ref_pass) > INT8_MAX_PASS_RATE_CHANGE:
            failures.append(f"the OOD in-domain pass rate moves {new_pass - ref_pass:+.4f} "
                            f"(limit {INT8_MAX_PASS_RATE_CHANGE})")
        if not correlation >= INT8_MIN_DISTANCE_RANK_CORRELATION:
            failures.append(f"OOD distances rank correlation {correlation:.4f} "
                            f"(at least {INT8_MIN_DISTANCE_RANK_CORRELATION})")
    check["passed"] = not failures
    check["reasons"] = failures
    return check


def cpu_speedup(reference: Forward, candidate: Forward, batch: np.ndarray, *, rounds: int = 3) -> float:
    """CPU time per image of ``reference`` over ``candidate`` (median of alternating rounds)."""
    import time

    ratios = []
    for _ in range(rounds):
        spent = []
        for forward in (reference, candidate):
            started = time.process_time()
            for start in range(0, len(batch), 32):
                forward(batch[start:start + 32])
            spent.append(time.process_time() - started)
        ratios.append(spent[0] / max(spent[1], 1e-9))
    return float(np.median(ratios))


def int8_serving_export(*, model_dir: str | Path, calibration_images: Sequence[np.ndarray],
                        check_images: Sequence[np.ndarray], check_labels: Sequence[int], num_classes: int,
                        distances=None, threshold: float | None = None) -> dict:
    """Try a full-integer serving copy beside the verified fp32 one; keep it (and serve it) only
    if ``int8_check`` passes on the labelled check images. Records the outcome in config.json
    under ``serving.int8``."""
    from mlcore.export import export_model

    model_dir = Path(model_dir)
    config = read_json(model_dir / CONFIG_FILE)
    serving = config.get("serving") or {}
    if serving.get("runtime") != "tflite":
        return {"used": False, "reason": "no verified fp32 TFLite copy to compare with"}
    if "max_detection_map_difference" in serving:
        outcome = {"used": False, "passed": False,
                   "reasons": ["the int8 check does not cover detection outputs yet: the fp32 copy serves"]}
        serving.update(file=SERVING_FILE, precision="fp32", int8=outcome)
        config["serving"] = serving
        write_json(model_dir / CONFIG_FILE, config)
        return outcome
    shape = tuple(serving["image_shape"])
    candidate = model_dir / SERVING_INT8_FILE
    outcome: dict = {"used": False, "calibration_images": len(calibration_images)}
    try:
        with tempfile.TemporaryDirectory(prefix="steelqc-tflite-int8-") as scratch, \
                contextlib.redirect_stdout(io.StringIO()):
            written = export_model(model_dir=model_dir, out_dir=scratch, format="tflite", image_shape=shape,
                                   int8_calibration=list(calibration_images))
            shutil.move(str(written), candidate)
        batch = _as_batch(check_images)
        fp32_forward = TfliteForward(model_dir / SERVING_FILE, image_shape=shape, num_classes=num_classes)
        int8_forward = TfliteForward(candidate, image_shape=shape, num_classes=num_classes)
        outcome.update(int8_check(labels=np.asarray(check_labels), reference=fp32_forward(batch),
                                  candidate=int8_forward(batch), num_classes=num_classes, distances=distances,
                                  threshold=threshold))
        if outcome["passed"]:
            outcome["speedup_cpu"] = cpu_speedup(fp32_forward, int8_forward, batch)
            if outcome["speedup_cpu"] < INT8_MIN_SPEEDUP:
                outcome["passed"] = False
                outcome["reasons"].append(f"only {outcome['speedup_cpu']:.2f}x the fp32 copy's speed "
                                          f"(at least {INT8_MIN_SPEEDUP})")
    except Exception as error:  # quantisation is an optimisation: fp32 keeps serving
        outcome.update(passed=False, reasons=[f"int8 conversion failed: {type(error).__name__}: {error}"[:500]])
    if outcome.get("passed"):
        outcome.update(used=True, file=SERVING_INT8_FILE)
        serving.update(file=SERVING_INT8_FILE, precision="int8")
    else:
        candidate.unlink(missing_ok=True)
        serving.update(file=SERVING_FILE, precision="fp32")
    serving["int8"] = outcome
    config["serving"] = serving
    write_json(model_dir / CONFIG_FILE, config)
    return outcome


def serving_forward(*, model_dir: str | Path, config: dict, num_classes: int, general: Forward,
                    runtime: str = "auto", detection: bool = False) -> tuple[Forward, str]:
    """The forward function a loaded classifier should use, and the runtime's name.

    ``runtime``: "auto" serves the copy the artefact chose (int8 when it passed its check, else
    the fp32 TFLite copy, else Keras); "tflite-fp32" the fp32 copy; "keras" Keras only.
    """
    if runtime not in SERVING_RUNTIMES:
        raise ValueError(f"runtime must be one of {SERVING_RUNTIMES}, got {runtime!r}")
    serving = config.get("serving") or {}
    name = SERVING_FILE if runtime == "tflite-fp32" else str(serving.get("file", SERVING_FILE))
    path = Path(model_dir) / name
    if runtime == "keras" or serving.get("runtime") != "tflite" or not path.is_file():
        return general, "keras"
    fast = TfliteForward(path, image_shape=serving["image_shape"], num_classes=num_classes)
    if detection and not fast.has_detection:  # a copy made before the head: Keras gives all outputs
        return general, "keras"
    return dispatching_forward(fast=fast, general=general), ("tflite-int8" if name == SERVING_INT8_FILE else "tflite")
