"""Reading images and folder-per-class datasets from disk.

Everything here is light (NumPy + Pillow): no TensorFlow, so the CLI can check its
arguments and report a bad folder before paying for the TensorFlow import.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = frozenset({".bmp", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp"})
SPLIT_NAMES = ("train", "val", "test")


class ImageReadError(ValueError):
    """A file that should be an image could not be decoded."""


class DatasetError(ValueError):
    """A dataset folder is missing, empty or laid out wrongly."""


class ClassMismatchError(ValueError):
    """Images carry labels the model was not trained on."""


@dataclass(frozen=True)
class Sample:
    """One labelled image file and the split it belongs to."""

    path: str
    label: str
    split: str
    # Defect boxes as (label, x0, y0, x1, y1) fractions of width and height, top-left origin;
    # None: not known (the frame was never boxed); empty: known to have no defect box.
    boxes: tuple[tuple[str, float, float, float, float], ...] | None = None

    def __post_init__(self) -> None:
        if self.split not in SPLIT_NAMES:
            raise ValueError(f"split must be one of {SPLIT_NAMES}, got {self.split!r}")


@dataclass(frozen=True)
class LabelledFile:
    path: str
    label: str


def load_image(path: str | Path) -> np.ndarray:
    """Decode an image file to uint8: (H, W) for grayscale, (H, W, 3) for colour."""
    try:
        with Image.open(path) as image:
            image.load()
            return image_to_array(image)
    except FileNotFoundError:
        raise ImageReadError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageReadError(f"cannot read image {path}: {exc}") from None


def image_to_array(image: Image.Image) -> np.ndarray:
    # 16-bit and float grayscale frames are rescaled rather than clipped so that a
    # high-bit-depth camera still lands in the 0..255 range the model was trained on.
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        high = float(values.max()) or 1.0
        return np.clip(values / high * 255.0, 0, 255).astype(np.uint8)
    if image.mode in ("L", "1", "LA"):
        return np.asarray(image.convert("L"), dtype=np.uint8)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def as_image_array(image: np.ndarray) -> np.ndarray:
    """Check an in-memory image and return it as uint8 (H, W) or (H, W, 3)."""
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 3 and array.shape[-1] == 4:
        array = array[..., :3]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] != 3):
        raise ImageReadError(f"expected an (H, W) or (H, W, 3) image, got shape {array.shape}")
    if min(array.shape[:2]) < 1:
        raise ImageReadError(f"empty image of shape {array.shape}")
    if array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    return array


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def scan_class_folders(root: str | Path) -> list[LabelledFile]:
    """List the images of a folder-per-class dataset (sub-folder name = label)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    files = [
        LabelledFile(path=str(path), label=class_dir.name)
        for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        for path in sorted(class_dir.iterdir())
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not files:
        raise DatasetError(f"no images found in class sub-folders of {root}")
    return files


def batched(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
