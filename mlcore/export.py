"""Copies of a model version for edge devices: TensorFlow SavedModel, TFLite or ONNX.

Both keep the in-model preprocessing and return class probabilities and the pooled features
(the descriptor the OOD check compares), so a device can apply the same review rule (the OOD
memory rides along in ``ood.npz``).
The SavedModel takes any image size and 1 or 3 channels. TFLite wants one fixed input
shape: the most common training image shape recorded in config.json (e.g. 200x200x1),
with a free batch dimension; its resize is the same map expressed as two matrices, so it
needs only builtin TFLite operations for shrinking and enlarging alike. ONNX is converted (tf2onnx)
from the same fixed-shape model: the antialiased resize has no ONNX operator either.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mlcore.artefact import (
    CLASSES_FILE,
    CONFIG_FILE,
    DETECTION_CONFIG_FILE,
    DETECTION_FILE,
    EXPORT_FORMATS,
    ONNX_FILE,
    OOD_FILE,
    TFLITE_FILE,
)
from mlcore.model import load_keras_model, read_json, with_features

FORMATS = EXPORT_FORMATS
# Opset 17: ONNX Runtime runs it from 1.13 on, so older line PCs need no upgrade.
ONNX_OPSET = 17
SIDE_FILES = (CLASSES_FILE, CONFIG_FILE, OOD_FILE)


def export_model(*, model_dir: str | Path, out_dir: str | Path, format: str = "saved_model",
                 image_shape: tuple[int, ...] | None = None, int8_calibration=None,
                 reduced: str | None = None) -> Path:
    """Write the export under ``out_dir`` and return the path of the model it wrote.

    ``int8_calibration`` (TFLite only): images of ``image_shape`` that set the activation
    ranges for a full-integer copy (int8 activations, per-channel int8 weights, XNNPACK's
    integer kernels); input and outputs stay float32, so callers feed and read it unchanged.
    ``reduced`` (TFLite only, without calibration): "dynamic" for int8 weights with float
    activations, "fp16" for float16 weights — the other reduced-precision copies
    ``make bench-int8`` compares.
    """
    import tensorflow as tf

    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    from mlcore.inference import load_detection_head

    detection = load_detection_head(model_dir)
    head = detection[0] if detection is not None else None
    dual = with_features(load_keras_model(model_dir), head)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in SIDE_FILES + ((DETECTION_FILE, DETECTION_CONFIG_FILE) if head is not None else ()):
        shutil.copy2(model_dir / name, out_dir / name)

    def serve(image):
        probabilities, features, *maps = dual(image, training=False)
        outputs = {"probabilities": probabilities, "features": features}
        if maps:
            outputs["detection_map"] = maps[0]
        return outputs

    if format == "saved_model":
        module = tf.Module()
        module.model = dual
        module.serve = tf.function(serve, input_signature=[
            tf.TensorSpec([None, None, None, None], tf.float32, name="image")])
        target = out_dir / "saved_model"
        tf.saved_model.save(module, str(target), signatures={"serving_default": module.serve})
        return target

    shape = image_shape or _typical_shape(read_json(model_dir / CONFIG_FILE))
    # A Keras model with a fixed input shape around the same layers: TFLite wants one shape,
    # and its Keras path freezes the weights (converting a bare concrete function left the
    # variables uninitialised and produced garbage on this TensorFlow version).
    fixed = _fixed_shape_model(load_keras_model(model_dir), shape, head)
    if format == "onnx":
        return _onnx_export(fixed, shape, out_dir / ONNX_FILE)
    converter = tf.lite.TFLiteConverter.from_keras_model(fixed)
    if int8_calibration is not None:
        import numpy as np

        calibration = [np.asarray(image, np.float32).reshape((1, *shape)) for image in int8_calibration]
        if not calibration:
            raise ValueError("int8 quantisation needs calibration images")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([image] for image in calibration)
    elif reduced in ("dynamic", "fp16"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if reduced == "fp16":
            converter.target_spec.supported_types = [tf.float16]
    elif reduced is not None:
        raise ValueError(f"reduced must be 'dynamic' or 'fp16', got {reduced!r}")
    target = out_dir / TFLITE_FILE
    target.write_bytes(converter.convert())
    return target


def _onnx_export(fixed, shape: tuple[int, ...], target: Path) -> Path:
    """``fixed`` as ONNX: input ``image`` (N, H, W, C) float32 pixels 0..255, outputs named
    ``probabilities``, ``features`` and (with a detection head) ``detection_map``."""
    import logging

    import tensorflow as tf
    import tf2onnx

    logging.getLogger("tf2onnx").setLevel(logging.ERROR)  # a line per graph rewrite otherwise
    spec = (tf.TensorSpec((None, *shape), tf.float32, name="image"),)

    @tf.function(input_signature=spec)
    def serve(image):
        probabilities, features, *maps = fixed(image, training=False)
        outputs = {"probabilities": probabilities, "features": features}
        if maps:
            outputs["detection_map"] = maps[0]
        return outputs

    tf2onnx.convert.from_function(serve, input_signature=spec, opset=ONNX_OPSET, output_path=str(target))
    return target


class _LinearResize:
    """The model's resize for one fixed input shape, as two constant matrices.

    The antialiased resize has no TFLite kernel, but for a fixed (H, W) -> (S, S) it is a
    separable linear map: out = Ry @ image @ Rx^T. The matrices are read off the model's own
    resize layer (so the numbers are its numbers) and checked on a random image.
    """

    def __init__(self, layer, height: int, width: int):
        import numpy as np

        self.rows = self._basis_response(layer, height, width, axis=0)   # (S, H)
        self.columns = self._basis_response(layer, height, width, axis=1)  # (S, W)
        probe = np.random.default_rng(0).uniform(0, 255, (1, height, width, 1)).astype("float32")
        expected = np.asarray(layer(probe))[0, :, :, 0]
        got = self.rows @ probe[0, :, :, 0] @ self.columns.T
        if float(np.max(np.abs(expected - got))) > 1e-2:
            raise ValueError("the resize layer is not separable; cannot express it for TFLite")

    @staticmethod
    def _basis_response(layer, height: int, width: int, *, axis: int, chunk: int = 32):
        import numpy as np

        count = height if axis == 0 else width
        columns = []
        for start in range(0, count, chunk):
            indices = np.arange(start, min(start + chunk, count))
            basis = np.zeros((len(indices), height, width, 1), "float32")
            # A full row (or column) of ones: the response along the other axis is then the
            # resize's weights for that row, since each output pixel's weights sum to one.
            if axis == 0:
                basis[np.arange(len(indices)), indices, :, 0] = 1.0
                columns.append(np.asarray(layer(basis))[:, :, 0, 0])
            else:
                basis[np.arange(len(indices)), :, indices, 0] = 1.0
                columns.append(np.asarray(layer(basis))[:, 0, :, 0])
        return np.concatenate(columns, axis=0).T.astype("float32")

    def __call__(self, images):
        from keras import ops

        # Only reshapes, transposes and batched matrix products: all TFLite builtins.
        _, height, width, channels = images.shape
        size = self.rows.shape[0]
        x = ops.reshape(ops.cast(images, "float32"), (-1, height, width * channels))
        x = ops.matmul(self.rows, x)                                    # (N, S, W*C)
        x = ops.transpose(ops.reshape(x, (-1, size, width, channels)), (0, 2, 1, 3))
        x = ops.matmul(self.columns, ops.reshape(x, (-1, width, size * channels)))  # (N, S, S*C)
        return ops.transpose(ops.reshape(x, (-1, size, size, channels)), (0, 2, 1, 3))


def _fixed_shape_model(model, shape: tuple[int, ...], detection_head=None):
    """(probabilities, pooled features[, detection map]) for one input shape, with a TFLite-friendly
    resize."""
    import keras

    from mlcore.model import POOLED_FEATURES

    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    resize_at = next(i for i, layer in enumerate(layers) if layer.name == "resize_to_backbone")
    # The backbone may hand several feature maps (a list) to the pooling layer: still a chain.
    resize = _LinearResize(layers[resize_at], int(shape[0]), int(shape[1]))
    image = keras.Input(shape=shape, name="image")
    x = keras.layers.Lambda(resize, name="fixed_resize")(image)
    pooled = maps = None
    # The classifier is one chain of layers (see mlcore.model.build_classifier).
    for layer in layers[resize_at + 1:]:
        if layer.name == POOLED_FEATURES:
            maps = x
        x = layer(x)
        if layer.name == POOLED_FEATURES:
            pooled = x
    outputs = [x, pooled]
    if detection_head is not None:
        outputs.append(detection_head(list(maps) if isinstance(maps, (list, tuple)) else [maps]))
    return keras.Model(image, outputs, name="steelqc_classifier_fixed")


def _typical_shape(config: dict) -> tuple[int, int, int]:
    shape = list(config.get("input", {}).get("typical_image_shape") or [])
    if len(shape) == 2:
        shape.append(1)
    if len(shape) != 3:
        size = int(config["backbone"]["input_size"])
        shape = [size, size, 3]
    return tuple(int(v) for v in shape)
