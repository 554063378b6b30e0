"""The loaded classifier of a model version, kept once per process, and the pixels it reads.

The inference worker, the web process's heatmaps, the promotion gate and version comparisons
use these, so a model directory is loaded and an image decoded the same way everywhere.
TensorFlow is imported only when a classifier is first asked for.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from inspections.catalog.models import InspectionImage
from inspections.registry.models import ModelVersion
from inspections.registry.services.artefact_storage import artefact_local_dir

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_loaded: tuple[int, object] | None = None  # (model version id, mlcore Classifier)


def classifier_for_version(*, version: ModelVersion):
    """The loaded ``mlcore.inference.Classifier`` of ``version``; the previous one is dropped
    when another version is asked for (one model in memory per process)."""
    global _loaded
    with _lock:
        if _loaded is None or _loaded[0] != version.pk:
            _loaded = (version.pk, _load(version))
        return _loaded[1]


def _load(version: ModelVersion):
    from mlcore.inference import Classifier

    started = time.perf_counter()
    classifier = Classifier.load(artefact_local_dir(prefix=version.artifact_path))
    logger.info("loaded model %s in %.1fs", version.name, time.perf_counter() - started)
    return classifier


@dataclass(frozen=True)
class VersionPredictions:
    results: list  # mlcore.inference.PredictionResult, one per file, in order
    detects_boxes: bool  # the version has a detection head (else every result's boxes are empty)


def version_predict_files(*, version: ModelVersion, paths: list[Path]) -> VersionPredictions:
    """``version``'s predictions of the image files at ``paths``.

    Uses the process's classifier when that is ``version``; another version is loaded for this
    call only, so a gate or a comparison in a worker does not evict the version it serves (and
    costs it a reload at its next batch)."""
    with _lock:
        cached = _loaded[1] if _loaded is not None and _loaded[0] == version.pk else None
    classifier = cached if cached is not None else _load(version)
    return VersionPredictions(results=classifier.predict_files(paths),
                              detects_boxes=classifier.detection_head is not None)


def pixels_from_bytes(content: bytes) -> np.ndarray:
    """An image file's bytes as the uint8 array the model reads (EXIF orientation applied)."""
    from mlcore.io import image_to_array

    with Image.open(io.BytesIO(content)) as decoded:
        decoded.load()
        return image_to_array(ImageOps.exif_transpose(decoded))


def image_pixels(*, image: InspectionImage) -> np.ndarray:
    """The stored image as the uint8 array the model reads."""
    with image.file.open("rb") as handle:
        return pixels_from_bytes(handle.read())
