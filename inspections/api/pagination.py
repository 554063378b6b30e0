"""Page-number pagination with a bounded page size and strict parameters (bad values -> 400)."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.pagination import PageNumberPagination


class _PageParams(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, required=False, default=1)
    page_size = serializers.IntegerField(min_value=1, required=False)

    def validate_page_size(self, value: int) -> int:
        limit = settings.STEELQC_API_MAX_PAGE_SIZE
        if value > limit:
            raise serializers.ValidationError(f"Ensure this value is less than or equal to {limit}.")
        return value


class BoundedPageNumberPagination(PageNumberPagination):
    page_size_query_param = "page_size"

    def paginate_queryset(self, queryset, request, view=None):
        params = _PageParams(data={k: request.query_params[k] for k in ("page", "page_size") if k in request.query_params})
        params.is_valid(raise_exception=True)
        self.request = request
        size = params.validated_data.get("page_size", settings.STEELQC_API_PAGE_SIZE)
        paginator = self.django_paginator_class(queryset, size)
        number = params.validated_data["page"]
        if number > max(paginator.num_pages, 1):
            raise NotFound(f"Page {number} is past the last page ({paginator.num_pages}).")
        self.page = paginator.page(number)
        return list(self.page)

    def get_paginated_response_schema(self, schema):
        response = super().get_paginated_response_schema(schema)
        response["required"] = ["count", "next", "previous", "results"]
        return response

    def get_schema_operation_parameters(self, view):
        return [
            {"name": "page", "required": False, "in": "query", "description": "Page number, from 1.",
             "schema": {"type": "integer", "minimum": 1}},
            {"name": "page_size", "required": False, "in": "query",
             "description": f"Results per page (default {settings.STEELQC_API_PAGE_SIZE}, at most {settings.STEELQC_API_MAX_PAGE_SIZE}).",
             "schema": {"type": "integer", "minimum": 1, "maximum": settings.STEELQC_API_MAX_PAGE_SIZE}},
        ]
