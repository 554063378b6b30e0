"""The loaded classifier of a model version, kept once per process, and the pixels it reads.

Both the inference worker and the web process's heatmaps use these, so a model directory is
loaded and an image decoded the same way everywhere. TensorFlow is imported only when a
classifier is first asked for.
"""

from __future__ import annotations

import io
import logging
import threading
import time

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
            from mlcore.inference import Classifier

            started = time.perf_counter()
            _loaded = (version.pk, Classifier.load(artefact_local_dir(prefix=version.artifact_path)))
            logger.info("loaded model %s in %.1fs", version.name, time.perf_counter() - started)
        return _loaded[1]


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
