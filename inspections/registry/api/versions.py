"""Model versions (list, detail, promote, roll back) and training runs (start, list, detail, cancel)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from inspections.api.base import COMMON_ERRORS, ERROR, ApiView, _model_version_or_404, _training_run_or_404
from inspections.api.parsers import BoundedFormParser, BoundedJSONParser
from inspections.api.permissions import ModelAdminRole, ReadRole
from inspections.registry import selectors as registry_selectors
from inspections.registry.api.serializers import (
    ModelVersionOutput,
    PromoteInput,
    RollbackInput,
    TrainingRunDetailOutput,
    TrainingRunInput,
    TrainingRunOutput,
)
from inspections.registry.services.model_versions import model_version_promote, model_version_rollback
from inspections.registry.services.training import training_run_cancel, training_run_start

# --- Model versions --------------------------------------------------------------------------

class ModelVersionList(ApiView):
    @extend_schema(operation_id="model_versions_list", responses={200: ModelVersionOutput(many=True), **COMMON_ERRORS})
    def get(self, request):
        page = self.paginate_queryset(registry_selectors.model_version_list())
        return self.get_paginated_response(self.output(ModelVersionOutput, page, many=True))


class ModelVersionDetail(ApiView):
    @extend_schema(operation_id="model_versions_retrieve", responses={200: ModelVersionOutput, 404: ERROR,
                                                                      **COMMON_ERRORS})
    def get(self, request, version_id: int):
        return Response(self.output(ModelVersionOutput, _model_version_or_404(version_id)))


class ModelVersionPromote(ApiView):
    role_checks = {"POST": ModelAdminRole}
    throttle_scopes = {"POST": "write"}
    parser_classes = [BoundedJSONParser, BoundedFormParser]

    @extend_schema(
        operation_id="model_versions_promote", request=PromoteInput,
        description="Make this version the active one (atomically; the previous one is retired). "
                    "A version the promotion gate refused answers 409 `gate_refused` (the gate's reasons in "
                    "`details.reasons`; nothing changes) unless the body has `override_reason`, which is then "
                    "recorded with the promotion. `POST model-versions/rollback/` undoes it.",
        responses={200: ModelVersionOutput, 400: ERROR, 404: ERROR, 409: ERROR, **COMMON_ERRORS},
    )
    def post(self, request, version_id: int):
        options = PromoteInput(data=request.data)
        options.is_valid(raise_exception=True)
        version = model_version_promote(version=_model_version_or_404(version_id), actor=request.user,
                                        repredict_review_queue=options.validated_data["repredict_review_queue"],
                                        override_reason=options.validated_data.get("override_reason"))
        return Response(self.output(ModelVersionOutput, version))


class ModelVersionRollback(ApiView):
    role_checks = {"POST": ModelAdminRole}
    throttle_scopes = {"POST": "write"}
    parser_classes = [BoundedJSONParser, BoundedFormParser]

    @extend_schema(
        operation_id="model_versions_rollback", request=RollbackInput,
        description="Re-activate the version that was active before the current one of its kind (the classifier "
                    "unless the body says `{\"kind\": \"anomaly\"}`); answers with it.",
        responses={200: ModelVersionOutput, 400: ERROR, 409: ERROR, **COMMON_ERRORS},
    )
    def post(self, request):
        options = RollbackInput(data=request.data)
        options.is_valid(raise_exception=True)
        version = model_version_rollback(actor=request.user, kind=options.validated_data["kind"])
        return Response(self.output(ModelVersionOutput, version))


# --- Training runs ---------------------------------------------------------------------------

class TrainingRunListCreate(ApiView):
    role_checks = {"GET": ReadRole, "POST": ModelAdminRole}
    throttle_scopes = {"POST": "write"}
    parser_classes = [BoundedJSONParser]

    @extend_schema(operation_id="training_runs_list", responses={200: TrainingRunOutput(many=True), **COMMON_ERRORS})
    def get(self, request):
        page = self.paginate_queryset(registry_selectors.training_run_list())
        return self.get_paginated_response(self.output(TrainingRunOutput, page, many=True))

    @extend_schema(
        operation_id="training_runs_create", request=TrainingRunInput,
        description=(
            "Start a training run (ml_admin) on the labelled images as they are now (frozen in a dataset "
            "snapshot). One run at a time: while another is queued or running the answer is 409 "
            "`training_in_progress` (nothing is queued). All parameters are optional. `\"kind\": \"anomaly\"` "
            "trains an anomaly model from the images labelled no_defect instead of a classifier."
        ),
        responses={202: TrainingRunDetailOutput, 400: ERROR, 409: ERROR, **COMMON_ERRORS},
    )
    def post(self, request):
        payload = TrainingRunInput(data=request.data)
        payload.is_valid(raise_exception=True)
        run = training_run_start(requested_by=request.user, params=payload.validated_data["parameters"],
                                 kind=payload.validated_data["kind"])
        return Response(self.output(TrainingRunDetailOutput, run), status=status.HTTP_202_ACCEPTED)


class TrainingRunDetail(ApiView):
    @extend_schema(operation_id="training_runs_retrieve", responses={200: TrainingRunDetailOutput, 404: ERROR,
                                                                     **COMMON_ERRORS})
    def get(self, request, run_id: int):
        return Response(self.output(TrainingRunDetailOutput, _training_run_or_404(run_id)))


class TrainingRunCancel(ApiView):
    role_checks = {"POST": ModelAdminRole}
    throttle_scopes = {"POST": "write"}

    @extend_schema(operation_id="training_runs_cancel", request=None,
                   description="Cancel a training run (ml_admin): a queued run at once, a running one at its next "
                               "progress report. A finished run answers 409 `not_cancellable`.",
                   responses={200: TrainingRunDetailOutput, 404: ERROR, 409: ERROR, **COMMON_ERRORS})
    def post(self, request, run_id: int):
        run = training_run_cancel(run=_training_run_or_404(run_id), actor=request.user)
        return Response(self.output(TrainingRunDetailOutput, run))
