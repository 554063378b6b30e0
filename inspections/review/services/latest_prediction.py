"""The latest prediction's facts kept on each image (``InspectionImage.latest_*`` and
``needs_attention``): what the review queue orders by and the prediction filters match, so those
reads are index reads instead of a subquery per image.

The one writer of those columns. Every service that writes or deletes a prediction calls
``images_latest_prediction_refresh`` in the same transaction (the image row is locked by then:
the inference claim, the new image of a kept line tile); every service that sets or clears a
suspect label sets ``needs_attention`` by the rule in ``inspections.catalog.attention``.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import BooleanField, Case, OuterRef, Subquery, Value, When

from inspections.catalog.models import InspectionImage
from inspections.review.models import Prediction


def images_latest_prediction_refresh(*, image_ids: list[int]) -> int:
    """Point each image at its latest prediction (newest ``created_at``, then highest id) and copy
    that prediction's facts; an image without a prediction gets nulls. One statement, one index
    probe of ``prediction_image_latest`` per image and column. Returns how many images were written.

    Locks the images' rows until the caller's transaction ends (its own when there is none)."""
    if not image_ids:
        return 0
    latest = Prediction.objects.filter(image=OuterRef("pk")).order_by("-created_at", "-id")

    def fact(field: str) -> Subquery:
        return Subquery(latest.values(field)[:1])

    with transaction.atomic():
        # Lock first, then read in a statement of its own: it sees every prediction committed before
        # the lock was granted (an UPDATE that waited for a row lock would keep its older snapshot).
        locked = list(InspectionImage.objects.select_for_update(of=("self",)).filter(pk__in=image_ids)
                      .order_by("pk").values_list("pk", flat=True))
        return InspectionImage.objects.filter(pk__in=locked).update(
            latest_prediction=fact("id"),
            latest_needs_review=fact("needs_review"),
            latest_margin=fact("margin"),
            latest_label=fact("label_id"),
            latest_model_version=fact("model_version_id"),
            latest_review_reasons=fact("review_reasons"),
            latest_anomaly_score=fact("anomaly_score"),
            needs_attention=Case(When(suspect_suggestion__isnull=False, then=Value(True)),
                                 default=fact("needs_review"), output_field=BooleanField()),
        )
