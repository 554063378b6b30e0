"""The classifier graph and its artefact files.

One Keras model holds everything from raw pixels to class probabilities:
input adapter (any size, 1 or 3 channels) -> the backbone's normalisation -> backbone ->
global average pooling ("pooled_features") -> dropout -> dense softmax. The pooled features
are reached by layer name, so inference gets probabilities and OOD features from one pass.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras

from mlcore.artefact import CLASSES_FILE, CONFIG_FILE, METRICS_FILE, MODEL_FILE, OOD_FILE
from mlcore.layers import ChannelsToRGB, ResizeToSquare, TextureDescriptor

if TYPE_CHECKING:
    from mlcore.backbones import BuiltBackbone

IMAGE_INPUT = "image"
POOLED_FEATURES = "pooled_features"
HEAD_DROPOUT = "head_dropout"
CLASS_PROBABILITIES = "class_probabilities"


def build_classifier(*, backbone: BuiltBackbone, num_classes: int, dropout: float) -> keras.Model:
    images = keras.Input(shape=(None, None, None), dtype="float32", name=IMAGE_INPUT)
    x = ResizeToSquare(size=backbone.input_size, name="resize_to_backbone")(images)
    x = ChannelsToRGB(name="channels_to_rgb")(x)
    x = backbone.normalization(x)
    feature_maps = backbone.model(x)
    pooled = TextureDescriptor(name=POOLED_FEATURES)(feature_maps)
    x = keras.layers.Dropout(dropout, name=HEAD_DROPOUT)(pooled)
    probabilities = keras.layers.Dense(num_classes, activation="softmax", name=CLASS_PROBABILITIES)(x)
    return keras.Model(images, probabilities, name="steelqc_classifier")


def with_features(model: keras.Model, detection_head: keras.Model | None = None) -> keras.Model:
    """The same layers, returning (probabilities, pooled features) from one forward pass, and
    with ``detection_head`` also its detection map, computed from the same backbone maps."""
    outputs = [model.outputs[0], model.get_layer(POOLED_FEATURES).output]
    if detection_head is not None:
        outputs.append(detection_head(feature_maps(model)))
    return keras.Model(model.inputs[0], outputs, name="steelqc_classifier_with_features")


def feature_maps(model: keras.Model) -> list:
    """The backbone's feature maps (finest first) as tensors of ``model``'s graph."""
    maps = model.get_layer(POOLED_FEATURES).input
    return list(maps) if isinstance(maps, (list, tuple)) else [maps]


def split_at_backbone(model: keras.Model):
    """(layers before, the nested backbone, layers after) of the classifier chain, InputLayers dropped."""
    backbone = backbone_submodel(model)
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    at = layers.index(backbone)
    return layers[:at], backbone, layers[at + 1:]


def head_only(model: keras.Model) -> keras.Model:
    """Dropout + dense, shared with ``model``: trains on cached pooled features."""
    features = keras.Input(shape=(model.get_layer(POOLED_FEATURES).output.shape[-1],), name="features")
    x = model.get_layer(HEAD_DROPOUT)(features)
    return keras.Model(features, model.get_layer(CLASS_PROBABILITIES)(x), name="steelqc_head")


def backbone_submodel(model: keras.Model) -> keras.Model:
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(nested) != 1:
        raise ValueError(f"expected one nested backbone model, found {len(nested)}")
    return nested[0]


def load_keras_model(model_dir: str | Path) -> keras.Model:
    # Importing these modules registers the custom layers that model.keras refers to.
    import mlcore.backbones  # noqa: F401
    import mlcore.layers  # noqa: F401

    path = Path(model_dir) / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {MODEL_FILE} in model folder {model_dir}")
    return keras.saving.load_model(path, compile=False)


def save_artefact(*, out_dir: Path, model: keras.Model, classes: list[str], config: dict,
                  metrics: dict, ood) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save(out_dir / MODEL_FILE)
    ood.save(out_dir / OOD_FILE)
    write_json(out_dir / CLASSES_FILE, classes)
    write_json(out_dir / CONFIG_FILE, config)
    write_json(out_dir / METRICS_FILE, metrics)


def write_json(path: str | Path, payload: Any) -> None:
    Path(path).write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def read_classes(model_dir: str | Path) -> list[str]:
    classes = read_json(Path(model_dir) / CLASSES_FILE)
    if not isinstance(classes, list) or not all(isinstance(name, str) for name in classes):
        raise ValueError(f"{CLASSES_FILE} in {model_dir} must be a list of class names")
    return classes
