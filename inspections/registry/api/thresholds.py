"""A model version's per-class decision thresholds: read them with their validation curves (any
role), change them (ml_admin; audited, effective in the workers for the next batch)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from inspections.api.base import COMMON_ERRORS, ERROR, ApiView, _model_version_or_404
from inspections.api.parsers import BoundedJSONParser
from inspections.api.permissions import ModelAdminRole, ReadRole
from inspections.errors import ApplicationError
from inspections.registry.services.thresholds import threshold_history, version_thresholds, version_thresholds_set

HISTORY_LIMIT = 100

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
    "history": inline_serializer("ThresholdChange", {
        "class_name": serializers.CharField(), "old": serializers.FloatField(), "new": serializers.FloatField(),
        "changed_by": serializers.CharField(allow_null=True), "changed_at": serializers.DateTimeField(),
        "note": serializers.CharField(), "revision": serializers.IntegerField(),
    }, many=True),
})
THRESHOLDS_INPUT = inline_serializer("ModelVersionThresholdsInput", {
    "thresholds": serializers.DictField(child=serializers.FloatField(min_value=0, max_value=1),
                                        help_text="Class name -> threshold (0..1); classes not named keep theirs."),
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
        "history": [{"class_name": h.class_name, "old": h.old_threshold, "new": h.new_threshold,
                     "changed_by": h.changed_by.username if h.changed_by else None, "changed_at": h.changed_at,
                     "note": h.note, "revision": h.revision}
                    for h in threshold_history(version=version)[:HISTORY_LIMIT]],
    }


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
        body = request.data if isinstance(request.data, dict) else {}
        if "thresholds" not in body:
            raise ApplicationError("Send {\"thresholds\": {class name: threshold, ...}, \"note\": \"...\"}.",
                                   code="invalid_thresholds", details={"thresholds": ["This field is required."]})
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
