"""Copies of a model version for edge devices: TensorFlow SavedModel or TFLite.

Both keep the in-model preprocessing and return class probabilities and pooled features,
so a device can apply the same review rule (OOD statistics ride along in ``ood.npz``).
The SavedModel takes any image size and 1 or 3 channels. TFLite wants one fixed input
shape: the most common training image shape recorded in config.json (e.g. 200x200x1),
with a free batch dimension.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mlcore.model import CLASSES_FILE, CONFIG_FILE, OOD_FILE, load_keras_model, read_json, with_features

FORMATS = ("saved_model", "tflite")
TFLITE_FILE = "model.tflite"
SIDE_FILES = (CLASSES_FILE, CONFIG_FILE, OOD_FILE)


def export_model(*, model_dir: str | Path, out_dir: str | Path, format: str = "saved_model",
                 image_shape: tuple[int, ...] | None = None) -> Path:
    """Write the export under ``out_dir`` and return the path of the model it wrote."""
    import keras
    import tensorflow as tf

    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    dual = with_features(load_keras_model(model_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in SIDE_FILES:
        shutil.copy2(model_dir / name, out_dir / name)

    def serve(image):
        probabilities, features = dual(image, training=False)
        return {"probabilities": probabilities, "features": features}

    if format == "saved_model":
        module = tf.Module()
        module.model = dual
        module.serve = tf.function(serve, input_signature=[
            tf.TensorSpec([None, None, None, None], tf.float32, name="image")])
        target = out_dir / "saved_model"
        tf.saved_model.save(module, str(target), signatures={"serving_default": module.serve})
        return target

    shape = image_shape or _typical_shape(read_json(model_dir / CONFIG_FILE))
    resize = dual.get_layer("resize_to_backbone")
    upscaling = min(shape[:2]) <= resize.size
    # The antialiased resize is not a TFLite builtin. When the fixed input only grows, plain
    # bilinear gives the same pixels, so the model stays builtin-only; shrinking keeps
    # antialiasing and needs the Flex (select TF ops) delegate on the device.
    resize.antialias = not upscaling
    # A Keras model with a fixed input shape around the same layers: TFLite wants one shape,
    # and its Keras path freezes the weights (converting a bare concrete function left the
    # variables uninitialised and produced garbage on this TensorFlow version).
    fixed_input = keras.Input(shape=shape, name="image")
    fixed = keras.Model(fixed_input, dual(fixed_input), name="steelqc_classifier_fixed")
    converter = tf.lite.TFLiteConverter.from_keras_model(fixed)
    if not upscaling:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    target = out_dir / TFLITE_FILE
    target.write_bytes(converter.convert())
    return target


def _typical_shape(config: dict) -> tuple[int, int, int]:
    shape = list(config.get("input", {}).get("typical_image_shape") or [])
    if len(shape) == 2:
        shape.append(1)
    if len(shape) != 3:
        size = int(config["backbone"]["input_size"])
        shape = [size, size, 3]
    return tuple(int(v) for v in shape)
