"""An image's defect boxes: read them with the boxes the active model version found (any role),
change them in versioned all-or-nothing sets (qa, ml_admin). See docs/api.md "Defect boxes"."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from inspections.api.base import COMMON_ERRORS, ERROR, ApiView, _image_or_404
from inspections.api.parsers import BoundedJSONParser
from inspections.api.permissions import LabelRole, ReadRole
from inspections.catalog import selectors as catalog_selectors
from inspections.catalog.services.boxes import box_payload
from inspections.errors import ApplicationError
from inspections.review.services.boxes import MAX_CHANGES, boxes_change, predicted_boxes

HISTORY_LIMIT = 500

BOX_FIELDS = {
    "id": serializers.IntegerField(),
    "label": serializers.CharField(),
    "box": serializers.ListField(child=serializers.FloatField(), help_text="[x0, y0, x1, y1], fractions 0..1."),
    "box_px": serializers.ListField(child=serializers.FloatField(), help_text="The same box in image pixels."),
    "source": serializers.CharField(help_text="import, person or model."),
    "model_version": serializers.IntegerField(allow_null=True),
    "created_by": serializers.CharField(allow_null=True),
    "created_at": serializers.DateTimeField(),
    "updated_at": serializers.DateTimeField(),
}
PREDICTED_FIELDS = {
    "label": serializers.CharField(),
    "box": serializers.ListField(child=serializers.FloatField(), help_text="[x0, y0, x1, y1], fractions 0..1."),
    "box_px": serializers.ListField(child=serializers.FloatField(), help_text="The same box in image pixels."),
    "score": serializers.FloatField(),
    "model_version": serializers.IntegerField(help_text="Send it as from_model to accept the box."),
    "accepted": serializers.BooleanField(help_text="A person accepted this box already (it may have been "
                                                   "moved or deleted since)."),
    "box_threshold": serializers.FloatField(help_text="The class's box threshold on the version "
                                                      "(model-versions/{id}/box-thresholds/)."),
    "above_threshold": serializers.BooleanField(help_text="score >= box_threshold. The review view hides the "
                                                          "others, and accepting one is refused "
                                                          "(below_box_threshold)."),
}
BOXES_OUTPUT = inline_serializer("ImageBoxes", {
    "image": serializers.IntegerField(),
    "width": serializers.IntegerField(),
    "height": serializers.IntegerField(),
    "boxes_version": serializers.IntegerField(help_text="Send it back as expected_version with the next change."),
    "boxes": inline_serializer("DefectBox", BOX_FIELDS, many=True),
    "predicted": inline_serializer("PredictedBox", PREDICTED_FIELDS, many=True,
                                   help_text="The boxes of the image's prediction by the active model version, "
                                             "best first; empty without one or without a detection head."),
    "added": serializers.ListField(child=serializers.IntegerField(), required=False,
                                   help_text="After a POST: the ids of the boxes added, in the order of the changes."),
    "history": serializers.JSONField(required=False, help_text="With ?history=true: the changes, newest first."),
})
BOXES_INPUT = inline_serializer("ImageBoxesInput", {
    "expected_version": serializers.IntegerField(help_text="The boxes_version you saw; another one answers 409."),
    "units": serializers.ChoiceField(["fraction", "pixels"], required=False, default="fraction"),
    "changes": serializers.JSONField(help_text=f"Up to {MAX_CHANGES} of {{op: add, label, box}}, "
                                               "{op: move, id, box}, {op: relabel, id, label}, {op: delete, id}; "
                                               "{op: add, label, box, from_model: VERSION_ID} accepts a box "
                                               "that version found (one of predicted)."),
})
HISTORY = OpenApiParameter("history", OpenApiTypes.BOOL, required=False,
                           description="true: add the history of people's changes (newest first).")


def _history(image) -> list[dict]:
    return [{"box": c.box_id, "action": c.action, "before": c.before, "after": c.after,
             "changed_by": c.changed_by.username, "changed_at": c.changed_at, "boxes_version": c.boxes_version}
            for c in catalog_selectors.box_history_for_image(image=image)[:HISTORY_LIMIT]]


def boxes_body(image, *, history: bool = False) -> dict:
    body = {"image": image.pk, "width": image.width, "height": image.height, "boxes_version": image.boxes_version,
            "boxes": [box_payload(box, image) for box in catalog_selectors.box_list_for_image(image=image)],
            "predicted": predicted_boxes(image=image)}
    if history:
        body["history"] = _history(image)
    return body


class ImageBoxes(ApiView):
    role_checks = {"GET": ReadRole, "POST": LabelRole}
    throttle_scopes = {"POST": "write"}
    parser_classes = [BoundedJSONParser]
    pagination_class = None

    @extend_schema(operation_id="images_boxes_list", parameters=[HISTORY],
                   description="The image's current defect boxes (fractions and pixels), boxes_version and "
                               "the boxes the active model version found (predicted).",
                   responses={200: BOXES_OUTPUT, 404: ERROR, **COMMON_ERRORS})
    def get(self, request, image_id: int):
        image = _image_or_404(image_id)
        history = request.query_params.get("history", "").lower() in ("1", "true", "yes")
        return Response(boxes_body(image, history=history))

    @extend_schema(operation_id="images_boxes_change", request=BOXES_INPUT,
                   description="Add, move, relabel or delete boxes, all or nothing, against the boxes_version "
                               "you saw (409 conflict when stale). Answers the boxes as they are now, the new "
                               "version and the ids of the boxes added.",
                   responses={200: BOXES_OUTPUT, 400: ERROR, 404: ERROR, 409: ERROR, **COMMON_ERRORS})
    def post(self, request, image_id: int):
        image = _image_or_404(image_id)
        body = request.data if isinstance(request.data, dict) else None
        if body is None:
            raise ApplicationError("Send {\"expected_version\": N, \"changes\": [...]}.", code="invalid",
                                   details={"changes": ["This field is required."]})
        result = boxes_change(image=image, changes=body.get("changes"), expected_version=body.get("expected_version"),
                              actor=request.user, units=body.get("units", "fraction"))
        return Response({**boxes_body(image), "added": result["added"]}, status=status.HTTP_200_OK)
