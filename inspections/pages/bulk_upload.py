"""Bulk upload: many files (sent one by one to the REST API by the page) or one zip archive,
unpacked here member by member — each member one ``image_upload`` call."""

from __future__ import annotations

import logging
import posixpath
import zipfile
import zlib
from dataclasses import asdict, dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from inspections import roles, selectors
from inspections.errors import ApplicationError
from inspections.services.images import image_upload

from .access import role_required

logger = logging.getLogger(__name__)

# Limits of one archive. The per-member limit is STEELQC_MAX_UPLOAD_BYTES, as for single files.
ZIP_MAX_BYTES = 512 * 1024 * 1024
ZIP_MAX_MEMBERS = 5000
ZIP_MAX_TOTAL_UNCOMPRESSED = 2 * 1024 * 1024 * 1024
IGNORED_PREFIXES = ("__MACOSX/",)

upload_role = role_required(roles.can_upload, "Uploading needs the role qa, ml_admin or integrator.")


@dataclass
class MemberResult:
    name: str
    status: str  # "created", "duplicate", "refused" or "skipped"
    message: str = ""
    image_id: int | None = None
    image_url: str | None = None


def zip_upload(*, archive, uploaded_by, source: str = "") -> list[MemberResult]:
    """Store every image in ``archive`` (a file object); one result per member, in archive order.

    Refuses the whole archive (ApplicationError) when it is not a zip, has too many members or
    declares too many bytes. Folders are flattened (only the member's base name is kept, for
    display; nothing is written to disk under a member's name). A member that is not an image,
    is corrupt, encrypted, too large, or pushes the running total over the limit is refused on
    its own; the others still go in.
    """
    try:
        zip_file = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ApplicationError(f"The file is not a readable zip archive ({error}).", code="invalid_zip") from None
    with zip_file:
        members = [info for info in zip_file.infolist() if not info.is_dir()]
        if len(members) > ZIP_MAX_MEMBERS:
            raise ApplicationError(f"The archive has {len(members)} files; at most {ZIP_MAX_MEMBERS} are accepted.",
                                   code="zip_too_many_members", status_code=413)
        declared = sum(info.file_size for info in members)
        if declared > ZIP_MAX_TOTAL_UNCOMPRESSED:
            raise ApplicationError(
                f"The archive unpacks to {declared} bytes; at most {ZIP_MAX_TOTAL_UNCOMPRESSED} are accepted.",
                code="zip_too_large", status_code=413)
        budget = ZIP_MAX_TOTAL_UNCOMPRESSED
        results = []
        for info in members:
            result, used = _member_upload(zip_file, info, budget=budget, uploaded_by=uploaded_by, source=source)
            budget -= used
            results.append(result)
        return results


def _display_name(raw: str) -> str:
    name = posixpath.basename(raw.replace("\\", "/"))
    return "".join(ch for ch in name if ch.isprintable())[:255] or "(unnamed)"


def _member_upload(zip_file: zipfile.ZipFile, info: zipfile.ZipInfo, *, budget: int, uploaded_by,
                   source: str) -> tuple[MemberResult, int]:
    name = _display_name(info.filename)
    if info.filename.startswith(IGNORED_PREFIXES) or name.startswith("._"):
        return MemberResult(name=info.filename, status="skipped", message="macOS metadata, not an image."), 0
    if info.flag_bits & 0x1:
        return MemberResult(name=name, status="refused", message="Encrypted; cannot be read."), 0
    limit = min(settings.STEELQC_MAX_UPLOAD_BYTES, budget)
    try:
        with zip_file.open(info) as member:
            content = member.read(limit + 1)  # never trust the declared size: read at most limit + 1
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError, ValueError) as error:
        return MemberResult(name=name, status="refused", message=f"Corrupt in the archive: {error}."), 0
    if len(content) > limit:
        why = (f"larger than the {settings.STEELQC_MAX_UPLOAD_BYTES}-byte limit per file"
               if limit == settings.STEELQC_MAX_UPLOAD_BYTES else "over the archive's total size limit")
        return MemberResult(name=name, status="refused", message=f"Not stored: {why}."), 0
    try:
        outcome = image_upload(content=content, filename=name, uploaded_by=uploaded_by, source=source)
    except ApplicationError as error:
        return MemberResult(name=name, status="refused", message=error.message), len(content)
    image = outcome.image
    return MemberResult(
        name=name, status="created" if outcome.created else "duplicate",
        message="" if outcome.created else "The same bytes were uploaded before; the existing image is kept.",
        image_id=image.pk, image_url=reverse("inspections:review-image", args=[image.pk]),
    ), len(content)


@require_http_methods(["GET"])
@upload_role
def bulk_upload(request: HttpRequest) -> HttpResponse:
    return render(request, "inspections/bulk_upload.html", {
        "api_images_url": reverse("inspections:api:image-list"),
        "zip_url": reverse("inspections:upload-zip"),
        "max_file_bytes": settings.STEELQC_MAX_UPLOAD_BYTES,
        "zip_max_bytes": ZIP_MAX_BYTES,
        "zip_max_members": ZIP_MAX_MEMBERS,
        "classes": selectors.defect_class_list().filter(active=True),
    })


@require_POST
@upload_role
def upload_zip(request: HttpRequest) -> JsonResponse:
    archive = request.FILES.get("file")
    if archive is None:
        return _error("no_file", "Send the archive in the multipart field 'file'.", 400)
    if archive.size > ZIP_MAX_BYTES:
        return _error("zip_too_large", f"The archive is {archive.size} bytes; the limit is {ZIP_MAX_BYTES}.", 413)
    source = (request.POST.get("source") or "").strip()
    try:
        results = zip_upload(archive=archive, uploaded_by=request.user, source=source)
    except ApplicationError as error:
        return _error(error.code, error.message, error.status_code)
    counts = {status: sum(1 for r in results if r.status == status)
              for status in ("created", "duplicate", "refused", "skipped")}
    logger.info("zip upload by %s: %s", request.user, counts)
    return JsonResponse({"archive": archive.name, "counts": counts, "results": [asdict(r) for r in results]})


def _error(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message, "details": {}}}, status=status)
