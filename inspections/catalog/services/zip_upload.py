"""Unpacking a zip archive of images: each member one ``image_upload`` call, within limits."""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass

from inspections.catalog.services import image_validation
from inspections.catalog.services.images import image_upload, upload_display_name
from inspections.errors import ApplicationError, TooLarge

# Limits of one archive. A member is one image upload: image_validation's limits, as for single files.
ZIP_MAX_BYTES = 512 * 1024 * 1024
ZIP_MAX_MEMBERS = 5000
ZIP_MAX_TOTAL_UNCOMPRESSED = 2 * 1024 * 1024 * 1024
IGNORED_PREFIXES = ("__MACOSX/",)
MEMBER_STATUSES = ("created", "duplicate", "refused", "skipped")


@dataclass
class MemberResult:
    name: str
    status: str  # one of MEMBER_STATUSES
    message: str = ""
    image_id: int | None = None


def zip_upload(*, archive, uploaded_by, source: str = "") -> list[MemberResult]:
    """Store every image in ``archive`` (a file object); one result per member, in archive order.

    Refuses the whole archive (ApplicationError) when it is too large, not a zip, has too many
    members or declares too many bytes. Folders are flattened (only the member's base name is
    kept, for display; nothing is written to disk under a member's name). A member that is not
    an image, is corrupt, encrypted, too large, or pushes the running total over the limit is
    refused on its own; the others still go in.
    """
    size = getattr(archive, "size", None)
    if size is not None and size > ZIP_MAX_BYTES:
        raise TooLarge(f"The archive is {size} bytes; the limit is {ZIP_MAX_BYTES}.",
                               code="zip_too_large")
    try:
        zip_file = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, EOFError):
        raise ApplicationError("The file is not a zip archive, or the archive is damaged.", code="invalid_zip") from None
    with zip_file:
        members = [info for info in zip_file.infolist() if not info.is_dir()]
        if len(members) > ZIP_MAX_MEMBERS:
            raise TooLarge(f"The archive has {len(members)} files; at most {ZIP_MAX_MEMBERS} are accepted.",
                                   code="zip_too_many_members")
        declared = sum(info.file_size for info in members)
        if declared > ZIP_MAX_TOTAL_UNCOMPRESSED:
            raise TooLarge(
                f"The archive unpacks to {declared} bytes; at most {ZIP_MAX_TOTAL_UNCOMPRESSED} are accepted.",
                code="zip_too_large")
        budget = ZIP_MAX_TOTAL_UNCOMPRESSED
        results = []
        for info in members:
            result, used = _member_upload(zip_file, info, budget=budget, uploaded_by=uploaded_by, source=source)
            budget -= used
            results.append(result)
        return results


def zip_upload_counts(results: list[MemberResult]) -> dict[str, int]:
    return {status: sum(1 for r in results if r.status == status) for status in MEMBER_STATUSES}


def _member_upload(zip_file: zipfile.ZipFile, info: zipfile.ZipInfo, *, budget: int, uploaded_by,
                   source: str) -> tuple[MemberResult, int]:
    name = upload_display_name(info.filename) or "(unnamed)"
    if info.filename.startswith(IGNORED_PREFIXES) or name.startswith("._"):
        return MemberResult(name=info.filename, status="skipped", message="macOS metadata, not an image."), 0
    if info.flag_bits & 0x1:
        return MemberResult(name=name, status="refused", message="Encrypted; cannot be read."), 0
    per_file = image_validation.upload_size_limit()
    try:
        with zip_file.open(info) as member:
            # Never trust the declared size: read at most one byte past what could be accepted.
            content = member.read(min(per_file, budget) + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError, ValueError):
        return MemberResult(name=name, status="refused", message="Damaged inside the archive; it could not be unpacked."), 0
    # The read stopped early, so the member's real size is unknown: the message names the limit only.
    if len(content) > per_file:
        return MemberResult(name=name, status="refused",
                            message=f"Not stored: larger than the {per_file}-byte limit per file."), 0
    if len(content) > budget:
        return MemberResult(name=name, status="refused", message="Not stored: over the archive's total size limit."), 0
    try:
        outcome = image_upload(content=content, filename=name, uploaded_by=uploaded_by, source=source)
    except ApplicationError as error:
        return MemberResult(name=name, status="refused", message=error.message), len(content)
    return MemberResult(
        name=name, status="created" if outcome.created else "duplicate",
        message="" if outcome.created else "The same bytes were uploaded before; the existing image is kept.",
        image_id=outcome.image.pk,
    ), len(content)
