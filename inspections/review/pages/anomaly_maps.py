"""Anomaly-map overlays computed on demand in the web process, like the heatmaps beside them.

The map is recomputed from the image instead of stored per image: one forward pass of the anomaly
model (a few tens of milliseconds on a CPU for a frame, after the model's first load), against a
PNG per scored image in storage that the retention sweep, backups and restores would all have to
carry for images nobody may ever open. Scoring the same image with the same version gives the
same map, so the version that scored the image draws it while it exists. Rendered overlays are kept
in a small LRU keyed by (image, version).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from inspections.catalog.models import InspectionImage
from inspections.registry.models import ModelVersion
from inspections.registry.services.anomaly_models import images_score
from inspections.registry.services.classifiers import image_pixels
from inspections.review.pages.heatmaps import _overlay_png

OVERLAY_CACHE_SIZE = 128
# The map's own scale (mlcore.anomaly.maps): 0 the typical good patch, 128 the threshold, 255 twice as
# far. The overlay starts at half the threshold, so the surface like good steel stays uncovered.
OVERLAY_FROM = 64

_lock = threading.Lock()
_overlays: OrderedDict[tuple, bytes] = OrderedDict()


def anomaly_map_png(*, image: InspectionImage, version: ModelVersion) -> bytes:
    """An RGBA PNG at the image's size: transparent where the surface is like good steel, yellow-green
    at the threshold, red and more opaque beyond it."""
    key = (image.pk, version.pk)
    with _lock:
        if key in _overlays:
            _overlays.move_to_end(key)
            return _overlays[key]
    [result] = images_score(version=version, images=[image_pixels(image=image)], maps=True)
    png = _overlay_png(np.clip((np.asarray(result.map, np.float32) - OVERLAY_FROM) / (255.0 - OVERLAY_FROM), 0, 1))
    with _lock:
        _overlays[key] = png
        while len(_overlays) > OVERLAY_CACHE_SIZE:
            _overlays.popitem(last=False)
    return png
