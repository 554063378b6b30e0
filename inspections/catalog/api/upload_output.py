"""The answer to an upload of a new image, written out by hand.

``ImageOutput`` (a ModelSerializer) builds its fields anew for every image it answers with:
it reads the model's field metadata, copies its declared fields and runs each field's
conversion. On the upload path that cost more web CPU than storing the image (profile in
docs/benchmarks.md, profile-upload). A row just written by an upload has no label, no prediction
and no suspect label, so its answer is plain values. ``tests/inspections/api/test_upload_output.py``
holds this equal to ``ImageOutput`` for the same rows, key order included: a field added there
fails that test until it is added here.
"""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from inspections.catalog.models import InspectionImage

_TIMESTAMP = serializers.DateTimeField()  # ISO 8601 in the current time zone, as every API timestamp


def new_image_output(image: InspectionImage, *, request) -> dict | None:
    """``ImageOutput``'s answer for an uploaded ``image`` known to have no prediction (its
    ``predictions_latest_first`` is ``[]``), no label and no suspect label: a new image, or one
    whose wait ran out. ``None`` for any other image, which the caller answers with ``ImageOutput``."""
    if (getattr(image, "predictions_latest_first", None) != [] or image.label_id is not None
            or image.suspect_suggestion_id is not None):
        return None
    pk = image.pk
    uploaded_by = image.uploaded_by if image.uploaded_by_id is not None else None
    return {
        "id": pk,
        "url": request.build_absolute_uri(reverse("inspections:api:image-detail", args=[pk])),
        "file_url": request.build_absolute_uri(reverse("inspections:api:image-file", args=[pk])),
        "sha256": image.sha256,
        "original_name": image.original_name,
        "format": image.format,
        "mode": image.mode,
        "width": image.width,
        "height": image.height,
        "size_bytes": image.size_bytes,
        "source": image.source,
        "external_id": image.external_id,
        "uploaded_by": uploaded_by.get_username() if uploaded_by is not None else None,
        "created_at": _TIMESTAMP.to_representation(image.created_at),
        "status": str(image.status),
        "split": str(image.split),
        "label": None,
        "label_source": str(image.label_source),
        "label_version": image.label_version,
        "excluded": image.excluded,
        "exclusion_reason": image.exclusion_reason,
        "review_reasons": [],
        "suspect_label": None,
        "prediction": None,
    }
