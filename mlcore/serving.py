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

from mlcore.artefact import CONFIG_FILE, SERVING_FILE
from mlcore.model import read_json, write_json
PARITY_TOLERANCE = 1e-3

Forward = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def _as_batch(images: Sequence[np.ndarray]) -> np.ndarray:
    batch = np.stack([np.asarray(image, dtype=np.float32) for image in images])
    return batch[..., None] if batch.ndim == 3 else batch


class TfliteForward:
    """(probabilities, features) for batches of one fixed image shape; thread-safe."""

    def __init__(self, path: str | Path, *, image_shape: Sequence[int], num_classes: int, threads: int | None = None):
        self.image_shape = tuple(int(v) for v in image_shape)
        # TFLite's default is one thread; use every core the process may run on.
        threads = threads or len(os.sched_getaffinity(0))
        self._interpreter = interpreter_class()(model_path=str(path), num_threads=threads)
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._batch = 0
        self._lock = threading.Lock()
        outputs = self._interpreter.get_output_details()
        by_width = {int(detail["shape"][-1]): detail["index"] for detail in outputs}
        if num_classes not in by_width or len(outputs) != 2:
            raise ValueError("the TFLite copy does not have the probabilities and features outputs")
        self._probabilities = by_width.pop(num_classes)
        self._features = next(iter(by_width.values()))

    def accepts(self, batch: np.ndarray) -> bool:
        shape = tuple(batch.shape[1:]) if batch.ndim == 4 else tuple(batch.shape[1:]) + (1,)
        return shape == self.image_shape

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
            return (self._interpreter.get_tensor(self._probabilities).copy(),
                    self._interpreter.get_tensor(self._features).copy())


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
    expected, expected_features = keras_forward(batch)
    got, got_features = fast(batch)
    difference = float(np.max(np.abs(expected - got)))
    feature_difference = float(np.max(np.abs(expected_features - got_features)) /
                               (np.max(np.abs(expected_features)) or 1.0))
    same_labels = bool(np.all(expected.argmax(axis=1) == got.argmax(axis=1)))
    serving = {"image_shape": list(shape), "checked_images": len(sample_images),
               "max_probability_difference": difference, "max_relative_feature_difference": feature_difference}
    if difference <= PARITY_TOLERANCE and same_labels and feature_difference <= PARITY_TOLERANCE:
        serving.update(runtime="tflite", file=SERVING_FILE)
    else:
        candidate.unlink()
        serving.update(runtime="keras", reason="the TFLite copy did not match Keras within tolerance")
    config["serving"] = serving
    write_json(model_dir / CONFIG_FILE, config)
    return serving


def serving_forward(*, model_dir: str | Path, config: dict, num_classes: int, general: Forward,
                    runtime: str = "auto") -> tuple[Forward, str]:
    """The forward function a loaded classifier should use, and the runtime's name."""
    if runtime not in ("auto", "keras"):
        raise ValueError(f"runtime must be 'auto' or 'keras', got {runtime!r}")
    serving = config.get("serving") or {}
    path = Path(model_dir) / str(serving.get("file", SERVING_FILE))
    if runtime == "keras" or serving.get("runtime") != "tflite" or not path.is_file():
        return general, "keras"
    fast = TfliteForward(path, image_shape=serving["image_shape"], num_classes=num_classes)
    return dispatching_forward(fast=fast, general=general), "tflite"
