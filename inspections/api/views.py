"""API views: parse and validate input, call one service or selector, shape the output.

Each view names its role check per method (``role_checks``) and its throttle scope per method
(``throttle_scopes``); see ``permissions.py`` and ``throttling.py``.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from inspections.catalog import selectors as catalog_selectors
from inspections.catalog.services.classes import defect_class_create
from inspections.catalog.services.images import image_upload
from inspections.errors import ApplicationError, error_body
from inspections.queueing import inference_enqueue
from inspections.registry import selectors as registry_selectors
from inspections.registry.services.model_versions import (
    model_version_promote,
    model_version_rollback,
)
from inspections.registry.services.training import (
    training_run_cancel,
    training_run_start,
)
from inspections.review import prediction_events
from inspections.review import selectors as review_selectors
from inspections.review.services.reviews import (
    review_exclude,
    review_include,
    review_submit,
)

from . import serializers as s
from .filters import ImageFilters
from .parsers import BoundedFormParser, BoundedJSONParser, UploadSizeLimitHandler
from .permissions import LabelRole, ModelAdminRole, ReadRole, RolePerMethod, UploadRole
from .upload_output import new_image_output

ERROR = inline_serializer(
    "Error",
    {"error": inline_serializer("ErrorDetail", {
        "code": serializers.CharField(), "message": serializers.CharField(), "details": serializers.JSONField(),
    })},
)
COMMON_ERRORS = {401: ERROR, 403: ERROR, 429: ERROR}
UPLOAD_RESPONSE = PolymorphicProxySerializer(
    component_name="UploadResponse", serializers=[s.ImageOutput, s.MultiUploadOutput], resource_type_field_name=None,
)


class ApiView(GenericAPIView):
    permission_classes = [RolePerMethod]
    role_checks: dict = {"GET": ReadRole}
    throttle_scopes: dict = {}

    def output(self, serializer_class, instance, **kwargs):
        return serializer_class(instance, context=self.get_serializer_context(), **kwargs).data


# --- Images ----------------------------------------------------------------------------------

class ImageListCreate(ApiView):
    role_checks = {"GET": ReadRole, "POST": UploadRole}
    throttle_scopes = {"POST": "upload"}
    parser_classes = [MultiPartParser, BoundedFormParser]

    def initial(self, request, *args, **kwargs):
        # Before authentication: with a session, the CSRF check may already read the body.
        request._request.upload_handlers.insert(0, UploadSizeLimitHandler(request._request))
        super().initial(request, *args, **kwargs)

    @extend_schema(operation_id="images_list", parameters=[ImageFilters],
                   responses={200: s.ImageOutput(many=True), 400: ERROR, **COMMON_ERRORS})
    def get(self, request):
        filters = ImageFilters(data=request.query_params)
        filters.is_valid(raise_exception=True)
        page = self.paginate_queryset(review_selectors.image_list(filters=filters.validated_data))
        return self.get_paginated_response(self.output(s.ImageOutput, page, many=True))

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
            "answer is 503 `too_many_waiters` with `Retry-After` and nothing is stored."
        ),
        parameters=[s.UploadQuery],
        request={"multipart/form-data": s.UploadInput},
        responses={201: UPLOAD_RESPONSE, 200: UPLOAD_RESPONSE, 400: ERROR, 413: ERROR, 503: ERROR, **COMMON_ERRORS},
    )
    def post(self, request):
        wait = 0.0
        if "wait" in request.query_params:  # the usual upload has no query string: no serializer for it
            query = s.UploadQuery(data=request.query_params)
            query.is_valid(raise_exception=True)
            wait = query.validated_data["wait"]
        if not wait:
            return self._post(request, deadline=0.0)
        try:
            with prediction_events.waiter_slot():  # taken before anything is stored: a 503 stores nothing
                return self._post(request, deadline=time.monotonic() + wait)
        except prediction_events.TooManyWaiters:
            body = error_body("too_many_waiters", "Too many uploads are waiting for their predictions on this server; "
                              "retry shortly, or upload without ?wait and read the prediction later.")
            return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "1"})

    def _post(self, request, *, deadline: float):
        payload = s.UploadInput(data=request.data)
        payload.is_valid(raise_exception=True)
        files, meta = payload.validated_data["file"], {
            "source": payload.validated_data["source"], "external_id": payload.validated_data["external_id"],
        }
        if len(files) == 1:
            result = self._upload(files[0], **meta)
            image = self._after_wait([result], deadline)[result.image.pk]
            code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
            body = self._image_answer(image)
            return Response(body, status=code, headers={"Location": body["url"]})
        return self._multi_upload(files, meta, deadline)

    def _multi_upload(self, files: list, meta: dict, deadline: float) -> Response:
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
        return Response({"results": results}, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    def _image_answer(self, image) -> dict:
        # An image with no prediction and no label yet is answered without the serializer (upload_output.py).
        return new_image_output(image, request=self.request) or self.output(s.ImageOutput, image)

    def _upload(self, uploaded, *, source: str, external_id: str, enqueue: bool = True):
        limit = settings.STEELQC_MAX_UPLOAD_BYTES
        if uploaded.size > limit:
            # Refused before the bytes are read into memory.
            raise ApplicationError(f"The file is {uploaded.size} bytes; the limit is {limit}.",
                                   code="file_too_large", status_code=413)
        return image_upload(
            content=uploaded.read(), filename=uploaded.name or "", uploaded_by=self.request.user,
            source=source, external_id=external_id, enqueue=enqueue,
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
    @extend_schema(operation_id="images_retrieve", responses={200: s.ImageDetailOutput, 404: ERROR, **COMMON_ERRORS})
    def get(self, request, image_id: int):
        return Response(self.output(s.ImageDetailOutput, _image_or_404(image_id)))


class ImageReviews(ApiView):
    role_checks = {"GET": ReadRole, "POST": LabelRole}
    parser_classes = [BoundedJSONParser, BoundedFormParser, MultiPartParser]

    @extend_schema(operation_id="images_reviews_list", responses={200: s.ReviewOutput(many=True), 404: ERROR,
                                                                  **COMMON_ERRORS})
    def get(self, request, image_id: int):
        image = _image_or_404(image_id)
        page = self.paginate_queryset(review_selectors.review_list_for_image(image=image))
        return self.get_paginated_response(self.output(s.ReviewOutput, page, many=True))

    @extend_schema(
        operation_id="images_reviews_create",
        description="Confirm or correct the image's label (`{\"label\": NAME}`), exclude it as not an inspection "
                    "image (`{\"exclude\": true, \"reason\": TEXT}`: it leaves the queue, training and evaluation) "
                    "or undo that (`{\"exclude\": false}`). Each decision is one append-only review. "
                    "`expected_version` (the `label_version` you saw) is required: a stale one gets a 409 with the "
                    "current state instead of overwriting someone else's decision; without it the answer is 400 "
                    "`expected_version_required` unless the body says `\"force\": true`.",
        request=s.ReviewInput,
        responses={201: s.ReviewCreatedOutput, 400: ERROR, 404: ERROR, 409: ERROR, **COMMON_ERRORS},
    )
    def post(self, request, image_id: int):
        image = _image_or_404(image_id)
        payload = s.ReviewInput(data=request.data)
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
        body = {"review": self.output(s.ReviewOutput, review),
                "image": self.output(s.ImageDetailOutput, review_selectors.image_detail(image_id=image.pk))}
        return Response(body, status=status.HTTP_201_CREATED)


class _ImageBytesRenderer(BaseRenderer):
    """Lets a client that asks for ``image/*`` reach the file view (the body is the file itself)."""

    media_type = "image/*"
    format = "image"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return JSONRenderer().render(data) if isinstance(data, (dict, list)) else data


CONTENT_TYPES = {"BMP": "image/bmp", "PNG": "image/png", "JPEG": "image/jpeg", "TIFF": "image/tiff"}


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


def _image_or_404(image_id: int):
    image = review_selectors.image_detail(image_id=image_id)
    if image is None:
        raise NotFound(f"No image with id {image_id}.")
    return image


# --- Defect classes --------------------------------------------------------------------------

class DefectClassListCreate(ApiView):
    role_checks = {"GET": ReadRole, "POST": LabelRole}
    throttle_scopes = {"POST": "write"}
    parser_classes = [BoundedJSONParser, BoundedFormParser, MultiPartParser]
    pagination_class = None

    @extend_schema(operation_id="classes_list", responses={200: s.DefectClassOutput(many=True), **COMMON_ERRORS})
    def get(self, request):
        return Response(self.output(s.DefectClassOutput, catalog_selectors.defect_class_list(), many=True))

    @extend_schema(operation_id="classes_create", request=s.DefectClassInput,
                   responses={201: s.DefectClassOutput, 400: ERROR, 409: ERROR, **COMMON_ERRORS})
    def post(self, request):
        payload = s.DefectClassInput(data=request.data)
        payload.is_valid(raise_exception=True)
        defect_class = defect_class_create(**payload.validated_data)
        return Response(self.output(s.DefectClassOutput, defect_class), status=status.HTTP_201_CREATED)


# --- Model versions --------------------------------------------------------------------------

class ModelVersionList(ApiView):
    @extend_schema(operation_id="model_versions_list", responses={200: s.ModelVersionOutput(many=True), **COMMON_ERRORS})
    def get(self, request):
        page = self.paginate_queryset(registry_selectors.model_version_list())
        return self.get_paginated_response(self.output(s.ModelVersionOutput, page, many=True))


class ModelVersionDetail(ApiView):
    @extend_schema(operation_id="model_versions_retrieve", responses={200: s.ModelVersionOutput, 404: ERROR,
                                                                      **COMMON_ERRORS})
    def get(self, request, version_id: int):
        return Response(self.output(s.ModelVersionOutput, _model_version_or_404(version_id)))


class ModelVersionPromote(ApiView):
    role_checks = {"POST": ModelAdminRole}
    throttle_scopes = {"POST": "write"}
    parser_classes = [BoundedJSONParser, BoundedFormParser]

    @extend_schema(
        operation_id="model_versions_promote", request=s.PromoteInput,
        description="Make this version the active one (atomically; the previous one is retired). "
                    "`POST model-versions/rollback/` undoes it.",
        responses={200: s.ModelVersionOutput, 400: ERROR, 404: ERROR, 409: ERROR, **COMMON_ERRORS},
    )
    def post(self, request, version_id: int):
        options = s.PromoteInput(data=request.data)
        options.is_valid(raise_exception=True)
        version = model_version_promote(version=_model_version_or_404(version_id), actor=request.user,
                                        repredict_review_queue=options.validated_data["repredict_review_queue"])
        return Response(self.output(s.ModelVersionOutput, version))


class ModelVersionRollback(ApiView):
    role_checks = {"POST": ModelAdminRole}
    throttle_scopes = {"POST": "write"}

    @extend_schema(
        operation_id="model_versions_rollback", request=None,
        description="Re-activate the version that was active before the current one; answers with it.",
        responses={200: s.ModelVersionOutput, 400: ERROR, 409: ERROR, **COMMON_ERRORS},
    )
    def post(self, request):
        version = model_version_rollback(actor=request.user)
        return Response(self.output(s.ModelVersionOutput, version))


def _model_version_or_404(version_id: int):
    version = registry_selectors.model_version_list().filter(pk=version_id).first()
    if version is None:
        raise NotFound(f"No model version with id {version_id}.")
    return version


# --- Training runs ---------------------------------------------------------------------------

class TrainingRunListCreate(ApiView):
    role_checks = {"GET": ReadRole, "POST": ModelAdminRole}
    throttle_scopes = {"POST": "write"}
    parser_classes = [BoundedJSONParser]

    @extend_schema(operation_id="training_runs_list", responses={200: s.TrainingRunOutput(many=True), **COMMON_ERRORS})
    def get(self, request):
        page = self.paginate_queryset(registry_selectors.training_run_list())
        return self.get_paginated_response(self.output(s.TrainingRunOutput, page, many=True))

    @extend_schema(
        operation_id="training_runs_create", request=s.TrainingRunInput,
        description=(
            "Start a training run (ml_admin) on the labelled images as they are now (frozen in a dataset "
            "snapshot). One run at a time: while another is queued or running the answer is 409 "
            "`training_in_progress` (nothing is queued). All parameters are optional."
        ),
        responses={202: s.TrainingRunDetailOutput, 400: ERROR, 409: ERROR, **COMMON_ERRORS},
    )
    def post(self, request):
        payload = s.TrainingRunInput(data=request.data)
        payload.is_valid(raise_exception=True)
        run = training_run_start(requested_by=request.user, params=payload.validated_data["parameters"])
        return Response(self.output(s.TrainingRunDetailOutput, run), status=status.HTTP_202_ACCEPTED)


class TrainingRunDetail(ApiView):
    @extend_schema(operation_id="training_runs_retrieve", responses={200: s.TrainingRunDetailOutput, 404: ERROR,
                                                                     **COMMON_ERRORS})
    def get(self, request, run_id: int):
        return Response(self.output(s.TrainingRunDetailOutput, _training_run_or_404(run_id)))


class TrainingRunCancel(ApiView):
    role_checks = {"POST": ModelAdminRole}
    throttle_scopes = {"POST": "write"}

    @extend_schema(operation_id="training_runs_cancel", request=None,
                   description="Cancel a training run (ml_admin): a queued run at once, a running one at its next "
                               "progress report. A finished run answers 409 `not_cancellable`.",
                   responses={200: s.TrainingRunDetailOutput, 404: ERROR, 409: ERROR, **COMMON_ERRORS})
    def post(self, request, run_id: int):
        run = training_run_cancel(run=_training_run_or_404(run_id), actor=request.user)
        return Response(self.output(s.TrainingRunDetailOutput, run))


def _training_run_or_404(run_id: int):
    run = registry_selectors.training_run_list().filter(pk=run_id).first()
    if run is None:
        raise NotFound(f"No training run with id {run_id}.")
    return run
