"""Grad-CAM overlays computed lazily in the web process.

The active model version's Classifier is loaded on the first heatmap request and kept (one
per process, swapped when another version becomes active); rendered overlays are kept in a
small LRU keyed by (image, model version, class). TensorFlow is imported only when a heatmap
is asked for, so pages that never show one never pay for it.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict

import numpy as np
from PIL import Image, ImageOps

from inspections.models import InspectionImage, ModelVersion
from inspections.services.artefacts import artefact_local_dir

OVERLAY_CACHE_SIZE = 128
OVERLAY_MAX_ALPHA = 0.6

_lock = threading.Lock()
_classifier: tuple[int, object] | None = None  # (model version id, mlcore Classifier)
_overlays: OrderedDict[tuple, bytes] = OrderedDict()


def classifier_for(version: ModelVersion):
    """The loaded Classifier of ``version``, loading it (and dropping the previous one) when needed."""
    global _classifier
    with _lock:
        if _classifier is None or _classifier[0] != version.pk:
            from mlcore.inference import Classifier

            _classifier = (version.pk, Classifier.load(artefact_local_dir(prefix=version.artifact_path)))
            _overlays.clear()
        return _classifier[1]


def heatmap_png(*, image: InspectionImage, version: ModelVersion, class_name: str | None = None) -> bytes:
    """An RGBA PNG at the image's size: warm colours where the class evidence is, transparent elsewhere."""
    key = (image.pk, version.pk, class_name)
    with _lock:
        if key in _overlays:
            _overlays.move_to_end(key)
            return _overlays[key]
    from mlcore.explain import gradcam

    classifier = classifier_for(version)
    class_index = classifier.classes.index(class_name) if class_name in classifier.classes else None
    with _lock:  # one forward/backward pass at a time: TensorFlow already uses every core
        heat = gradcam(classifier, _pixels(image), class_index=class_index)
    png = _overlay_png(heat)
    with _lock:
        _overlays[key] = png
        while len(_overlays) > OVERLAY_CACHE_SIZE:
            _overlays.popitem(last=False)
    return png


def _pixels(image: InspectionImage) -> np.ndarray:
    from mlcore.io import image_to_array

    with image.file.open("rb") as handle, Image.open(io.BytesIO(handle.read())) as decoded:
        decoded.load()
        return image_to_array(ImageOps.exif_transpose(decoded))


def _overlay_png(heat: np.ndarray) -> bytes:
    """Blue (cool) -> yellow -> red (hot), alpha growing with the heat."""
    heat = np.clip(np.nan_to_num(heat.astype(np.float32)), 0.0, 1.0)
    red = np.clip(2.0 * heat, 0, 1)
    green = np.clip(2.0 - 2.0 * heat, 0, 1) * np.clip(2.0 * heat, 0, 1)
    blue = np.clip(1.0 - 2.0 * heat, 0, 1)
    alpha = OVERLAY_MAX_ALPHA * np.sqrt(heat)
    rgba = (np.stack([red, green, blue, alpha], axis=-1) * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
