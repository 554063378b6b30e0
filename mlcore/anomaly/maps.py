"""Anomaly maps: patch distances -> a smooth map at the image's own size -> an 8-bit picture.

The patch grid (one distance per feature cell, stride 8 of the network input) is enlarged to the
network input's size, smoothed with a Gaussian (``sigma`` input pixels: a defect's score spreads
over the pixels its patch covers instead of showing the grid), then resized to the image's own
width and height. For the picture the scale is fixed per model, so maps of different images
compare: black is the typical patch of a held-out good image, mid-grey (128) the image threshold,
white twice as far beyond it. Pure NumPy, SciPy and Pillow.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

DEFAULT_SIGMA = 4.0


def _resized(values: np.ndarray, *, height: int, width: int) -> np.ndarray:
    if values.shape == (height, width):
        return values.astype(np.float32, copy=False)
    picture = Image.fromarray(np.ascontiguousarray(values, dtype=np.float32), mode="F")
    return np.asarray(picture.resize((width, height), Image.BILINEAR), dtype=np.float32)


def smooth_map(patch_scores: np.ndarray, *, input_shape: tuple[int, int], sigma: float = DEFAULT_SIGMA) -> np.ndarray:
    """(h, w) patch distances -> the smoothed map at the network input's size."""
    smooth = _resized(np.asarray(patch_scores, np.float32), height=input_shape[0], width=input_shape[1])
    if sigma > 0:
        smooth = ndimage.gaussian_filter(smooth, sigma=sigma, mode="nearest")
    return smooth


def at_image_size(smooth: np.ndarray, *, image_shape: tuple[int, int]) -> np.ndarray:
    return _resized(smooth, height=int(image_shape[0]), width=int(image_shape[1]))


def anomaly_map(patch_scores: np.ndarray, *, input_shape: tuple[int, int], image_shape: tuple[int, int],
                sigma: float = DEFAULT_SIGMA) -> np.ndarray:
    """(H, W) float32 map at ``image_shape`` from an (h, w) grid of patch distances."""
    return at_image_size(smooth_map(patch_scores, input_shape=input_shape, sigma=sigma), image_shape=image_shape)


def map_to_uint8(values: np.ndarray, *, low: float, threshold: float) -> np.ndarray:
    """Brighter = less like good: ``low`` -> 0, ``threshold`` -> 128, twice as far -> 255."""
    span = max(2.0 * (threshold - low), 1e-12)
    scaled = (np.asarray(values, np.float32) - low) / span
    return np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.uint8)


def png_bytes(picture: np.ndarray) -> bytes:
    """An (H, W) uint8 map as an 8-bit grayscale PNG."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(picture, np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def write_png(path: str | Path, picture: np.ndarray) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(picture))
    return path
