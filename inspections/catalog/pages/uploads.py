"""The upload pages: single files and bulk (the page sends files one by one to the REST API,
session + CSRF), the endpoint that takes a zip archive (unpacked by ``services.zip_upload``), and
the one both pages read their results' answers from (``upload_answers``)."""

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
from inspections.pages.access import can_review_queue, role_required
from inspections.review import selectors as review_selectors
from inspections.review.reasons import prediction_explanation

logger = logging.getLogger(__name__)

ZIP_ACCEPT = ".zip,application/zip"
ANSWERS_MAX_IMAGES = 100  # per request of upload_answers; the pages ask in batches of this size
upload_role = role_required(roles.can_upload, "Uploading needs the role qa, ml_admin or integrator.")


def _upload_context(request: HttpRequest) -> dict:
    return {
        "api_images_url": reverse("inspections:api:image-list"),
        "answers_url": reverse("inspections:upload-answers"),
        "answers_max_images": ANSWERS_MAX_IMAGES,
        # Patterns of each result row's links (static/js/upload_results.js puts the image id for the 0).
        "file_url_pattern": reverse("inspections:api:image-file", args=[0]),
        "review_url_pattern": reverse("inspections:review-image", args=[0]) if can_review_queue(request.user) else "",
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
    return render(request, "inspections/upload.html", _upload_context(request))


@require_GET
@upload_role
def bulk_upload(request: HttpRequest) -> HttpResponse:
    context = _upload_context(request)
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


@require_GET
@upload_role
def upload_answers(request: HttpRequest) -> JsonResponse:
    """What became of uploaded images (``?ids=1,2,3``, at most ANSWERS_MAX_IMAGES): each one's
    status, current label and latest prediction, for the result rows of both upload pages."""
    try:
        image_ids = sorted({int(part) for part in request.GET.get("ids", "").split(",") if part.strip()})
    except ValueError:
        return JsonResponse(error_body("invalid", "ids: image ids separated by commas."), status=400)
    if len(image_ids) > ANSWERS_MAX_IMAGES:
        return JsonResponse(error_body("too_many_images", f"At most {ANSWERS_MAX_IMAGES} ids per request."),
                            status=400)
    images = review_selectors.image_list().filter(pk__in=image_ids)
    return JsonResponse({"images": [_answer(image) for image in images]})


def _answer(image) -> dict:
    prediction = review_selectors.image_latest_prediction(image=image)
    return {
        "id": image.pk,
        "status": image.status,
        "label": image.label.name if image.label_id else None,
        "excluded": image.excluded,
        "prediction": None if prediction is None else {
            "label": prediction.label.name if prediction.label_id else None,
            "confidence": prediction.confidence,
            "needs_review": prediction.needs_review,
            "probabilities": prediction.probabilities,
            "review_explanation": prediction_explanation(prediction),
            "ood_score": prediction.ood_score,
            "anomaly_score": prediction.anomaly_score,
            "model_version_number": prediction.model_version.number,
        },
    }
