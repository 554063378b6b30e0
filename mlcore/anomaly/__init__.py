"""Anomaly models: learn what good steel looks like from defect-free images alone.

A PatchCore-style patch memory: mid-level features of the frozen ImageNet backbone, one vector
per small patch of the image (``features``), a greedy coreset of the good images' patches
(``coreset``), the distance of each patch of a new image to its nearest good patch (``index``,
faiss), an image score from those distances and a map of them at the image's size (``maps``),
and a threshold calibrated on held-out good images to a stated false-alarm rate
(``calibration``).

The API the platform calls::

    result = train_anomaly_model(AnomalyConfig(), good_paths_or_arrays, out_dir=folder,
                                 progress=callback, should_cancel=check)
    model = AnomalyModel.load(folder)          # once per process
    for answer in model.score(uint8_images, maps=True):
        answer.anomaly_score, answer.anomalous, answer.png()

Importing this package is cheap; TensorFlow loads when a model is trained or loaded.
"""

from __future__ import annotations

from mlcore.anomaly.calibration import GoodSetTooSmall, min_good_images
from mlcore.anomaly.config import AnomalyConfig

__all__ = ["AnomalyConfig", "AnomalyModel", "AnomalyModelError", "AnomalyResult", "AnomalyTrainResult",
           "GoodSetTooSmall", "find_images", "min_good_images", "read_anomaly_config", "train_anomaly_model"]


def __getattr__(name: str):
    # The model and training modules import NumPy-heavy helpers (and TensorFlow when used); load
    # them on first use so `import mlcore.anomaly` stays light for the command line's checks.
    if name in ("AnomalyModel", "AnomalyModelError", "AnomalyResult", "read_anomaly_config"):
        from mlcore.anomaly import model

        return getattr(model, name)
    if name in ("AnomalyTrainResult", "find_images", "train_anomaly_model"):
        from mlcore.anomaly import training

        return getattr(training, name)
    raise AttributeError(f"module 'mlcore.anomaly' has no attribute {name!r}")
