"""The upload pages: single files and bulk (the page sends files one by one to the REST API,
session + CSRF), and the endpoint that takes a zip archive (unpacked by ``services.zip_upload``)."""

from __future__ import annotations

import logging
from dataclasses import asdict

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from inspections.access import roles
from inspections.api.exceptions import http_status
from inspections.catalog import selectors as catalog_selectors
from inspections.catalog.limits import SOURCE_MAX_LENGTH
from inspections.catalog.services import image_validation
from inspections.catalog.services.image_validation import ACCEPTED_FORMAT_NAMES, upload_accept_attribute
from inspections.catalog.services.zip_upload import ZIP_MAX_BYTES, ZIP_MAX_MEMBERS, zip_upload, zip_upload_counts
from inspections.errors import ApplicationError, error_body
from inspections.pages.access import role_required

logger = logging.getLogger(__name__)

ZIP_ACCEPT = ".zip,application/zip"
upload_role = role_required(roles.can_upload, "Uploading needs the role qa, ml_admin or integrator.")


def _upload_context() -> dict:
    return {
        "api_images_url": reverse("inspections:api:image-list"),
        "classes": catalog_selectors.defect_class_list().filter(active=True),
        "accepted_formats": ACCEPTED_FORMAT_NAMES,
        "image_accept": upload_accept_attribute(),
        "max_file_bytes": image_validation.upload_size_limit(),
        "source_max_length": SOURCE_MAX_LENGTH,
    }


@require_GET
@upload_role
def upload(request: HttpRequest) -> HttpResponse:
    """The browser upload page; the files go to the API from static/js/upload.js."""
    return render(request, "inspections/upload.html", _upload_context())


@require_GET
@upload_role
def bulk_upload(request: HttpRequest) -> HttpResponse:
    context = _upload_context()
    return render(request, "inspections/bulk_upload.html", {
        **context,
        "bulk_accept": f"{ZIP_ACCEPT},{context['image_accept']}",
        "zip_url": reverse("inspections:upload-zip"),
        "zip_max_bytes": ZIP_MAX_BYTES,
        "zip_max_members": ZIP_MAX_MEMBERS,
    })


@require_POST
@upload_role
def upload_zip(request: HttpRequest) -> JsonResponse:
    archive = request.FILES.get("file")
    if archive is None:
        return JsonResponse(error_body("no_file", "Send the archive in the multipart field 'file'."), status=400)
    try:
        results = zip_upload(archive=archive, uploaded_by=request.user, source=(request.POST.get("source") or "").strip())
    except ApplicationError as error:
        return JsonResponse(error_body(error.code, error.message, error.details), status=http_status(error))
    counts = zip_upload_counts(results)
    logger.info("zip upload by %s: %s", request.user, counts)
    return JsonResponse({"archive": archive.name, "counts": counts, "results": [
        {**asdict(result),
         "image_url": reverse("inspections:review-image", args=[result.image_id]) if result.image_id else None}
        for result in results
    ]})
