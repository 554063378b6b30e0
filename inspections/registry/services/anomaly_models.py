"""The loaded anomaly model of a version, kept once per process, beside the classifier
(``services/classifiers.py``): the inference and line workers score every image with it, the
anomaly gate scores held-out images, the web process draws an image's anomaly map.

TensorFlow is imported only when an anomaly model is first asked for. Scoring holds a lock: one
forward pass at a time per process (TensorFlow already uses every core).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np

from inspections.registry.models import ModelVersion, ModelVersionKind
from inspections.registry.services.artefact_storage import artefact_local_dir

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_loaded: tuple[int, object] | None = None  # (model version id, mlcore.anomaly.AnomalyModel)


def _load(version: ModelVersion):
    from mlcore.anomaly import AnomalyModel

    if version.kind != ModelVersionKind.ANOMALY:
        raise ValueError(f"{version.name} is a {version.kind}, not an anomaly model")
    started = time.perf_counter()
    model = AnomalyModel.load(artefact_local_dir(prefix=version.artifact_path))
    logger.info("loaded anomaly model %s in %.1fs", version.name, time.perf_counter() - started)
    return model


def anomaly_model_for_version(*, version: ModelVersion):
    """The loaded ``mlcore.anomaly.AnomalyModel`` of ``version``; the previous one is dropped when
    another version is asked for (one anomaly model in memory per process)."""
    global _loaded
    with _lock:
        if _loaded is None or _loaded[0] != version.pk:
            _loaded = (version.pk, _load(version))
        return _loaded[1]


def images_score(*, version: ModelVersion, images: list[np.ndarray], maps: bool = False) -> list:
    """``version``'s ``AnomalyResult`` per uint8 image, in order (``maps``: with each map)."""
    model = anomaly_model_for_version(version=version)
    with _lock:
        return model.score(images, maps=maps)


def version_score_files(*, version: ModelVersion, paths: list[Path]) -> list[float]:
    """``version``'s ``anomaly_score`` of each image file, in order. Uses the process's model when
    that is ``version``; another version is loaded for this call only, so the gate in a worker does
    not evict the version it serves."""
    with _lock:
        cached = _loaded[1] if _loaded is not None and _loaded[0] == version.pk else None
    model = cached if cached is not None else _load(version)
    with _lock:
        results = model.score_files(paths)
    scores = []
    for path, result in zip(paths, results):
        if isinstance(result, Exception):
            raise ValueError(f"{path} could not be scored: {result}")
        scores.append(float(result.anomaly_score))
    return scores
