"""A version's artefact files and a training run's frozen data set, as downloads."""

from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from inspections.api.base import COMMON_ERRORS, ERROR, ApiView, _model_version_or_404, _training_run_or_404
from inspections.api.downloads import ARTEFACT, ZIP_RESPONSE, _BinaryRenderer, _zip_response
from inspections.api.permissions import ArtefactDownloadRole, ModelAdminRole
from inspections.errors import Unavailable, error_body
from inspections.ops.services.dataset_export import dataset_export_file_name, dataset_snapshot_stream
from inspections.registry.services.artefacts import model_artefact_list, model_artefact_open


class ModelVersionArtefactList(ApiView):
    role_checks = {"GET": ArtefactDownloadRole}
    pagination_class = None

    @extend_schema(operation_id="model_versions_artefacts_list",
                   description="The files of this version that can be downloaded (ml_admin, integrator): the Keras "
                               "model, the verified TFLite serving copy when there is one, a SavedModel zip (produced "
                               "on its first download, size and sha256 null until then), the ONNX copy `model.onnx` "
                               "(built by the training worker on its first download, size and sha256 null until "
                               "then; left out of the list when its check against Keras failed) and its check "
                               "record `onnx_check.json`, classes, config, metrics, the OOD memory and calibration, "
                               "and suspect labels.",
                   responses={200: ARTEFACT, 404: ERROR, **COMMON_ERRORS})
    def get(self, request, version_id: int):
        version = _model_version_or_404(version_id)
        return Response([
            {"name": entry.name, "size": entry.size, "sha256": entry.sha256,
             "url": request.build_absolute_uri(f"{entry.name}/")}
            for entry in model_artefact_list(version=version)
        ])


class ModelVersionArtefactFile(ApiView):
    role_checks = {"GET": ArtefactDownloadRole}
    renderer_classes = [JSONRenderer, _BinaryRenderer]

    @extend_schema(operation_id="model_versions_artefacts_download",
                   responses={(200, "application/octet-stream"): OpenApiResponse(
                       OpenApiTypes.BINARY, description="The file, streamed; its sha256 in the X-Checksum-SHA256 header."),
                       404: OpenApiResponse(ERROR, description="`not_found`, or `artefact_left_out` for an ONNX copy "
                                                               "whose check failed (the reason in the message)."),
                       503: OpenApiResponse(ERROR, description="`artefact_building`: the training worker is building "
                                                               "the ONNX copy; try again after `Retry-After` seconds."),
                       **COMMON_ERRORS})
    def get(self, request, version_id: int, name: str):
        version = _model_version_or_404(version_id)
        try:
            artefact, handle = model_artefact_open(version=version, name=name)
        except Unavailable as error:
            retry_after = error.details.get("retry_after_s")
            return Response(error_body(error.code, error.message, error.details), status=503,
                            headers={"Retry-After": str(retry_after)} if retry_after else None)
        response = FileResponse(handle, as_attachment=True, filename=f"{version.name}-{artefact.name}",
                                content_type=artefact.content_type)
        response["Content-Length"] = str(artefact.size)
        response["X-Checksum-SHA256"] = artefact.sha256
        response["Cache-Control"] = "private, max-age=86400"  # artefacts never change
        return response


class TrainingRunSnapshot(ApiView):
    role_checks = {"GET": ModelAdminRole}
    renderer_classes = [JSONRenderer, _BinaryRenderer]

    @extend_schema(operation_id="training_runs_snapshot",
                   description="The frozen (image, label, split) snapshot this run trained on (ml_admin), in the "
                               "dataset export's layout plus `snapshot.json` (its checksum, counts and the run's "
                               "parameters): what it takes to train the same version again.",
                   responses={(200, "application/zip"): ZIP_RESPONSE, 404: ERROR, **COMMON_ERRORS})
    def get(self, request, run_id: int):
        run = _training_run_or_404(run_id)
        return _zip_response(dataset_snapshot_stream(run=run), dataset_export_file_name(run=run))
