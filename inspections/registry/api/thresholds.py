"""A model version's per-class thresholds: the decision thresholds, read with their validation curves,
and the box thresholds (the model's boxes scoring below them are hidden in the review view and
cannot be accepted). Any role reads them; ml_admin changes them, audited, all or nothing."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from inspections.api.base import COMMON_ERRORS, ERROR, ApiView, _model_version_or_404
from inspections.api.parsers import BoundedJSONParser
from inspections.api.permissions import ModelAdminRole, ReadRole
from inspections.errors import ApplicationError
from inspections.registry.models import ThresholdKind
from inspections.registry.services.thresholds import (
    threshold_history,
    version_box_thresholds,
    version_box_thresholds_set,
    version_thresholds,
    version_thresholds_set,
)

HISTORY_LIMIT = 100

HISTORY_FIELDS = {
    "class_name": serializers.CharField(), "old": serializers.FloatField(), "new": serializers.FloatField(),
    "changed_by": serializers.CharField(allow_null=True), "changed_at": serializers.DateTimeField(),
    "note": serializers.CharField(), "revision": serializers.IntegerField(),
}
THRESHOLDS_OUTPUT = inline_serializer("ModelVersionThresholds", {
    "version": serializers.IntegerField(),
    "revision": serializers.IntegerField(help_text="Send it back as If-Match to refuse overwriting a newer change."),
    "global_threshold": serializers.FloatField(help_text="The confidence threshold the version was trained with."),
    "curve_source": serializers.CharField(allow_null=True, help_text="training (validation split), predictions "
                                          "(this version's predictions of validation images) or null: no curve."),
    "curve_images": serializers.IntegerField(),
    "classes": inline_serializer("ClassThreshold", {
        "name": serializers.CharField(), "threshold": serializers.FloatField(), "default": serializers.FloatField(),
        "curve": serializers.JSONField(allow_null=True, help_text="thresholds, precision, auto_accept (lists), predicted."),
    }, many=True),
    "history": inline_serializer("ThresholdChange", HISTORY_FIELDS, many=True),
})
BOX_THRESHOLDS_OUTPUT = inline_serializer("ModelVersionBoxThresholds", {
    "version": serializers.IntegerField(),
    "revision": serializers.IntegerField(help_text="Send it back as If-Match to refuse overwriting a newer change."),
    "default": serializers.FloatField(help_text="The score from which the detection shows a box by default: every "
                                                "class not set here uses it."),
    "classes": inline_serializer("ClassBoxThreshold", {
        "name": serializers.CharField(), "threshold": serializers.FloatField(), "default": serializers.FloatField(),
    }, many=True),
    "history": inline_serializer("BoxThresholdChange", HISTORY_FIELDS, many=True),
})
THRESHOLDS_INPUT = inline_serializer("ModelVersionThresholdsInput", {
    "thresholds": serializers.DictField(child=serializers.FloatField(min_value=0, max_value=1),
                                        help_text="Class name -> threshold (0..1); classes not named keep theirs."),
    "note": serializers.CharField(required=False, allow_blank=True, max_length=500),
})
BOX_THRESHOLDS_INPUT = inline_serializer("ModelVersionBoxThresholdsInput", {
    "thresholds": serializers.DictField(child=serializers.FloatField(min_value=0, max_value=1),
                                        help_text="Class name -> box threshold (0..1); classes not named keep theirs."),
    "note": serializers.CharField(required=False, allow_blank=True, max_length=500),
})
IF_MATCH = OpenApiParameter("If-Match", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
                            description="The revision last read; a newer one answers 412 thresholds_changed.")


def thresholds_payload(version) -> dict:
    state = version_thresholds(version=version)
    return {
        "version": version.pk, "revision": state.revision, "global_threshold": state.global_threshold,
        "curve_source": state.curve_source, "curve_images": state.curve_images,
        "classes": [{"name": c.name, "threshold": c.threshold, "default": c.default, "curve": c.curve}
                    for c in state.classes],
        "history": _history(version, ThresholdKind.DECISION),
    }


def box_thresholds_payload(version) -> dict:
    state = version_box_thresholds(version=version)
    return {
        "version": version.pk, "revision": state.revision, "default": state.default,
        "classes": [{"name": c.name, "threshold": c.threshold, "default": c.default} for c in state.classes],
        "history": _history(version, ThresholdKind.BOX),
    }


def _history(version, kind: str) -> list[dict]:
    return [{"class_name": h.class_name, "old": h.old_threshold, "new": h.new_threshold,
             "changed_by": h.changed_by.username if h.changed_by else None, "changed_at": h.changed_at,
             "note": h.note, "revision": h.revision}
            for h in threshold_history(version=version, kind=kind)[:HISTORY_LIMIT]]


def _thresholds_body(request) -> dict:
    body = request.data if isinstance(request.data, dict) else {}
    if "thresholds" not in body:
        raise ApplicationError("Send {\"thresholds\": {class name: threshold, ...}, \"note\": \"...\"}.",
                               code="invalid_thresholds", details={"thresholds": ["This field is required."]})
    return body


def _expected_revision(request) -> int | None:
    header = request.headers.get("If-Match", "").strip()
    if not header or header == "*":
        return None
    try:
        return int(header.removeprefix("W/").strip('"'))
    except ValueError:
        raise ApplicationError("If-Match must be the thresholds' revision number.", code="invalid_if_match",
                               details={"If-Match": [header[:40]]}) from None


class ModelVersionThresholds(ApiView):
    role_checks = {"GET": ReadRole, "PUT": ModelAdminRole, "PATCH": ModelAdminRole}
    throttle_scopes = {"PUT": "write", "PATCH": "write"}
    parser_classes = [BoundedJSONParser]
    pagination_class = None

    @extend_schema(operation_id="model_versions_thresholds_read",
                   description="Per class: the decision threshold (below it a prediction of that class goes to "
                               "review), its default and the validation curve (precision of the auto-accepted "
                               "predictions and the share auto-accepted, against the threshold); the change history.",
                   responses={200: THRESHOLDS_OUTPUT, 404: ERROR, **COMMON_ERRORS})
    def get(self, request, version_id: int):
        version = _model_version_or_404(version_id)
        return self._answer(version)

    @extend_schema(operation_id="model_versions_thresholds_update", request=THRESHOLDS_INPUT, parameters=[IF_MATCH],
                   description="Set thresholds of the classes named (ml_admin); the others keep theirs. All or "
                               "nothing; each changed class is audited; the workers use it from their next batch.",
                   responses={200: THRESHOLDS_OUTPUT, 400: ERROR, 404: ERROR, 412: ERROR, **COMMON_ERRORS})
    def put(self, request, version_id: int):
        version = _model_version_or_404(version_id)
        body = _thresholds_body(request)
        version = version_thresholds_set(version=version, thresholds=body["thresholds"], note=body.get("note", ""),
                                         actor=request.user, expected_revision=_expected_revision(request))
        return self._answer(version)

    @extend_schema(operation_id="model_versions_thresholds_partial_update", request=THRESHOLDS_INPUT,
                   parameters=[IF_MATCH], description="The same as PUT: only the classes named change.",
                   responses={200: THRESHOLDS_OUTPUT, 400: ERROR, 404: ERROR, 412: ERROR, **COMMON_ERRORS})
    def patch(self, request, version_id: int):
        return self.put(request, version_id)

    def _answer(self, version) -> Response:
        response = Response(thresholds_payload(version))
        response["ETag"] = f'"{version.thresholds_revision}"'
        return response


class ModelVersionBoxThresholds(ApiView):
    role_checks = {"GET": ReadRole, "PUT": ModelAdminRole, "PATCH": ModelAdminRole}
    throttle_scopes = {"PUT": "write", "PATCH": "write"}
    parser_classes = [BoundedJSONParser]
    pagination_class = None

    @extend_schema(operation_id="model_versions_box_thresholds_read",
                   description="Per class: the box threshold (the model's boxes of that class scoring below it are "
                               "hidden in the review view and cannot be accepted) and its default; the change "
                               "history.",
                   responses={200: BOX_THRESHOLDS_OUTPUT, 404: ERROR, **COMMON_ERRORS})
    def get(self, request, version_id: int):
        return self._answer(_model_version_or_404(version_id))

    @extend_schema(operation_id="model_versions_box_thresholds_update", request=BOX_THRESHOLDS_INPUT,
                   parameters=[IF_MATCH],
                   description="Set box thresholds of the classes named (ml_admin); the others keep theirs. All or "
                               "nothing; each changed class is audited.",
                   responses={200: BOX_THRESHOLDS_OUTPUT, 400: ERROR, 404: ERROR, 412: ERROR, **COMMON_ERRORS})
    def put(self, request, version_id: int):
        version = _model_version_or_404(version_id)
        body = _thresholds_body(request)
        version = version_box_thresholds_set(version=version, thresholds=body["thresholds"],
                                             note=body.get("note", ""), actor=request.user,
                                             expected_revision=_expected_revision(request))
        return self._answer(version)

    @extend_schema(operation_id="model_versions_box_thresholds_partial_update", request=BOX_THRESHOLDS_INPUT,
                   parameters=[IF_MATCH], description="The same as PUT: only the classes named change.",
                   responses={200: BOX_THRESHOLDS_OUTPUT, 400: ERROR, 404: ERROR, 412: ERROR, **COMMON_ERRORS})
    def patch(self, request, version_id: int):
        return self.put(request, version_id)

    def _answer(self, version) -> Response:
        response = Response(box_thresholds_payload(version))
        response["ETag"] = f'"{version.box_thresholds_revision}"'
        return response
