"""Grad-CAM overlays computed lazily in the web process.

The classifier comes from ``services.classifiers`` (one per process, swapped when another
version becomes active, decoded the way the inference worker decodes); rendered overlays are
kept in a small LRU keyed by (image, model version, class). TensorFlow is imported only when a
heatmap is asked for, so pages that never show one never pay for it.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict

import numpy as np
from PIL import Image

from inspections.catalog.models import InspectionImage
from inspections.registry.models import ModelVersion
from inspections.registry.services.classifiers import classifier_for_version, image_pixels

OVERLAY_CACHE_SIZE = 128
OVERLAY_MAX_ALPHA = 0.6

_lock = threading.Lock()
_overlays: OrderedDict[tuple, bytes] = OrderedDict()


def heatmap_png(*, image: InspectionImage, version: ModelVersion, class_name: str | None = None) -> bytes:
    """An RGBA PNG at the image's size: warm colours where the class evidence is, transparent elsewhere."""
    key = (image.pk, version.pk, class_name)
    with _lock:
        if key in _overlays:
            _overlays.move_to_end(key)
            return _overlays[key]
    from mlcore.explain import gradcam

    classifier = classifier_for_version(version=version)
    class_index = classifier.classes.index(class_name) if class_name in classifier.classes else None
    pixels = image_pixels(image=image)
    with _lock:  # one forward/backward pass at a time: TensorFlow already uses every core
        heat = gradcam(classifier, pixels, class_index=class_index)
    png = _overlay_png(heat)
    with _lock:
        _overlays[key] = png
        while len(_overlays) > OVERLAY_CACHE_SIZE:
            _overlays.popitem(last=False)
    return png


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
