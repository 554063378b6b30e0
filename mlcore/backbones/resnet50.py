"""ResNet50 feature extractor (Keras applications) with ImageNet weights from a local file."""

from __future__ import annotations

import os
from pathlib import Path

import keras

from mlcore.artefact import RESNET50
from mlcore.backbones.contract import (
    NO_WEIGHTS,
    BuiltBackbone,
    PretrainedWeightsUnavailable,
    WeightSource,
    file_sha256,
)
from mlcore.backbones.normalization import CaffeImageNetNormalization
from mlcore.weights.files import (
    RESNET50_WEIGHTS_FILE_NAME,
    RESNET50_WEIGHTS_URL,
    resnet50_default_weights_path,
    resnet50_weights_available,
    resnet50_weights_path,
)

NAME = RESNET50
WEIGHTS_FILE_NAME = RESNET50_WEIGHTS_FILE_NAME
WEIGHTS_URL = RESNET50_WEIGHTS_URL
# Last block of stages 2, 3 and 4: strides 4, 8 and 16 (256 + 512 + 1024 channels). Their
# frame-averaged activations are the classifier's features (mlcore.model); stage 5 is not built.
TEXTURE_LAYERS = ("conv2_block3_out", "conv3_block4_out", "conv4_block6_out")
LAST_CONV_LAYER = TEXTURE_LAYERS[-1]


# Where the weights file is (no Keras needed to ask): mlcore.weights.files.
default_weights_path = resnet50_default_weights_path
weights_path = resnet50_weights_path
weights_available = resnet50_weights_available


def build_resnet50(
    *,
    weights: str | None,
    weights_file: str | os.PathLike | None = None,
    input_size: int = 224,
    allow_download: bool = False,
) -> BuiltBackbone:
    input_shape = (input_size, input_size, 3)
    if weights is None:
        model = keras.applications.ResNet50(include_top=False, weights=None, input_shape=input_shape)
        source = NO_WEIGHTS
    else:
        path = _local_weights(weights_file=weights_file, allow_download=allow_download)
        model = keras.applications.ResNet50(
            include_top=False, weights=str(path) if path else "imagenet", input_shape=input_shape
        )
        # A permitted download lands in the default place; hash what was actually loaded.
        path = path or default_weights_path()
        source = WeightSource(kind="imagenet", file=path.name, sha256=file_sha256(path))
    model = keras.Model(model.input, [model.get_layer(name).output for name in TEXTURE_LAYERS], name=NAME)
    return BuiltBackbone(
        name=NAME,
        model=model,
        normalization=CaffeImageNetNormalization(name="resnet50_normalization"),
        input_size=input_size,
        weight_source=source,
        last_conv_layer=LAST_CONV_LAYER,
        blocks=_blocks(model),
        texture_layers=TEXTURE_LAYERS,
    )


def _local_weights(*, weights_file, allow_download: bool) -> Path | None:
    """The local weights file, or None when Keras may download it; never silently random."""
    path = weights_path(weights_file)
    if path.is_file():
        return path
    if allow_download and not weights_file:
        return None
    raise PretrainedWeightsUnavailable(
        f"ResNet50 ImageNet weights not found: put {WEIGHTS_FILE_NAME} (from {WEIGHTS_URL}) at {path}"
        + ("" if weights_file else ", or point STEELQC_RESNET50_WEIGHTS at a copy elsewhere")
        + "; or choose the efficientnet_lite0 backbone, whose weights ship with its package."
    )


def _blocks(model: keras.Model) -> list[list[str]]:
    """Stem (conv1/pool1), then one group per residual block (conv2_block1 ... conv5_block3)."""
    groups: dict[str, list[str]] = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        prefix = layer.name.split("_")[0]
        key = "stem" if prefix in ("conv1", "pool1") else "_".join(layer.name.split("_")[:2])
        groups.setdefault(key, []).append(layer.name)
    return list(groups.values())
