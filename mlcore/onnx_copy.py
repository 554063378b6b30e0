"""The ONNX copy of a model version, for line PCs that run ONNX Runtime or OpenVINO.

Like the TFLite serving copy (``mlcore.serving``) it is kept only after it proved itself: the
copy and Keras predict the same check images (held-out images of the copy's input shape) and
the copy is kept when, on every image, the class probabilities are within ``PARITY_TOLERANCE``
(1e-3) of Keras', the top class is the same (top-1 agreement 1.0), the pooled features are
within 1e-3 of Keras' (relative to their largest value) and, with a detection head, the
detection map within 1e-3. Otherwise, or when the conversion or ONNX Runtime fails, the copy is
left out and the record says why. The record (``ONNX_CHECK_FILE``) is written either way.

The copy has one fixed input shape (the artefact's most common image shape, as the TFLite copy)
with a free batch dimension: input ``image``, float32 pixels 0..255 (N, H, W, C); outputs
``probabilities`` (in ``classes.json`` order), ``features`` and, with a detection head,
``detection_map``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mlcore.artefact import CONFIG_FILE, ONNX_CHECK_FILE, ONNX_FILE
from mlcore.model import read_json, write_json
from mlcore.serving import PARITY_TOLERANCE

MIN_TOP1_AGREEMENT = 1.0   # the same top class as Keras on every check image
CHECK_BATCH = 16
# Without held-out images of the copy's shape, these many seeded noise-and-stripe frames are
# checked instead (recorded as such): weaker evidence, but the same outputs are compared.
SYNTHETIC_CHECK_IMAGES = 16


def onnx_input_shape(config: dict) -> tuple[int, int, int]:
    """The copy's (H, W, C): the verified TFLite copy's shape, else the artefact's typical shape."""
    from mlcore.export import _typical_shape

    serving = config.get("serving") or {}
    shape = serving.get("image_shape") or _typical_shape(config)
    return tuple(int(v) for v in shape)


class OnnxForward:
    """(probabilities, features[, detection map]) from the ONNX copy on ONNX Runtime's CPU kernels."""

    def __init__(self, path: str | Path, *, threads: int | None = None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
        self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        names = [output.name for output in self._session.get_outputs()]
        if not {"probabilities", "features"} <= set(names):
            raise ValueError(f"the ONNX copy's outputs are {names}, not probabilities and features")
        self._outputs = ["probabilities", "features"] + (["detection_map"] if "detection_map" in names else [])

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(self._session.run(self._outputs, {self._input: np.asarray(batch, np.float32)}))


def _with_channels(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    return image[..., None] if image.ndim == 2 else image


def synthetic_check_images(shape: Sequence[int], count: int = SYNTHETIC_CHECK_IMAGES) -> list[np.ndarray]:
    """Seeded frames of ``shape``: noise over stripes and blobs of several contrasts."""
    rng = np.random.default_rng(0)
    height, width, channels = (int(v) for v in shape)
    rows, columns = np.mgrid[0:height, 0:width]
    images = []
    for index in range(count):
        period = 4 + 3 * (index % 5)
        pattern = 60 * np.sin(2 * np.pi * (rows if index % 2 else columns) / period)
        frame = np.clip(rng.normal(40 + 12 * index, 15, (height, width)) + pattern, 0, 255)
        images.append(np.repeat(frame[..., None], channels, axis=2).astype(np.uint8))
    return images


def _keras_reference(model_dir: Path):
    from mlcore.inference import compile_forward, load_detection_head
    from mlcore.model import load_keras_model

    detection = load_detection_head(model_dir)
    return compile_forward(load_keras_model(model_dir), detection[0] if detection else None)


def _in_batches(forward, images: np.ndarray) -> list[np.ndarray]:
    parts = [forward(images[start:start + CHECK_BATCH]) for start in range(0, len(images), CHECK_BATCH)]
    return [np.concatenate([part[i] for part in parts]) for i in range(len(parts[0]))]


def parity_check(expected: Sequence[np.ndarray], got: Sequence[np.ndarray]) -> dict:
    """The figures comparing the copy's outputs (``got``) with Keras' (``expected``), and the reasons
    it fails, if any."""
    probabilities, features = (np.asarray(v) for v in expected[:2])
    got_probabilities, got_features = (np.asarray(v) for v in got[:2])
    check = {
        "max_probability_difference": float(np.max(np.abs(probabilities - got_probabilities))),
        "top1_agreement": float(np.mean(probabilities.argmax(axis=1) == got_probabilities.argmax(axis=1))),
        "max_relative_feature_difference": float(np.max(np.abs(features - got_features))
                                                 / (np.max(np.abs(features)) or 1.0)),
    }
    reasons = []
    if not check["max_probability_difference"] <= PARITY_TOLERANCE:
        reasons.append(f"probabilities differ from Keras' by up to {check['max_probability_difference']:.2g} "
                       f"(at most {PARITY_TOLERANCE:g})")
    if not check["top1_agreement"] >= MIN_TOP1_AGREEMENT:
        reasons.append(f"the top class agrees with Keras on {check['top1_agreement']:.1%} of the check images "
                       f"(needs {MIN_TOP1_AGREEMENT:.0%})")
    if not check["max_relative_feature_difference"] <= PARITY_TOLERANCE:
        reasons.append(f"features differ from Keras' by up to {check['max_relative_feature_difference']:.2g} "
                       f"of their largest value (at most {PARITY_TOLERANCE:g})")
    if len(expected) != len(got):
        reasons.append("the copy does not give the detection map Keras gives")
    elif len(expected) > 2:
        check["max_detection_map_difference"] = float(np.max(np.abs(np.asarray(expected[2]) - np.asarray(got[2]))))
        if not check["max_detection_map_difference"] <= PARITY_TOLERANCE:
            reasons.append(f"the detection map differs from Keras' by up to "
                           f"{check['max_detection_map_difference']:.2g} (at most {PARITY_TOLERANCE:g})")
    check["reasons"] = reasons
    return check


def onnx_copy_export(*, model_dir: str | Path, out_dir: str | Path, check_images: Sequence[np.ndarray] = (),
                     check_source: str = "held-out images") -> dict:
    """Convert, check and write ``model.onnx`` into ``out_dir`` when it passed; write the record
    (``onnx_check.json``) into ``out_dir`` either way and return it.

    ``check_images``: uint8 frames; those of the copy's input shape are compared (the others
    cannot go through a fixed-shape copy). Without any, synthetic frames are checked and
    ``check_source`` says so.
    """
    from mlcore.export import ONNX_OPSET, export_model

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shape = onnx_input_shape(read_json(model_dir / CONFIG_FILE))
    images = [image for image in map(_with_channels, check_images) if image.shape == shape]
    if not images:
        images, check_source = synthetic_check_images(shape), "synthetic frames (no held-out image of this shape)"
    record: dict = {"file": ONNX_FILE, "included": False, "opset": ONNX_OPSET, "image_shape": list(shape),
                    "input": "image", "check_images": len(images), "check_source": check_source,
                    "tolerance": PARITY_TOLERANCE, "min_top1_agreement": MIN_TOP1_AGREEMENT}
    with tempfile.TemporaryDirectory(prefix="steelqc-onnx-") as scratch:
        started = time.monotonic()
        try:
            written = export_model(model_dir=model_dir, out_dir=scratch, format="onnx", image_shape=shape)
        except Exception as error:  # a model the converter cannot express: the edge uses another copy
            record["reason"] = f"conversion failed: {type(error).__name__}: {error}"[:500]
            return _record(out_dir, record)
        record["conversion_s"] = round(time.monotonic() - started, 2)
        batch = np.stack(images).astype(np.float32)
        try:
            got = _in_batches(OnnxForward(written), batch)
        except Exception as error:  # e.g. an operator ONNX Runtime does not have
            record["reason"] = f"ONNX Runtime could not run the copy: {type(error).__name__}: {error}"[:500]
            return _record(out_dir, record)
        record.update(parity_check(_in_batches(_keras_reference(model_dir), batch), got))
        record["outputs"] = ["probabilities", "features"] + (["detection_map"] if len(got) > 2 else [])
        if record["reasons"]:
            record["reason"] = "the ONNX copy did not match Keras: " + "; ".join(record["reasons"])
        else:
            record["included"] = True
            record["size"] = written.stat().st_size
            shutil.move(str(written), out_dir / ONNX_FILE)
    return _record(out_dir, record)


def _record(out_dir: Path, record: dict) -> dict:
    write_json(out_dir / ONNX_CHECK_FILE, record)
    return record
