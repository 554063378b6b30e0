"""The one upload validator: every way an image arrives (``images/``, the upload pages, a zip
archive, ``classify/``, a dataset import) is checked here before anything is stored -- bounded
size, really decodes, one frame, bounded pixels, an accepted format -- and its source and
external id against the column lengths."""

from __future__ import annotations

import hashlib
import io
import logging
import warnings
from dataclasses import dataclass

from django.conf import settings
from PIL import Image, UnidentifiedImageError

from inspections.catalog.limits import EXTERNAL_ID_MAX_LENGTH, SOURCE_MAX_LENGTH
from inspections.errors import ApplicationError, TooLarge

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AcceptedFormat:
    stored_extension: str             # the extension of the stored copy
    file_extensions: tuple[str, ...]  # what browsers' file choosers offer
    mime_type: str


# The one list of accepted image formats (Pillow's format name -> facts); the upload pages'
# file choosers and their help text are built from it.
ACCEPTED_FORMATS = {
    "BMP": AcceptedFormat("bmp", (".bmp",), "image/bmp"),
    "PNG": AcceptedFormat("png", (".png",), "image/png"),
    "JPEG": AcceptedFormat("jpg", (".jpg", ".jpeg"), "image/jpeg"),
    "TIFF": AcceptedFormat("tif", (".tif", ".tiff"), "image/tiff"),
}
ACCEPTED_FORMAT_NAMES = ", ".join(list(ACCEPTED_FORMATS)[:-1]) + " or " + list(ACCEPTED_FORMATS)[-1]

NOT_AN_IMAGE = f"The file's contents are not an image (whatever its name says); upload {ACCEPTED_FORMAT_NAMES} files."
DAMAGED_IMAGE = "The file looks like an image but its data is damaged or cut short, so it cannot be decoded."


def upload_accept_attribute() -> str:
    """The ``accept`` attribute of a file input offering exactly the accepted formats."""
    extensions = [ext for fmt in ACCEPTED_FORMATS.values() for ext in fmt.file_extensions]
    return ",".join([*extensions, *(fmt.mime_type for fmt in ACCEPTED_FORMATS.values())])


@dataclass(frozen=True)
class ImageFacts:
    sha256: str
    format: str
    extension: str
    width: int
    height: int
    mode: str
    size_bytes: int


def upload_size_limit() -> int:
    """The most bytes one image file may have, whichever way it arrives."""
    return settings.STEELQC_MAX_UPLOAD_BYTES


def upload_size_check(size: int) -> None:
    """Refuse (413 ``file_too_large``) a file of ``size`` bytes over the limit."""
    limit = upload_size_limit()
    if size > limit:
        raise TooLarge(f"The file is {size} bytes; the limit is {limit}.", code="file_too_large")


def uploaded_file_read(uploaded) -> bytes:
    """The bytes of a multipart file (a Django ``UploadedFile``), refused on its size before they
    are read into memory; the bytes still go through ``image_facts_from_bytes``."""
    upload_size_check(uploaded.size)
    return uploaded.read()


def upload_fields_checked(*, source: str, external_id: str) -> tuple[str, str]:
    """``source`` and ``external_id`` stripped, or ApplicationError ``field_too_long`` when either
    is longer than its column."""
    source, external_id = (source or "").strip(), (external_id or "").strip()
    if len(source) > SOURCE_MAX_LENGTH or len(external_id) > EXTERNAL_ID_MAX_LENGTH:
        raise ApplicationError(
            f"source is limited to {SOURCE_MAX_LENGTH} and external_id to {EXTERNAL_ID_MAX_LENGTH} characters.",
            code="field_too_long",
        )
    return source, external_id


def image_facts_from_bytes(data: bytes) -> ImageFacts:
    """Decode ``data`` fully and describe it, or raise ApplicationError saying why not."""
    if not data:
        raise ApplicationError("The file is empty.", code="empty_file")
    upload_size_check(len(data))
    try:
        with Image.open(io.BytesIO(data)) as image:
            facts = _describe(image, data)
            # Header-only checks above; a full decode proves the pixel data is there.
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image.load()
    except ApplicationError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ApplicationError("The image has too many pixels.", code="too_many_pixels") from None
    except UnidentifiedImageError:
        raise ApplicationError(NOT_AN_IMAGE, code="undecodable_image") from None
    except Exception as error:
        # Decoders meet hostile bytes here; whatever they raise (OSError for truncated data,
        # EOFError, struct.error, ...) means the same to a person: the image is damaged. The
        # decoder's own words are for the log, never the answer. Never a 500.
        logger.info("undecodable image: %s: %s", type(error).__name__, error)
        raise ApplicationError(DAMAGED_IMAGE, code="undecodable_image") from None
    return facts


def _describe(image: Image.Image, data: bytes) -> ImageFacts:
    if image.format not in ACCEPTED_FORMATS:
        raise ApplicationError(
            f"Format {image.format or 'unknown'} is not accepted; use {ACCEPTED_FORMAT_NAMES}.",
            code="unsupported_format",
        )
    if getattr(image, "is_animated", False):
        # Animated PNGs and multi-page TIFFs: which frame is the strip is ambiguous, and
        # reviewers and the model would see only the first.
        raise ApplicationError("The file holds several frames or pages; upload one image per file.",
                               code="multi_frame_image")
    width, height = image.size
    if width < 1 or height < 1:
        raise ApplicationError("The image has no pixels.", code="empty_image")
    if width * height > settings.STEELQC_MAX_IMAGE_PIXELS:
        raise ApplicationError(
            f"The image has {width * height} pixels; the limit is {settings.STEELQC_MAX_IMAGE_PIXELS}.",
            code="too_many_pixels",
        )
    return ImageFacts(
        sha256=hashlib.sha256(data).hexdigest(),
        format=image.format,
        extension=ACCEPTED_FORMATS[image.format].stored_extension,
        width=width,
        height=height,
        mode=image.mode,
        size_bytes=len(data),
    )
