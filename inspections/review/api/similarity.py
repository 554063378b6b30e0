"""Look-alike images over the API: an image's nearest neighbours, the groups of images flagged
``foreign``, and one decision for many images (see ``inspections/services/similarity.py`` and
``inspections/services/bulk_reviews.py``)."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from inspections.api.base import COMMON_ERRORS, ERROR, ApiView, _image_or_404
from inspections.api.parsers import BoundedJSONParser
from inspections.api.permissions import LabelRole
from inspections.catalog.api.serializers import UploadErrorOutput
from inspections.errors import ApplicationError, error_body
from inspections.review import selectors as review_selectors
from inspections.review.api.serializers import ImageOutput, ReviewOutput
from inspections.review.services.bulk_reviews import reviews_bulk_submit, reviews_bulk_undo
from inspections.review.services.similarity import novelty_groups, similar_images

# --- Shapes ------------------------------------------------------------------------------------

class SimilarQuery(serializers.Serializer):
    limit = serializers.IntegerField(required=False, default=8, min_value=1,
                                     help_text="How many neighbours (1 to STEELQC_SIMILAR_MAX_LIMIT, default 8).")

    def validate_limit(self, value: int) -> int:
        if value > settings.STEELQC_SIMILAR_MAX_LIMIT:
            raise serializers.ValidationError(f"Ensure this value is less than or equal to {settings.STEELQC_SIMILAR_MAX_LIMIT}.")
        return value


class SimilarImageOutput(serializers.Serializer):
    distance = serializers.FloatField(help_text="Euclidean distance between the two descriptors (0: identical).")
    image = ImageOutput()


class SimilarImagesOutput(serializers.Serializer):
    image = serializers.IntegerField()
    model_version = serializers.IntegerField(help_text="The active version whose descriptors were compared.")
    results = SimilarImageOutput(many=True)


class GroupMemberOutput(serializers.Serializer):
    id = serializers.IntegerField()
    label_version = serializers.IntegerField(help_text="Send it back to reviews/bulk/ as the version seen.")


class NoveltyGroupOutput(serializers.Serializer):
    size = serializers.IntegerField()
    representatives = serializers.ListField(child=serializers.IntegerField(),
                                            help_text="Ids of the members nearest the group's centre.")
    predicted_labels = serializers.DictField(child=serializers.IntegerField(),
                                             help_text="Class the model guessed -> how many members, most first.")
    images = GroupMemberOutput(many=True, help_text="Every member, nearest the centre first.")


class BulkImageInput(serializers.Serializer):
    id = serializers.IntegerField(min_value=1)
    label_version = serializers.IntegerField(min_value=0, help_text="The image's label_version you saw.")


class BulkReviewInput(serializers.Serializer):
    images = BulkImageInput(many=True, help_text="The images and, for each, the label_version seen.")
    label = serializers.CharField(max_length=64, required=False, help_text="Name of an active defect class.")
    exclude = serializers.BooleanField(required=False, allow_null=True, default=None,
                                       help_text="true: not inspection images (needs reason); false: include again.")
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    def to_internal_value(self, data):
        # The limit first: ten thousand ids are refused by count, not validated one by one.
        images = data.get("images") if hasattr(data, "get") else None
        limit = settings.STEELQC_BULK_REVIEW_MAX_IMAGES
        if isinstance(images, list) and len(images) > limit:
            raise ApplicationError(f"At most {limit} images per bulk decision; this one lists {len(images)}.",
                                   code="too_many_images", details={"images": [f"at most {limit}"], "limit": limit})
        return super().to_internal_value(data)

    def validate(self, attrs: dict) -> dict:
        if ("label" in attrs) == (attrs.get("exclude") is not None):
            raise serializers.ValidationError({"label": ["Give either label or exclude, not both and not neither."]})
        if attrs.get("exclude") is True and not attrs["reason"].strip():
            raise serializers.ValidationError({"reason": ["Say why the images are excluded."]})
        return attrs


BULK_OUTPUT = inline_serializer("BulkReviewOutput", {
    "results": inline_serializer("BulkReviewResult", {
        "image": serializers.IntegerField(),
        "ok": serializers.BooleanField(),
        "review": ReviewOutput(required=False),
        "label_version": serializers.IntegerField(required=False, help_text="The image's version after the decision."),
        "error": UploadErrorOutput(required=False),
    }, many=True),
    "decided": serializers.IntegerField(),
    "failed": serializers.IntegerField(),
    "bulk_id": serializers.UUIDField(help_text="The decision's id, shared by its reviews: the look-alike groups "
                                               "page undoes a person's last bulk decision by it."),
})


# --- Views -------------------------------------------------------------------------------------

class ImageSimilar(ApiView):
    @extend_schema(
        operation_id="images_similar", parameters=[SimilarQuery],
        description="The images whose descriptors from the active model are nearest to this image's (exact "
                    "Euclidean k-NN among every image that model predicted), nearest first, the image itself left "
                    "out. 409 `no_active_model` or `not_predicted` when there is nothing to compare yet.",
        responses={200: SimilarImagesOutput, 400: ERROR, 404: ERROR, 409: ERROR, **COMMON_ERRORS},
    )
    def get(self, request, image_id: int):
        query = SimilarQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        image = _image_or_404(image_id)
        version, found = similar_images(image_id=image.pk, limit=query.validated_data["limit"])
        images = review_selectors.image_list().in_bulk([other for other, _ in found])
        results = [{"distance": distance, "image": images[other]} for other, distance in found if other in images]
        body = {"image": image.pk, "model_version": version.pk, "results": results}
        return Response(SimilarImagesOutput(body, context=self.get_serializer_context()).data)


class NoveltyGroupList(ApiView):
    @extend_schema(
        operation_id="novelty_groups_list",
        description="The images the active model flagged `foreign` that still wait for a person (not excluded, "
                    "no human label), grouped by likeness of their descriptors; largest group first. Name a whole "
                    "group with `POST reviews/bulk/`, sending each member's `label_version`.",
        responses={200: NoveltyGroupOutput(many=True), 400: ERROR, 404: ERROR, 409: ERROR, **COMMON_ERRORS},
    )
    def get(self, request):
        page = self.paginate_queryset(novelty_groups())
        return self.get_paginated_response(self.output(NoveltyGroupOutput, page, many=True))


class BulkReviewCreate(ApiView):
    role_checks = {"POST": LabelRole}
    throttle_scopes = {"POST": "write"}
    parser_classes = [BoundedJSONParser]

    @extend_schema(
        operation_id="reviews_bulk_create", request=BulkReviewInput,
        description="One decision for many images: `label` (a class), `exclude: true` with `reason`, or "
                    "`exclude: false`; `images` lists each image's `id` and the `label_version` seen (at most "
                    "STEELQC_BULK_REVIEW_MAX_IMAGES, default 1000: more answers 400 `too_many_images`). Each image "
                    "gets its own review, decided on its own: an unknown id or a stale version fails that image "
                    "only (its `error` in `results`). 200 when at least one image was decided; 409 "
                    "`no_image_decided` (results in `details.results`) when none was.",
        responses={200: BULK_OUTPUT, 400: ERROR, 409: ERROR, **COMMON_ERRORS},
    )
    def post(self, request):
        payload = BulkReviewInput(data=request.data)
        payload.is_valid(raise_exception=True)
        decision = payload.validated_data
        outcomes = reviews_bulk_submit(
            items=[(item["id"], item["label_version"]) for item in decision["images"]], reviewer=request.user,
            label_name=decision.get("label"), exclude=decision["exclude"], reason=decision["reason"])
        return _bulk_response(self, outcomes, nothing_done="No image was decided; see details.results.")


class BulkReviewUndo(ApiView):
    role_checks = {"POST": LabelRole}
    throttle_scopes = {"POST": "write"}
    parser_classes = [BoundedJSONParser]

    @extend_schema(
        operation_id="reviews_bulk_undo", request=None,
        description="Take back a bulk decision (its `bulk_id`): each image returns to the state the decision found "
                    "it in, through one undo review per image, decided on its own: an image decided again since, or "
                    "whose decision was undone on its own, fails that image only (its `error`: `decided_since`, "
                    "`already_undone`). Only the person who made the decision may. 404 for an unknown `bulk_id`, "
                    "409 `already_undone` when every image of it was undone before, `no_image_decided` when none "
                    "could be.",
        responses={200: BULK_OUTPUT, 403: ERROR, 404: ERROR, 409: ERROR, **COMMON_ERRORS},
    )
    def post(self, request, bulk_id):
        outcomes = reviews_bulk_undo(bulk_id=bulk_id, reviewer=request.user)
        return _bulk_response(self, outcomes, nothing_done="No image's decision was undone; see details.results.")


def _bulk_response(view: ApiView, outcomes, *, nothing_done: str) -> Response:
    """200 with each image's line, how many were decided and the decision's ``bulk_id``; 409
    ``no_image_decided`` (the lines in ``details.results``) when none was."""
    results = [_bulk_result(view, outcome) for outcome in outcomes]
    done = [outcome.review for outcome in outcomes if outcome.error is None]
    if not done:
        return Response(error_body("no_image_decided", nothing_done, {"results": results}),
                        status=status.HTTP_409_CONFLICT)
    # An undo's reviews carry no bulk_id of their own: the answer names the decision they took back.
    bulk_id = done[0].bulk_id or done[0].undoes.bulk_id
    return Response({"results": results, "decided": len(done), "failed": len(results) - len(done), "bulk_id": bulk_id})


def _bulk_result(view: ApiView, outcome) -> dict:
    """One image's line in a bulk answer: its review, or its error."""
    if outcome.error is not None:
        error = outcome.error
        return {"image": outcome.image_id, "ok": False,
                "error": error_body(error.code, error.message, error.details)["error"]}
    review = outcome.review
    return {"image": outcome.image_id, "ok": True, "review": view.output(ReviewOutput, review),
            "label_version": review.image.label_version}
