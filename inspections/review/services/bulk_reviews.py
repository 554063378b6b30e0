"""One decision for many images at once (a look-alike group named by a QA person): still one
append-only Review row per image, each written by the single-image review services in its own
transaction, so a conflict on one image (someone decided it meanwhile) fails only that one. The
reviews of one bulk decision share a ``bulk_id``; undoing it is one more review per image."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID, uuid4

from django.conf import settings

from inspections.catalog.models import InspectionImage
from inspections.errors import ApplicationError, Conflict, NotFound, PermissionDenied
from inspections.review.models import Review
from inspections.review.services.reviews import (
    _active_class,
    _check_role,
    review_exclude,
    review_include,
    review_submit,
    review_undo,
)


@dataclass
class BulkOutcome:
    image_id: int
    review: Review | None = None
    error: ApplicationError | None = None


def reviews_bulk_submit(*, items: list[tuple[int, int]], reviewer, label_name: str | None = None,
                        exclude: bool | None = None, reason: str = "") -> list[BulkOutcome]:
    """Apply one decision to each ``(image id, label_version seen)`` of ``items``, in order:
    ``label_name`` (a class), ``exclude=True`` with ``reason``, or ``exclude=False`` (include again).

    The request as a whole is refused (nothing written) when it is malformed: no items, more than
    ``STEELQC_BULK_REVIEW_MAX_IMAGES``, an image listed twice, an unknown class, no reason for an
    exclusion, or a reviewer without a labelling role. Everything else is per image.
    """
    _check_role(reviewer)
    _check_items(items)
    if exclude is None:
        _active_class(label_name or "")  # an unknown class is the request's fault, not each image's
    elif exclude and not (reason or "").strip():
        raise ApplicationError("Say why the images are excluded.", code="invalid", details={"reason": ["required"]})
    images = InspectionImage.objects.in_bulk([image_id for image_id, _ in items])
    bulk_id = uuid4()
    outcomes = []
    for image_id, expected_version in items:
        image = images.get(image_id)
        if image is None:
            outcomes.append(BulkOutcome(image_id, error=NotFound(
                f"No image with id {image_id}.", code="not_found")))
            continue
        try:
            if exclude is True:
                review = review_exclude(image=image, reviewer=reviewer, reason=reason, expected_version=expected_version,
                                        bulk_id=bulk_id)
            elif exclude is False:
                review = review_include(image=image, reviewer=reviewer, expected_version=expected_version,
                                        bulk_id=bulk_id)
            else:
                review = review_submit(image=image, label_name=label_name, reviewer=reviewer,
                                       expected_version=expected_version, bulk_id=bulk_id)
        except ApplicationError as error:
            outcomes.append(BulkOutcome(image_id, error=error))
        else:
            outcomes.append(BulkOutcome(image_id, review=review))
    return outcomes


def reviews_bulk_undo(*, bulk_id: UUID, reviewer) -> list[BulkOutcome]:
    """Take back the bulk decision ``bulk_id``, made by ``reviewer``: each of its images returns to
    the state the decision found it in, through one undo review per image (``review_undo``), in its
    own transaction. An image decided again since is left as it is (its ``error`` says so).

    Refused as a whole: no such bulk decision, another person's, or one already undone (every image of
    it; one whose decision was undone on its own is reported as ``already_undone`` and the rest go on)."""
    _check_role(reviewer)
    reviews = list(Review.objects.filter(bulk_id=bulk_id).select_related("image", "previous_label").order_by("id"))
    if not reviews:
        raise NotFound("No such bulk decision.", code="not_found")
    if reviews[0].reviewer_id != reviewer.pk:
        raise PermissionDenied("Only the person who made a bulk decision can undo it.", code="permission_denied")
    if Review.objects.filter(undoes__bulk_id=bulk_id).count() == len(reviews):
        raise Conflict("This bulk decision was undone already.", code="already_undone")
    outcomes = []
    for review in reviews:
        try:
            outcomes.append(BulkOutcome(review.image_id, review=review_undo(review=review, reviewer=reviewer)))
        except ApplicationError as error:
            outcomes.append(BulkOutcome(review.image_id, error=error))
    return outcomes


def _check_items(items: list[tuple[int, int]]) -> None:
    limit = settings.STEELQC_BULK_REVIEW_MAX_IMAGES
    if not items:
        raise ApplicationError("List at least one image.", code="invalid", details={"images": ["empty"]})
    if len(items) > limit:
        raise ApplicationError(f"At most {limit} images per bulk decision; this one lists {len(items)}.",
                               code="too_many_images", details={"images": [f"at most {limit}"], "limit": limit})
    seen, twice = set(), set()
    for image_id, _ in items:
        (twice if image_id in seen else seen).add(image_id)
    if twice:
        raise ApplicationError("Each image may be listed once.", code="invalid",
                               details={"images": [f"listed more than once: {sorted(twice)[:20]}"]})
