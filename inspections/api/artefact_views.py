"""Downloads: a model version's artefacts for the edge, the labelled dataset and a training run's
frozen snapshot (zips streamed as they are written, never built in memory)."""

from __future__ import annotations

from django.http import FileResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from inspections.ops.services.dataset_export import (
    dataset_export_file_name,
    dataset_export_filters_clean,
    dataset_export_stream,
    dataset_snapshot_stream,
)
from inspections.registry.services.artefacts import (
    model_artefact_list,
    model_artefact_open,
)

from .permissions import ArtefactDownloadRole, ModelAdminRole
from .views import (
    COMMON_ERRORS,
    ERROR,
    ApiView,
    _ImageBytesRenderer,
    _model_version_or_404,
    _training_run_or_404,
)

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


class ModelVersionArtefactList(ApiView):
    role_checks = {"GET": ArtefactDownloadRole}
    pagination_class = None

    @extend_schema(operation_id="model_versions_artefacts_list",
                   description="The files of this version that can be downloaded (ml_admin, integrator): the Keras "
                               "model, the verified TFLite serving copy when there is one, a SavedModel zip (produced "
                               "on its first download, size and sha256 null until then), classes, config, metrics, "
                               "the OOD memory and calibration, and suspect labels.",
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
                       404: ERROR, **COMMON_ERRORS})
    def get(self, request, version_id: int, name: str):
        version = _model_version_or_404(version_id)
        artefact, handle = model_artefact_open(version=version, name=name)
        response = FileResponse(handle, as_attachment=True, filename=f"{version.name}-{artefact.name}",
                                content_type=artefact.content_type)
        response["Content-Length"] = str(artefact.size)
        response["X-Checksum-SHA256"] = artefact.sha256
        response["Cache-Control"] = "private, max-age=86400"  # artefacts never change
        return response


class DatasetExportQuery(serializers.Serializer):
    split = serializers.CharField(required=False, allow_blank=True, help_text="train, val or test; all when absent.")
    label = serializers.CharField(required=False, allow_blank=True, help_text="One class; all when absent.")


def _zip_response(chunks, file_name: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{file_name}"'
    response["Cache-Control"] = "no-store"
    return response


class DatasetExport(ApiView):
    role_checks = {"GET": ModelAdminRole}
    renderer_classes = [JSONRenderer, _BinaryRenderer]

    @extend_schema(operation_id="dataset_export", parameters=[DatasetExportQuery],
                   description="The labelled images (ml_admin) as a zip: `<label>/<sha256>.<ext>` folders, excluded "
                               "images under `.excluded/<label>/`, and `manifest.csv` / `manifest.json` (sha256, label, "
                               "split, source, external id, label source and version, who labelled it and when, "
                               "exclusion). `python manage.py import_dataset DIR` reads it back with its splits.",
                   responses={(200, "application/zip"): ZIP_RESPONSE, 400: ERROR, **COMMON_ERRORS})
    def get(self, request):
        query = DatasetExportQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        filters = dataset_export_filters_clean(split=query.validated_data.get("split"),
                                               label=query.validated_data.get("label"))
        return _zip_response(dataset_export_stream(filters=filters), dataset_export_file_name(filters=filters))


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
