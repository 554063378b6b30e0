"""Line-condition augmentation and the benchmark's corruptions (NumPy + Pillow, per image).

Images are float32 in 0..255, shape (H, W) or (H, W, C). Every change keeps the whole
surface in frame: flips, quarter turns, small reflected shifts, brightness/contrast/gamma,
sensor noise, focus blur, motion blur from a moving strip or a vibrating camera, row jitter
of a line-scan camera, lost resolution, JPEG compression on the camera link and uneven
illumination. Nothing crops a defect out.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

@dataclass(frozen=True)
class AugmentConfig:
    flip_probability: float = 0.5
    max_shift_fraction: float = 0.06
    brightness_delta: float = 25.0
    contrast_range: tuple[float, float] = (0.75, 1.3)
    gamma_range: tuple[float, float] = (0.75, 1.35)
    noise_probability: float = 0.5
    max_noise_sigma: float = 24.0
    # Focus drift turns fine crazing texture into something like rolled-in scale, so blur
    # is drawn often and a little beyond the strongest benchmark strength.
    blur_probability: float = 0.35
    max_blur_sigma: float = 2.4
    # A moving strip or a shaking camera smears along one direction.
    motion_blur_probability: float = 0.3
    max_motion_length: int = 17
    # A line-scan camera on a vibrating strip displaces whole rows.
    row_jitter_probability: float = 0.15
    max_row_jitter_px: float = 4.0
    # Lost resolution: a coarser camera or a frame scaled down and back up.
    downscale_probability: float = 0.2
    min_downscale: float = 0.4
    # Lossy compression on the camera link.
    jpeg_probability: float = 0.3
    jpeg_quality_range: tuple[int, int] = (8, 60)
    gradient_probability: float = 0.5
    # 0.55 is a 3.4 : 1 gain ratio across the frame.
    max_gradient_amplitude: float = 0.55


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
    view = _optics(view, rng=rng, config=config)
    contrast = rng.uniform(*config.contrast_range)
    view = (view - view.mean()) * contrast + view.mean() + rng.uniform(
        -config.brightness_delta, config.brightness_delta)
    view = gamma(view, gamma=float(np.exp(rng.uniform(*np.log(config.gamma_range)))))
    if rng.random() < config.gradient_probability:
        view = illumination_gradient(
            view, amplitude=rng.uniform(0.05, config.max_gradient_amplitude),
            angle=rng.uniform(0, 2 * np.pi))
    if rng.random() < config.noise_probability:
        view = gaussian_noise(view, sigma=rng.uniform(1.0, config.max_noise_sigma), rng=rng)
    if rng.random() < config.jpeg_probability:
        view = jpeg_compress(view, quality=int(rng.integers(*config.jpeg_quality_range, endpoint=True)))
    return np.clip(view, 0, 255).astype(np.float32)


def _optics(view: np.ndarray, *, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """What the lens, the camera's motion and its resolution do, before the sensor adds noise."""
    if rng.random() < config.blur_probability:
        view = gaussian_blur(view, sigma=rng.uniform(0.4, config.max_blur_sigma))
    if rng.random() < config.motion_blur_probability:
        view = motion_blur(view, length=int(rng.integers(3, config.max_motion_length, endpoint=True)),
                           axis=int(rng.integers(2)))
    if rng.random() < config.row_jitter_probability:
        view = row_jitter(view, amplitude=rng.uniform(1.0, config.max_row_jitter_px), rng=rng)
    if rng.random() < config.downscale_probability:
        view = downscale(view, factor=rng.uniform(config.min_downscale, 0.9))
    return view


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


def motion_blur(image: np.ndarray, *, length: int, axis: int = 1) -> np.ndarray:
    """Average over ``length`` pixels along ``axis`` (1: the strip moves left-right)."""
    length = max(int(length), 1)
    if length == 1:
        return np.asarray(image, dtype=np.float32)
    before, after = (length - 1) // 2, length // 2
    pad = [(0, 0)] * np.ndim(image)
    pad[axis] = (before, after)
    padded = np.pad(np.asarray(image, dtype=np.float32), pad, mode="reflect")
    summed = np.cumsum(padded, axis=axis, dtype=np.float64)
    zero = np.zeros_like(np.take(summed, [0], axis=axis))
    summed = np.concatenate([zero, summed], axis=axis)
    size = np.shape(image)[axis]
    window = np.take(summed, np.arange(length, length + size), axis=axis) - np.take(summed, np.arange(size), axis=axis)
    return (window / length).astype(np.float32)


def row_jitter(image: np.ndarray, *, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """Shift each row sideways by a smooth random offset (line-scan camera, vibrating strip)."""
    height, width = np.shape(image)[:2]
    period = rng.uniform(8.0, 40.0)
    offsets = amplitude * np.sin(2 * np.pi * np.arange(height) / period + rng.uniform(0, 2 * np.pi))
    columns = np.arange(width, dtype=np.float32)
    result = np.empty_like(np.asarray(image, dtype=np.float32))
    for row, offset in enumerate(offsets):
        source = np.clip(columns - offset, 0, width - 1)
        left = np.floor(source).astype(int)
        right = np.minimum(left + 1, width - 1)
        weight = (source - left)[..., None] if np.ndim(image) == 3 else source - left
        line = np.asarray(image[row], dtype=np.float32)
        result[row] = line[left] * (1 - weight) + line[right] * weight
    return result


def downscale(image: np.ndarray, *, factor: float) -> np.ndarray:
    """Lose resolution: shrink by ``factor`` and enlarge back to the same size."""
    from PIL import Image

    height, width = np.shape(image)[:2]
    small = (max(1, round(width * factor)), max(1, round(height * factor)))
    channels = [np.asarray(image, dtype=np.float32)] if np.ndim(image) == 2 else \
        [np.asarray(image, dtype=np.float32)[..., c] for c in range(np.shape(image)[2])]
    planes = []
    for plane in channels:
        picture = Image.fromarray(plane, mode="F")
        planes.append(np.asarray(picture.resize(small, Image.BILINEAR).resize((width, height), Image.BILINEAR)))
    return planes[0] if np.ndim(image) == 2 else np.stack(planes, axis=-1)


def jpeg_compress(image: np.ndarray, *, quality: int) -> np.ndarray:
    """Encode and decode as JPEG at ``quality`` (1..95), as a compressed camera link does."""
    from PIL import Image

    pixels = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded, dtype=np.float32)


def gamma(image: np.ndarray, *, gamma: float) -> np.ndarray:
    """Change the camera's response curve: 255 * (x / 255) ** gamma."""
    return 255.0 * (np.clip(np.asarray(image, dtype=np.float32), 0, 255) / 255.0) ** gamma


def column_gain(image: np.ndarray, *, spread: float, rng: np.random.Generator) -> np.ndarray:
    """Fixed-pattern gain per column, as an uncalibrated line-scan sensor gives (benchmark only)."""
    width = np.shape(image)[1]
    gain = 1.0 + spread * rng.uniform(-1.0, 1.0, width).astype(np.float32)
    shape = (1, width, 1) if np.ndim(image) == 3 else (1, width)
    return np.asarray(image, dtype=np.float32) * gain.reshape(shape)


def salt_and_pepper(image: np.ndarray, *, share: float, rng: np.random.Generator) -> np.ndarray:
    """Dead and hot pixels (benchmark only)."""
    result = np.asarray(image, dtype=np.float32).copy()
    mask = rng.random(np.shape(image)[:2])
    result[mask < share / 2] = 0.0
    result[mask > 1 - share / 2] = 255.0
    return result


@dataclass(frozen=True)
class Corruption:
    description: str
    apply: Callable[[np.ndarray, np.random.Generator], np.ndarray]
    # Whether the training augmentation draws this family (at any strength): the others
    # test degradations the model never saw.
    in_training: bool = True


# Benchmark corruptions: fixed strengths so results are comparable between runs.
CORRUPTION_TABLE: dict[str, Corruption] = {
    "gaussian_noise": Corruption("additive Gaussian sensor noise, sigma = 10 grey levels",
                                 lambda x, rng: gaussian_noise(x, sigma=10.0, rng=rng)),
    "gaussian_noise_20": Corruption("additive Gaussian sensor noise, sigma = 20 grey levels",
                                    lambda x, rng: gaussian_noise(x, sigma=20.0, rng=rng)),
    "gaussian_blur": Corruption("Gaussian blur, sigma = 1.2 px (at 200 px)",
                                lambda x, rng: gaussian_blur(x, sigma=1.2)),
    "gaussian_blur_2": Corruption("Gaussian blur, sigma = 2 px (focus drift)",
                                  lambda x, rng: gaussian_blur(x, sigma=2.0)),
    "illumination_gradient": Corruption("left-to-right gain ramp 0.6 -> 1.4 (amplitude 0.4)",
                                        lambda x, rng: illumination_gradient(x, amplitude=0.4)),
    "illumination_3to1": Corruption("gain ramp 0.5 -> 1.5 across the frame (3 : 1)",
                                    lambda x, rng: illumination_gradient(x, amplitude=0.5, angle=np.pi / 4)),
    "motion_blur": Corruption("strip moving along the frame: 11 px linear motion blur",
                              lambda x, rng: motion_blur(x, length=11, axis=1)),
    "camera_shake": Corruption("vibrating camera: 7 px motion blur across the strip and 3 px row jitter",
                               lambda x, rng: row_jitter(motion_blur(x, length=7, axis=0), amplitude=3.0, rng=rng)),
    "jpeg_q15": Corruption("camera link compression: JPEG quality 15", lambda x, rng: jpeg_compress(x, quality=15)),
    "jpeg_q5": Corruption("hard compression: JPEG quality 5", lambda x, rng: jpeg_compress(x, quality=5)),
    "low_resolution": Corruption("half the resolution (shrunk to 50 % and enlarged back)",
                                 lambda x, rng: downscale(x, factor=0.5)),
    "column_gain": Corruption("uncalibrated line-scan sensor: +-15 % gain per column (never trained on)",
                              lambda x, rng: column_gain(x, spread=0.15, rng=rng), in_training=False),
    "dead_pixels": Corruption("1 % dead or hot pixels (never trained on)",
                              lambda x, rng: salt_and_pepper(x, share=0.01, rng=rng), in_training=False),
}
CORRUPTIONS = {name: entry.description for name, entry in CORRUPTION_TABLE.items()}


def corrupt(image: np.ndarray, *, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Apply one named benchmark corruption; returns uint8."""
    if kind not in CORRUPTION_TABLE:
        raise ValueError(f"unknown corruption {kind!r}; known: {sorted(CORRUPTION_TABLE)}")
    result = CORRUPTION_TABLE[kind].apply(np.asarray(image, dtype=np.float32), rng)
    return np.clip(np.rint(result), 0, 255).astype(np.uint8)
