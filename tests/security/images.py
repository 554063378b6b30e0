"""Hostile and unusual image files for the input battery, built in memory."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image, PngImagePlugin


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def texture(mode: str = "L", size: tuple[int, int] = (48, 32), seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB").convert(mode)


def png(seed: int = 0, mode: str = "L", size: tuple[int, int] = (48, 32)) -> bytes:
    return encode(texture(mode, size, seed), "PNG")


def truncated(data: bytes, keep: float = 0.6) -> bytes:
    return data[: int(len(data) * keep)]


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels and carries almost no data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b""))


def png_bomb() -> bytes:
    """A real, complete PNG of 7000 x 7000 black pixels: tens of kilobytes, 49 million pixels."""
    return encode(Image.new("1", (7000, 7000)), "PNG", optimize=True)


def png_with_bad_crc() -> bytes:
    data = bytearray(png(seed=5))
    data[29] ^= 0xFF  # inside IHDR's CRC
    return bytes(data)


def png_text_bomb() -> bytes:
    """A small PNG whose compressed text chunk inflates to megabytes."""
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "A" * 8_000_000, zip=True)
    return encode(texture(seed=6), "PNG", pnginfo=info)


def apng() -> bytes:
    frames = [texture(seed=s) for s in (1, 2, 3)]
    return encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=100)


def animated_gif() -> bytes:
    frames = [texture("P", seed=s) for s in (1, 2)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def multipage_tiff() -> bytes:
    pages = [texture(seed=s) for s in (1, 2)]
    return encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])


def tiff_16_bit() -> bytes:
    values = (np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 21).astype(np.uint16)
    image = Image.fromarray(values)
    assert image.mode == "I;16"
    return encode(image, "TIFF")


def tiff_float() -> bytes:
    return encode(Image.fromarray(np.linspace(0, 1, 64 * 48, dtype=np.float32).reshape(48, 64), "F"), "TIFF")


def tiff_lzw() -> bytes:
    return encode(texture(seed=7), "TIFF", compression="tiff_lzw")


def cmyk_jpeg() -> bytes:
    return encode(texture("CMYK", seed=8), "JPEG")


def exif_rotated_jpeg() -> bytes:
    image = texture("RGB", seed=9)
    exif = image.getexif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    return encode(image, "JPEG", exif=exif.tobytes())


def polyglot_png() -> bytes:
    """A valid PNG with HTML and script appended after IEND."""
    return png(seed=10) + b"<html><script>alert(document.cookie)</script></html>"


def svg() -> bytes:
    return b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>'


def webp() -> bytes:
    return encode(texture("RGB", seed=11), "WEBP")


def zip_archive() -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.png", png(seed=12))
    return buffer.getvalue()
