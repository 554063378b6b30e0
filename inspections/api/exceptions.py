"""The one exception handler of the API: every error leaves as
``{"error": {"code": ..., "message": ..., "details": ...}}``."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from inspections.api.authentication import not_authenticated_explained
from inspections.errors import (
    ApplicationError,
    Conflict,
    NotFound,
    PermissionDenied,
    StaleRevision,
    TooLarge,
    Unavailable,
    error_body,
)

logger = logging.getLogger("inspections.api")

# The HTTP status of each kind of refusal: decided here, at the edge, for the API and the pages'
# JSON answers alike. A plain ApplicationError is a 400.
ERROR_STATUS: tuple[tuple[type[ApplicationError], int], ...] = (
    (NotFound, 404), (PermissionDenied, 403), (Conflict, 409), (StaleRevision, 412), (TooLarge, 413),
    (Unavailable, 503),
)


def http_status(error: ApplicationError) -> int:
    return next((status for kind, status in ERROR_STATUS if isinstance(error, kind)), 400)


def api_exception_handler(exc: Exception, context: dict) -> Response:
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.details), status=http_status(exc))
    if isinstance(exc, exceptions.NotAuthenticated):
        exc = not_authenticated_explained(exc, context.get("request"))
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(detail=_django_validation_detail(exc))
    elif isinstance(exc, Http404):
        # DRF converts these too, but only inside its handler; the body below needs the DRF form
        # (an unknown ?format= raises Http404 from content negotiation).
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    elif isinstance(exc, RequestDataTooBig):
        return Response(error_body("request_too_large", str(exc) or "The request is too large."),
                        status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    elif isinstance(exc, SuspiciousOperation):
        # Too many fields or files, malformed multipart boundaries and the like.
        return Response(error_body("bad_request", str(exc) or "The request is malformed."), status=400)

    response = drf_exception_handler(exc, context)
    if response is None:
        view = context.get("view")
        logger.exception("Unhandled error in %s", type(view).__name__ if view else "the API", exc_info=exc)
        return Response(error_body("server_error", "Something went wrong on the server; it has been logged."),
                        status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    response.data = _body_for(exc)
    return response


def _body_for(exc: exceptions.APIException) -> dict:
    if isinstance(exc, exceptions.ValidationError):
        return error_body("invalid", "The request is not valid; see details.", exc.detail)
    if isinstance(exc, exceptions.Throttled):
        return error_body("throttled", str(exc.detail), {"retry_after_s": exc.wait})
    codes = exc.get_codes()
    code = codes if isinstance(codes, str) else exc.default_code
    if isinstance(exc.detail, (dict, list)):
        return error_body(code, str(exc.default_detail), exc.detail)
    return error_body(code, str(exc.detail))


def _django_validation_detail(exc: DjangoValidationError):
    if hasattr(exc, "error_dict"):
        return exc.message_dict
    return {"non_field_errors": exc.messages}


@csrf_exempt  # it changes nothing; without this a POST got the CSRF failure page instead of the 404
def api_not_found(request, *args, **kwargs) -> JsonResponse:
    """Unknown paths under the API answer in the API's error shape, not with an HTML page."""
    return JsonResponse(error_body("not_found", f"No API endpoint at {request.path}."), status=404)
