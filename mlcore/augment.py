"""Line-condition augmentation and the benchmark's corruptions (NumPy, per image).

Images are float32 in 0..255, shape (H, W) or (H, W, C). Every change keeps the whole
surface in frame: flips, quarter turns, small reflected shifts, brightness/contrast, sensor
noise, blur and uneven illumination. Nothing crops a defect out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    flip_probability: float = 0.5
    max_shift_fraction: float = 0.06
    brightness_delta: float = 25.0
    contrast_range: tuple[float, float] = (0.75, 1.3)
    noise_probability: float = 0.5
    max_noise_sigma: float = 15.0
    # Focus drift is the corruption that hurts most (fine crazing texture turns into
    # rolled-in scale), so blur is drawn often and a little beyond the benchmark's 1.2 px.
    blur_probability: float = 0.5
    max_blur_sigma: float = 2.0
    gradient_probability: float = 0.5
    max_gradient_amplitude: float = 0.45


def augment_image(image: np.ndarray, *, rng: np.random.Generator,
                  config: AugmentConfig = AugmentConfig()) -> np.ndarray:
    """One random line-condition view of ``image`` (float32, clipped to 0..255)."""
    view = np.asarray(image, dtype=np.float32)
    if rng.random() < config.flip_probability:
        view = view[:, ::-1]
    if rng.random() < config.flip_probability:
        view = view[::-1, :]
    # Odd quarter turns swap height and width; only square frames get them so that a
    # batch of equally sized images stays equally sized.
    turns = int(rng.integers(4)) if view.shape[0] == view.shape[1] else 2 * int(rng.integers(2))
    view = np.rot90(view, k=turns)
    view = shift_reflected(view, rng=rng, max_fraction=config.max_shift_fraction)
    if rng.random() < config.blur_probability:
        view = gaussian_blur(view, sigma=rng.uniform(0.4, config.max_blur_sigma))
    contrast = rng.uniform(*config.contrast_range)
    view = (view - view.mean()) * contrast + view.mean() + rng.uniform(
        -config.brightness_delta, config.brightness_delta)
    if rng.random() < config.gradient_probability:
        view = illumination_gradient(
            view, amplitude=rng.uniform(0.05, config.max_gradient_amplitude),
            angle=rng.uniform(0, 2 * np.pi))
    if rng.random() < config.noise_probability:
        view = gaussian_noise(view, sigma=rng.uniform(1.0, config.max_noise_sigma), rng=rng)
    return np.clip(view, 0, 255).astype(np.float32)


def shift_reflected(image: np.ndarray, *, rng: np.random.Generator, max_fraction: float) -> np.ndarray:
    height, width = image.shape[:2]
    dy = int(rng.integers(-int(height * max_fraction), int(height * max_fraction) + 1))
    dx = int(rng.integers(-int(width * max_fraction), int(width * max_fraction) + 1))
    if dy == 0 and dx == 0:
        return image
    pad = [(abs(dy), abs(dy)), (abs(dx), abs(dx))] + [(0, 0)] * (image.ndim - 2)
    padded = np.pad(image, pad, mode="reflect")
    top, left = abs(dy) - dy, abs(dx) - dx
    return padded[top:top + height, left:left + width]


def gaussian_blur(image: np.ndarray, *, sigma: float) -> np.ndarray:
    """Separable Gaussian blur with reflected borders."""
    radius = max(1, int(round(3 * sigma)))
    taps = np.arange(-radius, radius + 1, dtype=np.float32)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    result = np.asarray(image, dtype=np.float32)
    for axis in (0, 1):
        pad = [(0, 0)] * result.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(result, pad, mode="reflect")
        length = result.shape[axis]
        result = sum(
            weight * np.take(padded, np.arange(offset, offset + length), axis=axis)
            for offset, weight in enumerate(kernel)
        )
    return result.astype(np.float32)


def gaussian_noise(image: np.ndarray, *, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return np.asarray(image, dtype=np.float32) + rng.normal(0.0, sigma, size=image.shape).astype(np.float32)


def illumination_gradient(image: np.ndarray, *, amplitude: float, angle: float = 0.0) -> np.ndarray:
    """Multiply by a linear ramp from (1 - amplitude) to (1 + amplitude) along ``angle``.

    ``angle=0`` is dark on the left, bright on the right.
    """
    height, width = image.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    position = (xs / max(width - 1, 1) - 0.5) * np.cos(angle) + (ys / max(height - 1, 1) - 0.5) * np.sin(angle)
    span = max(abs(np.cos(angle)) + abs(np.sin(angle)), 1e-6)
    gain = 1.0 + amplitude * 2.0 * position / span
    if image.ndim == 3:
        gain = gain[..., None]
    return np.asarray(image, dtype=np.float32) * gain


# Benchmark corruptions: fixed strengths so results are comparable between runs.
CORRUPTIONS = {
    "gaussian_noise": "additive Gaussian sensor noise, sigma = 10 gray levels",
    "gaussian_blur": "Gaussian blur, sigma = 1.2 px (at 200 px)",
    "illumination_gradient": "left-to-right gain ramp 0.6 -> 1.4 (amplitude 0.4)",
}


def corrupt(image: np.ndarray, *, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Apply one named benchmark corruption; returns uint8."""
    if kind == "gaussian_noise":
        result = gaussian_noise(image, sigma=10.0, rng=rng)
    elif kind == "gaussian_blur":
        result = gaussian_blur(image, sigma=1.2)
    elif kind == "illumination_gradient":
        result = illumination_gradient(image, amplitude=0.4, angle=0.0)
    else:
        raise ValueError(f"unknown corruption {kind!r}; known: {sorted(CORRUPTIONS)}")
    return np.clip(np.rint(result), 0, 255).astype(np.uint8)
