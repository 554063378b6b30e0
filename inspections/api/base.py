"""What every API view shares: the base view, the common error answers, lookups that 404."""

from __future__ import annotations

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated, NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.renderers import BaseRenderer, JSONRenderer

from inspections.api.permissions import ReadRole, RolePerMethod
from inspections.api.throttling import (
    unauthenticated_request_count,
    unauthenticated_throttle_check,
)
from inspections.registry import selectors as registry_selectors
from inspections.review import selectors as review_selectors

ERROR = inline_serializer(
    "Error",
    {"error": inline_serializer("ErrorDetail", {
        "code": serializers.CharField(), "message": serializers.CharField(), "details": serializers.JSONField(),
    })},
)
COMMON_ERRORS = {401: ERROR, 403: ERROR, 429: ERROR}
REPEATED_PARAMETER = "Give this parameter once."


def query_parameters_once(query_params) -> None:
    """Refuse a query string that names a parameter more than once (``?split=train&split=test``).

    Such a request is ambiguous, and a serializer reading a QueryDict silently takes the last
    value; refusing it is the answer ``images/`` always gave: 400 ``invalid`` with, per repeated
    parameter, ``"Give this parameter once."``. No endpoint takes a repeated query parameter."""
    repeated = sorted(name for name in query_params if len(query_params.getlist(name)) > 1)
    if repeated:
        raise serializers.ValidationError({name: [REPEATED_PARAMETER] for name in repeated})


class ApiView(GenericAPIView):
    permission_classes = [RolePerMethod]
    role_checks: dict = {"GET": ReadRole}
    throttle_scopes: dict = {}

    def initial(self, request, *args, **kwargs):
        # After authentication, permissions and throttles, as a view's own query serializer would
        # run; here once for every endpoint, so none can forget it.
        super().initial(request, *args, **kwargs)
        if not request.user.is_authenticated:  # a view that lets anonymous callers in
            unauthenticated_request_count(request)
        query_parameters_once(request.query_params)

    def perform_authentication(self, request):
        # An address over its budget of unauthenticated requests is refused before its
        # credentials cost a lookup.
        unauthenticated_throttle_check(request)
        super().perform_authentication(request)

    def handle_exception(self, exc):
        if isinstance(exc, (AuthenticationFailed, NotAuthenticated)):
            unauthenticated_request_count(self.request)
        return super().handle_exception(exc)

    def output(self, serializer_class, instance, **kwargs):
        return serializer_class(instance, context=self.get_serializer_context(), **kwargs).data


class _ImageBytesRenderer(BaseRenderer):
    """Lets a client that asks for ``image/*`` reach the file view (the body is the file itself)."""

    media_type = "image/*"
    format = "image"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return JSONRenderer().render(data) if isinstance(data, (dict, list)) else data


CONTENT_TYPES = {"BMP": "image/bmp", "PNG": "image/png", "JPEG": "image/jpeg", "TIFF": "image/tiff"}


def _image_or_404(image_id: int):
    image = review_selectors.image_detail(image_id=image_id)
    if image is None:
        raise NotFound(f"No image with id {image_id}.")
    return image


def _model_version_or_404(version_id: int):
    version = registry_selectors.model_version_list().filter(pk=version_id).first()
    if version is None:
        raise NotFound(f"No model version with id {version_id}.")
    return version


def _training_run_or_404(run_id: int):
    run = registry_selectors.training_run_list().filter(pk=run_id).first()
    if run is None:
        raise NotFound(f"No training run with id {run_id}.")
    return run
