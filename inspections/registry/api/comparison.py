"""GET model-versions/{a}/compare/{b}/: two versions side by side on the same labelled images."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from inspections.api.base import COMMON_ERRORS, ERROR, ApiView, _model_version_or_404
from inspections.registry.services.version_comparison import comparison_answer


class CompareQuery(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, required=False, default=1)
    page_size = serializers.IntegerField(min_value=1, required=False)

    def validate_page_size(self, value: int) -> int:
        if value > settings.STEELQC_API_MAX_PAGE_SIZE:
            raise serializers.ValidationError(f"Ensure this value is less than or equal to {settings.STEELQC_API_MAX_PAGE_SIZE}.")
        return value


COMPARISON = OpenApiResponse(OpenApiTypes.OBJECT, description="The comparison (`status: ready`) or `status: failed`.")


class ModelVersionCompare(ApiView):
    @extend_schema(
        operation_id="model_versions_compare",
        parameters=[CompareQuery],
        description=(
            "Versions `a` (first) and `b` (second) on the same images: the frozen test split of the newer "
            "version's training run plus labelled images neither version's run saw (`image_set`). "
            "Per-class precision/recall/F1 of both and `delta` (second - first; `null` for a class only one "
            "knows, see `known_by`), accuracy, `confusion_matrices` (`first`, `second`, `difference` = "
            "second - first; rows true class, columns predicted, over `classes`) and the images where they "
            "disagree (`disagreements`, paginated by `page`/`page_size`, each with `review_url`). "
            "The predictions are computed once by a worker: until then the answer is 202 with "
            "`status: computing` (ask again); `status: failed` carries `error`."
        ),
        responses={200: COMPARISON, 202: OpenApiResponse(OpenApiTypes.OBJECT, description="`status: computing`."),
                   400: ERROR, 404: ERROR, 503: ERROR, **COMMON_ERRORS},
    )
    def get(self, request, version_id: int, other_id: int):
        query = CompareQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        first, second = _model_version_or_404(version_id), _model_version_or_404(other_id)
        body = comparison_answer(first=first, second=second, page=query.validated_data["page"],
                                 page_size=query.validated_data.get("page_size", settings.STEELQC_API_PAGE_SIZE))
        for row in body.get("disagreements", {}).get("results", []):
            row["review_url"] = request.build_absolute_uri(row["review_url"])
        return Response(body, status=status.HTTP_202_ACCEPTED if body["status"] == "computing" else status.HTTP_200_OK)
