"""Feature-extractor backbones with ImageNet weights that never need the network by default.

``build_backbone`` returns the feature model (input already normalised, output the last
conv feature map) together with the normalisation layer a full model should put in front
of it, where its weights came from, and its layers grouped by block for fine-tuning.
"""

from __future__ import annotations

import os

from mlcore.artefact import AUTO_BACKBONE, BACKBONES
from mlcore.backbones import efficientnet_lite, resnet50
from mlcore.backbones.contract import BuiltBackbone, PretrainedWeightsUnavailable, WeightSource
from mlcore.backbones.normalization import CaffeImageNetNormalization, EfficientNetLiteNormalization

AUTO = AUTO_BACKBONE

__all__ = [
    "BACKBONES",
    "BuiltBackbone",
    "CaffeImageNetNormalization",
    "EfficientNetLiteNormalization",
    "PretrainedWeightsUnavailable",
    "WeightSource",
    "build_backbone",
    "resolve_backbone_name",
]


def resolve_backbone_name(name: str = AUTO, *, resnet50_weights: str | os.PathLike | None = None) -> str:
    """``"auto"`` means resnet50 when its ImageNet weights file is on disk, else efficientnet_lite0.

    Only looks at the local file system; never touches the network.
    """
    if name == AUTO:
        return resnet50.NAME if resnet50.weights_available(explicit=resnet50_weights) else efficientnet_lite.NAME
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join((AUTO,) + BACKBONES)}")
    return name


def build_backbone(
    name: str,
    *,
    weights: str | None = "imagenet",
    resnet50_weights: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    input_size: int = 224,
    allow_download: bool = False,
) -> BuiltBackbone:
    """Build a backbone; ``weights=None`` is random init, ``"imagenet"`` fails loudly if unavailable.

    ``allow_download`` lets Keras fetch ResNet50 weights on a connected machine; off by default
    so that a missing file is an explicit ``PretrainedWeightsUnavailable``, never a hang.
    """
    if weights not in ("imagenet", None):
        raise ValueError(f"weights must be 'imagenet' or None, not {weights!r}")
    resolved = resolve_backbone_name(name, resnet50_weights=resnet50_weights)
    if resolved == resnet50.NAME:
        return resnet50.build_resnet50(
            weights=weights, weights_file=resnet50_weights, input_size=input_size, allow_download=allow_download
        )
    return efficientnet_lite.build_efficientnet_lite0(weights=weights, cache_dir=cache_dir, input_size=input_size)
