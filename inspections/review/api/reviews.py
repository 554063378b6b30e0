"""A person's decision on an image: POST images/{id}/reviews/, and taking one back: POST reviews/{id}/undo/."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from inspections.api.base import COMMON_ERRORS, ERROR, ApiView, _image_or_404
from inspections.api.parsers import BoundedFormParser, BoundedJSONParser
from inspections.api.permissions import LabelRole, ReadRole
from inspections.review import selectors as review_selectors
from inspections.review.api.serializers import ImageDetailOutput, ReviewCreatedOutput, ReviewInput, ReviewOutput
from inspections.review.services.reviews import review_exclude, review_include, review_submit, review_undo_by_id


class ImageReviews(ApiView):
    role_checks = {"GET": ReadRole, "POST": LabelRole}
    parser_classes = [BoundedJSONParser, BoundedFormParser, MultiPartParser]

    @extend_schema(operation_id="images_reviews_list", responses={200: ReviewOutput(many=True), 404: ERROR,
                                                                  **COMMON_ERRORS})
    def get(self, request, image_id: int):
        image = _image_or_404(image_id)
        page = self.paginate_queryset(review_selectors.review_list_for_image(image=image))
        return self.get_paginated_response(self.output(ReviewOutput, page, many=True))

    @extend_schema(
        operation_id="images_reviews_create",
        description="Confirm or correct the image's label (`{\"label\": NAME}`), exclude it as not an inspection "
                    "image (`{\"exclude\": true, \"reason\": TEXT}`: it leaves the queue, training and evaluation) "
                    "or undo that (`{\"exclude\": false}`). Each decision is one append-only review. "
                    "`expected_version` (the `label_version` you saw) is required: a stale one gets a 409 with the "
                    "current state instead of overwriting someone else's decision; without it the answer is 400 "
                    "`expected_version_required` unless the body says `\"force\": true`.",
        request=ReviewInput,
        responses={201: ReviewCreatedOutput, 400: ERROR, 404: ERROR, 409: ERROR, **COMMON_ERRORS},
    )
    def post(self, request, image_id: int):
        image = _image_or_404(image_id)
        payload = ReviewInput(data=request.data)
        payload.is_valid(raise_exception=True)
        decision = payload.validated_data
        if decision["exclude"] is True:
            review = review_exclude(image=image, reviewer=request.user, reason=decision["reason"],
                                    expected_version=decision["expected_version"])
        elif decision["exclude"] is False:
            review = review_include(image=image, reviewer=request.user, expected_version=decision["expected_version"])
        else:
            review = review_submit(image=image, label_name=decision["label"], reviewer=request.user,
                                   expected_version=decision["expected_version"])
        return _created(self, review)


class ReviewUndo(ApiView):
    role_checks = {"POST": LabelRole}
    throttle_scopes = {"POST": "write"}
    parser_classes = [BoundedJSONParser]

    @extend_schema(
        operation_id="reviews_undo",
        description="Take back a decision: one more (append-only) review, decision `undo`, returns the image to the "
                    "state the decision found it in (its label, which may be none, where that came from, excluded or "
                    "not). The person who made the decision, or an ML admin, may. 409 `decided_since` when the image "
                    "was decided again after it (the current state in `details`), `already_undone` when it was "
                    "undone before, `invalid` for an undo itself.",
        request=None,
        responses={201: ReviewCreatedOutput, 403: ERROR, 404: ERROR, 409: ERROR, **COMMON_ERRORS},
    )
    def post(self, request, review_id: int):
        return _created(self, review_undo_by_id(review_id=review_id, reviewer=request.user))


def _created(view: ApiView, review) -> Response:
    """201 with the new review and the image as it now is."""
    body = {"review": view.output(ReviewOutput, review),
            "image": view.output(ImageDetailOutput, review_selectors.image_detail(image_id=review.image_id))}
    return Response(body, status=status.HTTP_201_CREATED)
