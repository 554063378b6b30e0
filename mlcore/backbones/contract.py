"""What every backbone builder returns, and how it says where its weights came from."""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field

import keras

from mlcore.weights.files import PretrainedWeightsUnavailable  # noqa: F401 -- raised by the builders

@dataclass(frozen=True)
class WeightSource:
    kind: str  # "imagenet" or "none"
    file: str | None = None  # file name the weights came from
    sha256: str | None = None  # sha256 of that file

    def to_dict(self) -> dict:
        return asdict(self)


NO_WEIGHTS = WeightSource(kind="none")


@dataclass
class BuiltBackbone:
    name: str
    # Input (S, S, 3) float32 already normalised; output the last conv feature map (4-D, not pooled).
    model: keras.Model
    # RGB float 0..255 -> this backbone's input range; registered-serialisable.
    normalization: keras.layers.Layer
    input_size: int
    weight_source: WeightSource
    last_conv_layer: str
    # Layer names of `model` grouped by block, bottom -> top, so a trainer can unfreeze the last k.
    blocks: list[list[str]] = field(default_factory=list)
    # Layers at several depths (strides 8..32) whose frame-averaged activations make the OOD
    # texture descriptor (mlcore.ood); below the blocks that fine-tuning unfreezes.
    texture_layers: tuple[str, ...] = ()


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
