"""File downloads from the API: binary renderers and streamed zip answers."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

from inspections.api.base import _ImageBytesRenderer

ARTEFACT = inline_serializer("ModelArtefact", {
    "name": serializers.CharField(),
    "size": serializers.IntegerField(allow_null=True, help_text="Bytes; null until produced by its first download."),
    "sha256": serializers.CharField(allow_null=True),
    "url": serializers.URLField(),
})
ZIP_RESPONSE = OpenApiResponse(OpenApiTypes.BINARY, description="A zip, streamed.")


class _BinaryRenderer(_ImageBytesRenderer):
    """Lets a client that asks for anything (``*/*``, ``application/zip``) reach a download."""

    media_type = "*/*"
    format = "bin"


def _zip_response(chunks, file_name: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{file_name}"'
    response["Cache-Control"] = "no-store"
    return response
