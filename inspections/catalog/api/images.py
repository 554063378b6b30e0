"""Images and defect classes: upload (one file, several, ?wait), list, detail, the file itself; classes."""

from __future__ import annotations

import time

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.parsers import MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from inspections.api.base import COMMON_ERRORS, CONTENT_TYPES, ERROR, ApiView, _image_or_404, _ImageBytesRenderer
from inspections.api.parsers import BoundedFormParser, BoundedJSONParser, UploadSizeLimitHandler
from inspections.api.permissions import LabelRole, ReadRole, UploadRole
from inspections.catalog import selectors as catalog_selectors
from inspections.catalog.api.filters import ImageFilters
from inspections.catalog.api.serializers import (
    DefectClassInput,
    DefectClassOutput,
    MultiUploadOutput,
    UploadInput,
    UploadQuery,
)
from inspections.catalog.api.upload_output import new_image_output
from inspections.catalog.services import image_validation
from inspections.catalog.services.classes import defect_class_create
from inspections.catalog.services.images import image_upload
from inspections.errors import ApplicationError, error_body
from inspections.queueing import inference_enqueue
from inspections.registry import selectors as registry_selectors
from inspections.review import prediction_events
from inspections.review import selectors as review_selectors
from inspections.review.api.serializers import ImageDetailOutput, ImageOutput

# --- Images ----------------------------------------------------------------------------------

# Beside the answer of an upload with ?wait= that did not wait, and why. The one reason so far: no
# version is active, so nothing predicts the images within any wait.
WAIT_SKIPPED_NO_ACTIVE_MODEL = {
    "code": "no_active_model",
    "message": "No model version is active, so nothing predicts uploads yet: the images are stored as pending and "
               "predicted as soon as a version goes live (GET training-runs/ shows a run in progress). The answer "
               "did not wait.",
}

UPLOAD_RESPONSE = PolymorphicProxySerializer(
    component_name="UploadResponse", serializers=[ImageOutput, MultiUploadOutput], resource_type_field_name=None,
)


class ImageListCreate(ApiView):
    role_checks = {"GET": ReadRole, "POST": UploadRole}
    throttle_scopes = {"POST": "upload"}
    parser_classes = [MultiPartParser, BoundedFormParser]

    def initial(self, request, *args, **kwargs):
        # Before authentication: with a session, the CSRF check may already read the body.
        request._request.upload_handlers.insert(0, UploadSizeLimitHandler(request._request))
        super().initial(request, *args, **kwargs)

    @extend_schema(operation_id="images_list", parameters=[ImageFilters],
                   responses={200: ImageOutput(many=True), 400: ERROR, **COMMON_ERRORS})
    def get(self, request):
        filters = ImageFilters(data=request.query_params)
        filters.is_valid(raise_exception=True)
        page = self.paginate_queryset(review_selectors.image_list(filters=filters.validated_data))
        return self.get_paginated_response(self.output(ImageOutput, page, many=True))

    @extend_schema(
        operation_id="images_upload",
        summary="Upload one or more images",
        description=(
            "Multipart field `file`, repeatable. With one file the answer is the image: 201 when it is new, "
            "200 when the same bytes were uploaded before (the existing image). With several files the answer "
            "is `{\"results\": [...]}`, one entry per file in order, each `{filename, created, image}` or "
            "`{filename, error}`; accepted files are kept even when others are refused. Status 201 when any "
            "file was new, 200 when all accepted files were known, 400 (error body, per-file results in "
            "`details.results`) when every file was refused. `?wait=SECONDS` waits up to that long for the "
            "predictions and includes those that are ready; when too many uploads already wait on the server the "
            "answer is 503 `too_many_waiters` with `Retry-After` and nothing is stored. When no model version is "
            "active the answer comes at once (the same 201/200 answer) with `wait_skipped`: `{code: "
            "no_active_model, message}`, beside the image's fields or beside `results`."
        ),
        parameters=[UploadQuery],
        request={"multipart/form-data": UploadInput},
        responses={201: UPLOAD_RESPONSE, 200: UPLOAD_RESPONSE, 400: ERROR, 413: ERROR, 503: ERROR, **COMMON_ERRORS},
    )
    def post(self, request):
        wait = 0.0
        if "wait" in request.query_params:  # the usual upload has no query string: no serializer for it
            query = UploadQuery(data=request.query_params)
            query.is_valid(raise_exception=True)
            wait = query.validated_data["wait"]
        if not wait:
            return self._post(request, deadline=0.0)
        if not registry_selectors.model_in_service():
            return self._post(request, deadline=0.0, wait_skipped=WAIT_SKIPPED_NO_ACTIVE_MODEL)
        try:
            with prediction_events.waiter_slot():  # taken before anything is stored: a 503 stores nothing
                return self._post(request, deadline=time.monotonic() + wait)
        except prediction_events.TooManyWaiters:
            body = error_body("too_many_waiters", "Too many uploads are waiting for their predictions on this server; "
                              "retry shortly, or upload without ?wait and read the prediction later.")
            return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "1"})

    def _post(self, request, *, deadline: float, wait_skipped: dict | None = None):
        payload = UploadInput(data=request.data)
        payload.is_valid(raise_exception=True)
        files, meta = payload.validated_data["file"], {
            "source": payload.validated_data["source"], "external_id": payload.validated_data["external_id"],
        }
        if len(files) == 1:
            result = self._upload(files[0], **meta)
            image = self._after_wait([result], deadline)[result.image.pk]
            code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
            body = self._image_answer(image)
            if wait_skipped:
                body["wait_skipped"] = wait_skipped
            return Response(body, status=code, headers={"Location": body["url"]})
        return self._multi_upload(files, meta, deadline, wait_skipped)

    def _multi_upload(self, files: list, meta: dict, deadline: float, wait_skipped: dict | None) -> Response:
        outcomes = []
        for uploaded in files:
            try:
                outcomes.append((uploaded.name, self._upload(uploaded, **meta, enqueue=False), None))
            except ApplicationError as error:
                outcomes.append((uploaded.name, None, error))
        # One message for all the new images: the worker predicts them as one batch.
        inference_enqueue(image_ids=[r.image.pk for _, r, _ in outcomes if r and r.created])
        images = self._after_wait([r for _, r, _ in outcomes if r], deadline)
        results = []
        for name, result, error in outcomes:
            if error is not None:
                results.append({"filename": name, "error": error_body(error.code, error.message, error.details)["error"]})
            else:
                results.append({"filename": name, "created": result.created,
                                "image": self._image_answer(images[result.image.pk])})
        if not any(result for _, result, _ in outcomes):
            body = error_body("all_files_refused", "None of the files was accepted; see details.results.",
                              {"results": results})
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        created = any(result.created for _, result, _ in outcomes if result)
        body = {"results": results, **({"wait_skipped": wait_skipped} if wait_skipped else {})}
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    def _image_answer(self, image) -> dict:
        # An image with no prediction and no label yet is answered without the serializer (upload_output.py).
        return new_image_output(image, request=self.request) or self.output(ImageOutput, image)

    def _upload(self, uploaded, *, source: str, external_id: str, enqueue: bool = True):
        return image_upload(
            content=image_validation.uploaded_file_read(uploaded), filename=uploaded.name or "",
            uploaded_by=self.request.user, source=source, external_id=external_id, enqueue=enqueue,
        )

    @staticmethod
    def _after_wait(results: list, deadline: float) -> dict:
        """The images to answer with, by id: read again after waiting or when known before,
        otherwise the new rows as written (no prediction yet; no query)."""
        image_ids = [r.image.pk for r in results]
        remaining = deadline - time.monotonic()
        if remaining > 0:
            prediction_events.prediction_wait(image_ids=image_ids, timeout_s=remaining)
        elif all(r.created for r in results):
            for result in results:
                result.image.predictions_latest_first = []
            return {r.image.pk: r.image for r in results}
        return {image.pk: image for image in review_selectors.image_list().filter(pk__in=image_ids)}


class ImageDetail(ApiView):
    @extend_schema(operation_id="images_retrieve", responses={200: ImageDetailOutput, 404: ERROR, **COMMON_ERRORS})
    def get(self, request, image_id: int):
        return Response(self.output(ImageDetailOutput, _image_or_404(image_id)))


class ImageFile(ApiView):
    renderer_classes = [JSONRenderer, _ImageBytesRenderer]

    @extend_schema(operation_id="images_file", responses={
        (200, "image/*"): OpenApiResponse(OpenApiTypes.BINARY, description="The stored image bytes."),
        404: ERROR, **COMMON_ERRORS})
    def get(self, request, image_id: int):
        image = _image_or_404(image_id)
        try:
            handle = image.file.open("rb")
        except (FileNotFoundError, OSError):
            raise NotFound("The image's file is missing from storage.") from None
        response = FileResponse(handle, content_type=CONTENT_TYPES.get(image.format, "application/octet-stream"))
        response["Content-Disposition"] = f'inline; filename="{image.sha256}.{image.file.name.rsplit(".", 1)[-1]}"'
        response["Cache-Control"] = "private, max-age=86400"
        return response


# --- Defect classes --------------------------------------------------------------------------

class DefectClassListCreate(ApiView):
    role_checks = {"GET": ReadRole, "POST": LabelRole}
    throttle_scopes = {"POST": "write"}
    parser_classes = [BoundedJSONParser, BoundedFormParser, MultiPartParser]
    pagination_class = None

    @extend_schema(operation_id="classes_list", responses={200: DefectClassOutput(many=True), **COMMON_ERRORS})
    def get(self, request):
        classes = catalog_selectors.defect_classes_with_readiness(classes=catalog_selectors.defect_class_list())
        return Response(self.output(DefectClassOutput, classes, many=True))

    @extend_schema(operation_id="classes_create", request=DefectClassInput,
                   responses={201: DefectClassOutput, 400: ERROR, 409: ERROR, **COMMON_ERRORS})
    def post(self, request):
        payload = DefectClassInput(data=request.data)
        payload.is_valid(raise_exception=True)
        defect_class = defect_class_create(**payload.validated_data)
        [defect_class] = catalog_selectors.defect_classes_with_readiness(classes=[defect_class])
        return Response(self.output(DefectClassOutput, defect_class), status=status.HTTP_201_CREATED)
